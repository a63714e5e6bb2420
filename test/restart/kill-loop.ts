/**
 * The kill-loop harness for the restart tests: a union mounted for real (bin/layerfs, its own
 * LAYERFS_RUN_DIR), the kill loop + recovery probe (kill-driver.ts, a process of its own), workloads
 * run as child processes under hard timeouts, and teardown that unmounts and stops what the test
 * started, by pid, even when the mount hangs (fusectl abort).
 *
 * The seed of the kill pauses is LAYERFS_KILL_SEED when set, else random; it is printed, so a failing
 * run can be repeated.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, forceUnmount, isMounted, pidAlive, waitFor } from '../helpers/mount.js';
import { diffSnapshots, snapshot, type Snapshot } from '../helpers/fs-snapshot.js';
import type { DriverConfig, DriverReport } from './kill-driver.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const DRIVER = join(HERE, 'kill-driver.js');

/** Kill pause bounds (ms), as the issue asks: every few hundred ms. */
export const KILL_MIN_MS = 150;
export const KILL_MAX_MS = 600;

export function killSeed(): number {
  const env = process.env.LAYERFS_KILL_SEED;
  if (env !== undefined && env !== '') return Number(env) >>> 0;
  return (Math.random() * 2 ** 32) >>> 0;
}

export interface Union {
  root: string;
  upper: string;
  lowers: string[];
  mnt: string;
  run: string;
  env: NodeJS.ProcessEnv;
  /** Pids of every child this union's test started (workloads, driver), for teardown. */
  children: Set<number>;
}

/** A scratch dir with `up/`, `lo1/` (upper lower), `lo2/`, `mnt/`, `run/`; `fill` fills the lowers. */
export function makeUnion(prefix: string, fill: (lo1: string, lo2: string) => void): Union {
  const root = realpathSync(mkdtempSync(join(tmpdir(), `layerfs-${prefix}-`)));
  const u: Union = {
    root,
    upper: join(root, 'up'),
    lowers: [join(root, 'lo1'), join(root, 'lo2')],
    mnt: join(root, 'mnt'),
    run: join(root, 'run'),
    env: { ...process.env, LAYERFS_RUN_DIR: join(root, 'run'), LAYERFS_DAEMON_IDLE_MS: '1000' },
    children: new Set(),
  };
  for (const d of [u.upper, ...u.lowers, u.mnt, u.run]) mkdirSync(d);
  fill(u.lowers[0]!, u.lowers[1]!);
  return u;
}

/** `layerfs mount -o dirs=up=rw:lo1=ro:lo2=ro MNT` through bin/layerfs (the resident daemon of run/). */
export function mountUnion(u: Union): void {
  const r = spawnSync(BIN, ['mount', '-o', `dirs=${u.upper}=rw:${u.lowers[0]}=ro:${u.lowers[1]}=ro`, u.mnt], {
    env: u.env,
    encoding: 'utf8',
    timeout: 60_000,
    killSignal: 'SIGKILL',
  });
  if (r.status !== 0) throw new Error(`layerfs mount failed (status ${r.status}, signal ${r.signal}): ${(r.stderr ?? '').trim()}`);
  if (!isMounted(u.mnt)) throw new Error(`layerfs mount returned 0 but ${u.mnt} is not in the mount table`);
}

/** What the lower branches hold, times included: must not change. */
export function lowerSnapshots(u: Union): Snapshot[] {
  return u.lowers.map((l) => snapshot(l, { times: true }));
}

/** Differences of the lowers against `before`, each line naming the branch. */
export function lowerChanges(u: Union, before: Snapshot[]): string[] {
  const now = lowerSnapshots(u);
  return before.flatMap((b, i) => diffSnapshots(b, now[i]!).map((l) => `lower ${u.lowers[i]}: ${l}`));
}

/** The fusectl connection number of a mount (its st_dev minor), or null. */
function fuseConnection(mnt: string): number | null {
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const f = line.split(' ');
      if (f[4] === mnt) return Number(f[2]!.split(':')[1]);
    }
  } catch {
    /* no mountinfo */
  }
  return null;
}

