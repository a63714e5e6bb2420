/**
 * Helpers for tests that really mount: FUSE availability (fail in CI, skip elsewhere), running the
 * CLI and shell commands with hard timeouts, unmounting for sure, and checking nothing is left.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { after, before, type TestContext } from 'node:test';

/** Repo root (this file runs from dist/test/helpers/). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI_MAIN = join(REPO, 'dist', 'src', 'cli', 'main.js');
export const BIN = join(REPO, 'bin', 'layerfs');

/** Why FUSE mounts cannot run here, or null when they can. */
export function fuseUnavailable(): string | null {
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  if (process.getuid?.() !== 0) return 'not root (mount tests need root)';
  return null;
}

/**
 * True when the test may mount. Otherwise: in CI (process.env.CI set) the test fails with the
 * reason; elsewhere it is skipped with the reason.
 */
export function requireFuse(t: TestContext): boolean {
  const why = fuseUnavailable();
  if (why === null) return true;
  if (process.env.CI) assert.fail(`FUSE mount tests cannot run: ${why}`);
  t.skip(why);
  return false;
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  signal: NodeJS.Signals | null;
}

function done(r: SpawnSyncReturns<string>): Run {
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', signal: r.signal };
}

/** `node dist/src/cli/main.js ...args` with a hard timeout. */
export function cli(args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Run {
  return done(
    spawnSync(process.execPath, [CLI_MAIN, ...args], {
      cwd: o.cwd ?? REPO,
      env: o.env ?? process.env,
      encoding: 'utf8',
      timeout: o.timeoutMs ?? 30_000,
      killSignal: 'SIGKILL',
    }),
  );
}

/** A bash command with a hard timeout. */
export function sh(cmd: string, o: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Run {
  return done(
    spawnSync('/bin/bash', ['-c', cmd], {
      cwd: o.cwd ?? REPO,
      env: o.env ?? process.env,
      encoding: 'utf8',
      timeout: o.timeoutMs ?? 60_000,
      killSignal: 'SIGKILL',
    }),
  );
}

/** Run and require exit 0; returns stdout. */
export function ok(r: Run, what: string): string {
  assert.equal(r.status, 0, `${what} failed (status ${r.status}, signal ${r.signal}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Mount points currently in the mount table with fstype fuse.layerfs. */
export function layerfsMounts(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep > 0 && f[sep + 1] === 'fuse.layerfs') out.push(f[4]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

export function isMounted(mnt: string): boolean {
  return layerfsMounts().includes(resolve(mnt));
}

/** Unmount for sure (plain, then lazy), with hard timeouts; true when something was mounted. */
export function forceUnmount(mnt: string): boolean {
  const abs = resolve(mnt);
  if (!isMounted(abs)) return false;
  spawnSync('umount', [abs], { timeout: 10_000, killSignal: 'SIGKILL' });
  if (isMounted(abs)) spawnSync('umount', ['-l', abs], { timeout: 10_000, killSignal: 'SIGKILL' });
  return true;
}

import { processAlive } from '../../src/sys/process.js';
export { processAlive as pidAlive };

/** Wait (polling, bounded) until `pred` holds. */
export async function waitFor(pred: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return pred();
}

/**
 * PIDs of running layerfs daemons serving this mount point: the resident daemon of the runtime dir
 * `run` (default $LAYERFS_RUN_DIR or /run/layerfs) while the mount is in its runtime dir.
 */
export function daemonPids(mnt: string, run: string = process.env.LAYERFS_RUN_DIR || '/run/layerfs'): number[] {
  const abs = resolve(mnt);
  const out: number[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(join(run, 'mounts')).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  for (const n of names) {
    try {
      const info = JSON.parse(readFileSync(join(run, 'mounts', n), 'utf8')) as { mountpoint: string; pid: number };
      if (info.mountpoint === abs && processAlive(info.pid)) out.push(info.pid);
    } catch {
      /* removed meanwhile */
    }
  }
  return out;
}

/** PIDs of the resident daemons whose pid files are in the runtime dir `run`. */
export function residentDaemons(run: string): number[] {
  let names: string[] = [];
  try {
    names = readdirSync(run).filter((n) => /^daemon-\d+\.pid$/.test(n));
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const n of names) {
    try {
      const pid = Number(readFileSync(join(run, n), 'utf8').trim());
      if (pid > 0 && processAlive(pid)) out.push(pid);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** PIDs of the live supervisors of the runtime dir `run` (supervisor-<mntns>.pid). */
export function supervisors(run: string): number[] {
  let names: string[] = [];
  try {
    names = readdirSync(run).filter((n) => /^supervisor-\d+\.pid$/.test(n));
  } catch {
    return [];
  }
  return names.map((n) => Number(readFileSync(join(run, n), 'utf8').trim())).filter((pid) => pid > 0 && processAlive(pid));
}

/** Stop (SIGTERM, by pid) the resident daemons of the runtime dir `run` and wait until they are gone. */
export async function stopDaemons(run: string, ms = 10_000): Promise<void> {
  // a supervisor first: told to stop, it stops its daemon and never starts another
  const pids = [...supervisors(run), ...residentDaemons(run)];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  await waitFor(() => pids.every((p) => !processAlive(p)), ms);
}

/**
 * For a describe block: a scratch dir with `rw/`, `lo/` (filled by `fill`) and `mnt/`, mounted
 * `dirs=rw=rw:lo=ro` before its tests (when FUSE is available; tests still call requireFuse),
 * unmounted and removed after them. The paths are set once `before` has run.
 */
export function suiteMount(prefix: string, fill: (lo: string) => void): { root: string; lo: string; mnt: string } {
  const s = { root: '', lo: '', mnt: '' };
  before(() => {
    s.root = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
    s.lo = join(s.root, 'lo');
    s.mnt = join(s.root, 'mnt');
    for (const d of ['rw', 'lo', 'mnt']) mkdirSync(join(s.root, d));
    fill(s.lo);
    if (fuseUnavailable() !== null) return;
    ok(cli(['mount', '-o', `dirs=${s.root}/rw=rw:${s.lo}=ro`, s.mnt], { env: { ...process.env, LAYERFS_RUN_DIR: join(s.root, 'run') } }), 'mount');
  });
  after(async () => {
    if (s.root) await removeScratch(s.root, [s.mnt]);
  });
  return s;
}

/**
 * After a test's mounts made with LAYERFS_RUN_DIR=`root`/run: unmount each of `mnts`, wait for its
 * daemon to let go, stop the daemons of that runtime dir, remove `root`.
 */
export async function removeScratch(root: string, mnts: readonly string[]): Promise<void> {
  const run = join(root, 'run');
  for (const m of mnts) {
    forceUnmount(m);
    await waitFor(() => daemonPids(m, run).length === 0);
  }
  await stopDaemons(run);
  rmSync(root, { recursive: true, force: true });
}
