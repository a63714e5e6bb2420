/**
 * Helpers for the container-engine tests: a small busybox image tar, and real servers (dockerd,
 * containerd, our plugin/snapshotter) started in temp dirs and stopped by pid.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { CLI_MAIN, fuseUnavailable } from '../helpers/mount.js';

/** Debian's docker.io client (a newer client may come first on PATH). */
export const DOCKER = '/usr/bin/docker';
export const DOCKERD = '/usr/sbin/dockerd';
export const CONTAINERD = '/usr/bin/containerd';
export const CTR = '/usr/bin/ctr';
const BUSYBOX = '/bin/busybox';

/** Skips (fails under CI) unless root, FUSE and every one of `tools` are present. */
export function requireTools(t: TestContext, tools: readonly string[]): boolean {
  const missing = [fuseUnavailable(), ...tools.filter((x) => !fs.existsSync(x)).map((x) => `${x} missing`)].filter((x) => x !== null);
  if (missing.length === 0) return true;
  if (process.env.CI) assert.fail(`cannot run: ${missing.join(', ')}`);
  t.skip(missing.join(', '));
  return false;
}

export interface Out {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function sh(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Out {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, cwd: opts.cwd });
  return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : ''), ms: performance.now() - t0 };
}

/** sh() that must succeed; returns stdout. */
export function ok(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): string {
  const r = sh(cmd, args, opts);
  assert.equal(r.status, 0, `${path.basename(cmd)} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** A busybox root as a tar (static /bin/busybox plus applet symlinks, /etc/passwd): `dir/busybox.tar`. */
export function busyboxTar(dir: string): string {
  const root = path.join(dir, 'bb-root');
  for (const d of ['bin', 'etc', 'tmp', 'root']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync(BUSYBOX, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  for (const a of ok(BUSYBOX, ['--list']).split('\n')) {
    if (a !== '' && a !== 'busybox') fs.symlinkSync('busybox', path.join(root, 'bin', a));
  }
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  const tar = path.join(dir, 'busybox.tar');
  ok('tar', ['-C', root, '-cf', tar, '.']);
  fs.rmSync(root, { recursive: true });
  return tar;
}

export async function waitFor(what: string, fn: () => boolean, timeoutMs = 60_000, proc?: ChildProcess): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (fn()) return;
    if (proc && proc.exitCode !== null) throw new Error(`${what}: the process exited (${proc.exitCode})`);
    if (Date.now() > end) throw new Error(`${what}: not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A background server writing to `log`; `stop()` sends SIGTERM to its pid and waits (then SIGKILL). */
export interface Server {
  proc: ChildProcess;
  stop(): Promise<void>;
}

export function startServer(cmd: string, args: readonly string[], log: string, env: NodeJS.ProcessEnv = process.env): Server {
  const fd = fs.openSync(log, 'a');
  const proc = spawn(cmd, args, { stdio: ['ignore', fd, fd], env });
  fs.closeSync(fd);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    proc,
    async stop(): Promise<void> {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** `layerfs ARGS` as a server. */
export function startLayerfs(args: readonly string[], log: string): Server {
  return startServer(process.execPath, [CLI_MAIN, ...args], log);
}

/** Mount points under `dir` still mounted. */
export function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(dir + '/'));
}

/** Unmounts (lazily) whatever is still mounted under `dir`, deepest first; returns what was. */
export function unmountUnder(dir: string): string[] {
  const left = mountsUnder(dir).sort((a, b) => b.length - a.length);
  for (const m of left) spawnSync('umount', ['-l', m]);
  return left;
}

/** The resident daemons started with LAYERFS_RUN_DIR=`run` (one per mount namespace), to stop by pid. */
export function daemonsIn(run: string): { stop(): Promise<void> } {
  const pids = (): number[] =>
    fs.existsSync(run) ? fs.readdirSync(run).filter((n) => /^daemon-.*\.pid$/.test(n)).map((n) => Number(fs.readFileSync(path.join(run, n), 'utf8').trim())).filter((p) => p > 0) : [];
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  return {
    async stop(): Promise<void> {
      const left = pids().filter(alive);
      for (const pid of left) process.kill(pid, 'SIGTERM');
      await waitFor('layerfs daemons to exit', () => left.every((p) => !alive(p)), 20_000);
    },
  };
}

/** A containerd 1.6 config at `file`: root, state and sockets under `dir`, CRI off, `snapSock` as the
 *  `layerfs` proxy snapshotter; the grpc socket is `address`. */
export function writeContainerdConfig(file: string, dir: string, address: string, snapSock: string): void {
  fs.writeFileSync(
    file,
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${address}"`,
      '[ttrpc]',
      `  address = "${address}.ttrpc"`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${dir}/opt"`,
      // no garbage collection on its own after N changes: a snapshot a test made with `ctr snapshots
      // view` is held by no lease once ctr exits, and a collection between that and the test's next
      // step removed it (CI, 2026-12-06: "snapshot v-native does not exist"); `images rm --sync` still collects
      '[plugins."io.containerd.gc.v1.scheduler"]',
      '  deletion_threshold = 0',
      '  mutation_threshold = 1000000',
      '[proxy_plugins.layerfs]',
      '  type = "snapshot"',
      `  address = "${snapSock}"`,
      '',
    ].join('\n'),
  );
}

/** Starts a dockerd on `driver` in `dir` (more dockerd flags: `extra`), runs `fn` with a docker client for it, stops it. */
export async function withDockerd(dir: string, driver: string, fn: (docker: (args: string[]) => string) => void, extra: readonly string[] = []): Promise<void> {
  for (const d of ['data', 'exec', 'run']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const host = `unix://${dir}/run/docker.sock`;
  const env = { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '0' };
  const dockerd: Server = startServer(
    DOCKERD,
    [
      '--experimental', `--storage-driver=${driver}`, `--data-root=${dir}/data`, `--exec-root=${dir}/exec`, `--pidfile=${dir}/run/dockerd.pid`,
      `-H`, host, '--iptables=false', '--ip-masq=false', '--bridge=none', ...extra,
    ],
    path.join(dir, 'dockerd.log'),
  );
  try {
    await waitFor('dockerd', () => sh(DOCKER, ['version'], { env, timeoutMs: 10_000 }).status === 0, 90_000, dockerd.proc);
    assert.match(ok(DOCKER, ['info', '--format', '{{.Driver}}'], { env }), new RegExp(driver));
    fn((args) => ok(DOCKER, args, { env, timeoutMs: 180_000 }));
  } catch (e) {
    const log = fs.existsSync(path.join(dir, 'dockerd.log')) ? fs.readFileSync(path.join(dir, 'dockerd.log'), 'utf8').split('\n').slice(-15).join('\n') : '';
    throw new Error(`${(e as Error).message}\n--- dockerd log tail ---\n${log}`);
  } finally {
    await dockerd.stop();
  }
}