/** Abort the FUSE connection of `mnt` (a hung mount: every waiting request fails ENOTCONN). */
export function abortConnection(mnt: string): boolean {
  const n = fuseConnection(mnt);
  if (n === null) return false;
  const ctl = `/sys/fs/fuse/connections/${n}/abort`;
  if (!existsSync(ctl)) spawnSync('mount', ['-t', 'fusectl', 'none', '/sys/fs/fuse/connections'], { timeout: 5_000 });
  try {
    writeFileSync(ctl, '1');
    return true;
  } catch {
    return false;
  }
}

function pidsIn(run: string): number[] {
  let names: string[] = [];
  try {
    names = readdirSync(run).filter((f) => f.endsWith('.pid'));
  } catch {
    return [];
  }
  return names
    .map((f) => {
      try {
        return Number(readFileSync(join(run, f), 'utf8').trim());
      } catch {
        return 0;
      }
    })
    .filter((p) => Number.isInteger(p) && p > 1 && pidAlive(p));
}

/**
 * Teardown, even after a failure: kill the children this test started (by pid), unmount (plain, then
 * fusectl abort + lazy), stop the daemons (and supervisor) whose pid files are in run/ (SIGTERM, then
 * SIGKILL), remove the scratch dir unless LAYERFS_KEEP_SCRATCH is set or `keep` (a failed run). Returns what it had to force.
 */
export async function teardown(u: Union, extraMounts: readonly string[] = [], keep = false): Promise<string[]> {
  const forced: string[] = [];
  for (const pid of u.children) {
    if (pidAlive(pid)) {
      forced.push(`killed child ${pid}`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const m of [...extraMounts, u.mnt]) {
    if (!isMounted(m)) continue;
    spawnSync('umount', [m], { timeout: 10_000, killSignal: 'SIGKILL' });
    if (isMounted(m)) {
      forced.push(`${m}: umount failed, aborted the FUSE connection`);
      abortConnection(m);
      forceUnmount(m);
    }
  }
  const pids = pidsIn(u.run);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  if (!(await waitFor(() => pids.every((p) => !pidAlive(p)), 10_000))) {
    for (const pid of pids.filter(pidAlive)) {
      forced.push(`daemon ${pid} ignored SIGTERM: SIGKILL`);
      process.kill(pid, 'SIGKILL');
    }
  }
  // kept after a failure (daemon log with the supervisor's lines; journals only if the mount was still up), the caller names it
  if (!keep && !process.env.LAYERFS_KEEP_SCRATCH) rmSync(u.root, { recursive: true, force: true });
  return forced;
}

export interface KillLoop {
  readonly seed: number;
  /** Stop killing, wait for the mount to answer, and return what happened. */
  stop(): Promise<DriverReport>;
}

/** Start the probe (always) and the kill loop (when `kill`) for the union's runtime dir. */
export function startKillLoop(u: Union, o: { kill: boolean; seed: number; probeDir?: string; lifeMs?: number }): KillLoop {
  const out = join(u.root, `driver-${Date.now()}.json`);
  const cfg: DriverConfig = {
    run: u.run,
    probeDir: o.probeDir ?? u.mnt,
    kill: o.kill,
    seed: o.seed,
    minMs: KILL_MIN_MS,
    maxMs: KILL_MAX_MS,
    probeMs: 5,
    recoveryLimitMs: 10_000,
    lifeMs: o.lifeMs ?? 240_000,
    out,
  };
  const child = spawn(process.execPath, [DRIVER, JSON.stringify(cfg)], { stdio: ['ignore', 'ignore', 'pipe'] });
  u.children.add(child.pid!);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return {
    seed: o.seed,
    async stop() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
      if (!existsSync(out)) throw new Error(`kill driver wrote no report (stderr: ${stderr.trim()})`);
      return JSON.parse(readFileSync(out, 'utf8')) as DriverReport;
    },
  };
}

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/** Run a command as a child (its pid recorded for teardown), killed (SIGKILL) after `timeoutMs`. */
export function runChild(u: Union, argv: readonly string[], o: { timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<ChildResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { cwd: o.cwd, env: o.env ?? u.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true }); // own process group: a timeout kills its children too
    if (child.pid !== undefined) u.children.add(child.pid);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin!.end(o.input ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, o.timeoutMs);
    child.on('error', (e) => {
      stderr += String(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      if (child.pid !== undefined) u.children.delete(child.pid);
      resolve({ status, signal, stdout, stderr, timedOut, ms: performance.now() - t0 });
    });
  });
}

/** A one-line account of a child that did not exit 0 (status, timeout, stderr tail). */
export function childFailure(what: string, r: ChildResult): string {
  const how = r.timedOut ? `did not finish within its hard timeout (${Math.round(r.ms)} ms; killed)` : `exited ${r.status ?? r.signal}`;
  const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-8).join(' | ');
  return `${what} ${how}: ${tail}`;
}

/** A snapshot of the merged tree, taken by a child process (a hung mount cannot hang the test). */
export async function mergedSnapshot(u: Union, dir: string, opts: { ignore?: string[] } = {}): Promise<Snapshot> {
  const r = await runChild(u, [process.execPath, join(HERE, 'snapshot-cli.js'), dir, JSON.stringify(opts.ignore ?? [])], { timeoutMs: 120_000 });
  if (r.status !== 0) throw new Error(childFailure(`snapshot of ${dir}`, r));
  return new Map(JSON.parse(r.stdout) as [string, never][]);
}

export interface RecoveryStats {
  kills: number;
  p50: number;
  p95: number;
  max: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function recoveryStats(r: DriverReport): RecoveryStats {
  const v = r.kills.map((k) => k.recoveryMs).filter((x): x is number => x !== null).sort((a, b) => a - b);
  return { kills: r.kills.length, p50: percentile(v, 50), p95: percentile(v, 95), max: v.length ? v[v.length - 1]! : NaN };
}

/** One line for the test log: seed, kills, recovery p50/p95/max, probe errors. */
export function describeReport(name: string, r: DriverReport): string {
  const s = recoveryStats(r);
  const rec = r.kill ? `${s.kills} kills, recovery p50 ${s.p50.toFixed(0)} ms p95 ${s.p95.toFixed(0)} ms max ${s.max.toFixed(0)} ms` : 'no kills';
  const errs = r.probeErrorCount ? `, ${r.probeErrorCount} probe errors (first: ${r.probeErrors[0]!.code} at ${r.probeErrors[0]!.atMs.toFixed(0)} ms)` : '';
  return `${name}: seed ${r.seed}, ${(r.durationMs / 1000).toFixed(1)} s, ${rec}, ${r.probes} probes, longest ${r.probeMaxMs.toFixed(0)} ms${errs}${r.gaveUp ? `; gave up: ${r.gaveUp}` : ''}`;
}

/** Problems of a kill run a user would have seen, as lines (empty = none). */
export function reportProblems(r: DriverReport): string[] {
  const out: string[] = [];
  if (r.gaveUp) out.push(`kill loop: ${r.gaveUp}`);
  for (const e of r.probeErrors.slice(0, 5)) out.push(`probe stat on the mount at ${e.atMs.toFixed(0)} ms: ${e.code} (${e.message})`);
  if (r.probeErrorCount > 5) out.push(`... ${r.probeErrorCount - 5} more probe errors`);
  if (r.probeStuckMs !== null) out.push(`a probe request was still unanswered after ${r.probeStuckMs.toFixed(0)} ms at the end`);
  return out;
}

/** Append one run's figures to LAYERFS_RECOVERY_LOG (for docs/performance.md), when set. */
export function logRecovery(name: string, r: DriverReport): void {
  const log = process.env.LAYERFS_RECOVERY_LOG;
  if (!log) return;
  const line = JSON.stringify({ name, seed: r.seed, kills: r.kills.map((k) => k.recoveryMs), durationMs: r.durationMs, load: readFileSync('/proc/loadavg', 'utf8').trim() });
  writeFileSync(log, line + '\n', { flag: 'a' });
}
