/**
 * Introspection like AUFS's /sys/fs/aufs/si_<id>/: for each live mount,
 *   <run>/si_<id>/br0..brN   `/abs/path=rw|ro|rr[+attr]`
 *   <run>/si_<id>/brid0..N   branch ids (64, 65, ...)
 *   <run>/si_<id>/xi_path    the inode table path
 * so `cat <run>/si_*\/*` prints what AUFS prints. Everything else about the mount (mount point,
 * pid, options) lives in <run>/mounts/<id>.json, out of the si_ dir. <run> is runDir() (below).
 * Removed on unmount.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privilege } from '../sys/privilege.js';
import { MountError } from './mount-error.js';
import { processAlive } from '../sys/process.js';

export interface BranchInfo {
  path: string;
  /** `rw`, `ro`, `rr`, with attributes: `ro+wh`. */
  perm: string;
  brid: number;
}

export interface MountInfo {
  id: string;
  mountpoint: string;
  source: string;
  pid: number;
  options: string;
  branches: BranchInfo[];
  xiPath: string;
  startedAt: string;
  /** udba mode when not `none` (reval, notify). */
  udba?: string;
  /** Under the supervisor: `restarts: N (last: REASON at TIME)`, or `restarts: not supervised (WHY)`. */
  supervision?: string;
  /** Without real root: how it was mounted and what fell back, one line (`layerfs info` shows it). */
  rootless?: string;
}

/** First branch id, as AUFS numbers them. */
export const FIRST_BRID = 64;

/**
 * The runtime dir, the one place that decides it: $LAYERFS_RUN_DIR when set; /run/layerfs for real
 * root; otherwise (a normal user, or root of a user namespace, who cannot write /run/layerfs)
 * `$XDG_RUNTIME_DIR/layerfs`, else `/run/user/UID/layerfs` when /run/user/UID is ours, else the
 * private `/tmp/layerfs-UID` (mode 0700; ensureRunDir refuses one owned by someone else).
 */
export function runDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LAYERFS_RUN_DIR) return env.LAYERFS_RUN_DIR;
  if (privilege() === 'root') return '/run/layerfs';
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && xdg.startsWith('/')) return join(xdg, 'layerfs');
  const uid = process.geteuid?.() ?? 0;
  const userRun = `/run/user/${uid}`;
  try {
    const st = statSync(userRun);
    if (st.isDirectory() && st.uid === uid) return join(userRun, 'layerfs');
  } catch {
    /* none: fall through */
  }
  return `/tmp/layerfs-${uid}`;
}

/** Mode of the runtime dir: readable by all for root (as /sys/fs/aufs is), private to its user otherwise. */
function runDirMode(): number {
  return privilege() === 'root' ? 0o755 : 0o700;
}

/**
 * Create the runtime dir (and `mounts/` in it) when missing. A chosen runtime dir that is not a
 * plain directory owned by us (a symlink, or one another user made first in /tmp) is refused: EPERM
 * with the way out in the message; one of ours left open to others is made private again.
 * $LAYERFS_RUN_DIR is taken as given.
 */
export function ensureRunDir(): string {
  const dir = runDir();
  const mode = runDirMode();
  mkdirSync(dir, { recursive: true, mode });
  if (process.env.LAYERFS_RUN_DIR) {
    // given explicitly: used as it is
    mkdirSync(join(dir, 'mounts'), { recursive: true, mode });
    return dir;
  }
  const uid = process.geteuid?.() ?? 0;
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid) {
    const what = st.isSymbolicLink() ? 'is a symlink' : !st.isDirectory() ? 'is not a directory' : `belongs to uid ${st.uid}`;
    throw new MountError('EPERM', `runtime dir ${dir} ${what} (it must be a directory of uid ${uid}); remove it or set XDG_RUNTIME_DIR (or LAYERFS_RUN_DIR) to a directory of yours`);
  }
  if (mode === 0o700 && (st.mode & 0o077) !== 0) chmodSync(dir, mode);
  mkdirSync(join(dir, 'mounts'), { recursive: true, mode });
  return dir;
}

export function newMountId(): string {
  return randomBytes(8).toString('hex');
}

export function siDir(id: string): string {
  return join(runDir(), `si_${id}`);
}

function metaPath(id: string): string {
  return join(runDir(), 'mounts', `${id}.json`);
}

/** Path of a mount's daemon log (background mounts write their stderr there). */
export function logPath(id: string): string {
  return join(runDir(), 'mounts', `${id}.log`);
}

/** The lines `cat si_<id>/*` prints, in that order. */
export function siLines(info: MountInfo): string[] {
  return [...info.branches.map((b) => `${b.path}=${b.perm}`), ...info.branches.map((b) => `${b.brid}`), info.xiPath];
}

/** Publish a mount (written to a temp dir, then renamed into place). */
export function writeMountInfo(info: MountInfo): void {
  ensureRunDir();
  const tmp = join(runDir(), `.tmp_${info.id}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { mode: runDirMode() });
  info.branches.forEach((b, i) => writeFileSync(join(tmp, `br${i}`), `${b.path}=${b.perm}\n`));
  info.branches.forEach((b, i) => writeFileSync(join(tmp, `brid${i}`), `${b.brid}\n`));
  writeFileSync(join(tmp, 'xi_path'), `${info.xiPath}\n`);
  // (renamed into place: a reader never sees a half-written entry)
  writeFileSync(join(tmp, 'meta.json'), JSON.stringify(info, null, 2) + '\n');
  renameSync(join(tmp, 'meta.json'), metaPath(info.id));
  rmSync(siDir(info.id), { recursive: true, force: true });
  renameSync(tmp, siDir(info.id));
}

export function removeMountInfo(id: string, keepLog = false): void {
  rmSync(siDir(id), { recursive: true, force: true });
  rmSync(metaPath(id), { force: true });
  if (!keepLog) rmSync(logPath(id), { force: true });
}

/** Whether a daemon supervisor (`<run>/supervisor-*.pid`, src/daemon/paths.ts) is alive in this runtime dir. */
function supervisorAlive(): boolean {
  let names: string[];
  try {
    names = readdirSync(runDir());
  } catch {
    return false;
  }
  for (const n of names) {
    if (!n.startsWith('supervisor-') || !n.endsWith('.pid')) continue;
    try {
      if (processAlive(Number(readFileSync(join(runDir(), n), 'utf8').trim()))) return true;
    } catch {
      /* gone meanwhile */
    }
  }
  return false;
}

function readInfo(n: string): MountInfo | null {
  try {
    return JSON.parse(readFileSync(join(runDir(), 'mounts', n), 'utf8')) as MountInfo;
  } catch {
    return null;
  }
}

/** How long a client waits for a mount whose daemon died to be taken over (recovery p95 is well under 1 s; a loaded machine starting a daemon with no standby ready takes seconds). */
export const TAKEOVER_WAIT_MS = 15_000;

const pause = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * One pass over the entries: those of live daemons, and those naming a dead daemon while a
 * supervisor lives (a mount being taken over: the next daemon writes it again), kept. Any other
 * entry of a dead daemon is a dead mount's and is removed (unless written again meanwhile).
 */
function scan(): { live: MountInfo[]; pending: MountInfo[] } {
  const live: MountInfo[] = [];
  const pending: MountInfo[] = [];
  let names: string[];
  try {
    names = readdirSync(join(runDir(), 'mounts'));
  } catch {
    return { live, pending };
  }
  let supervised: boolean | undefined;
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    const info = readInfo(n);
    if (!info) continue;
    if (processAlive(info.pid)) live.push(info);
    else if (!info.supervision?.includes('not supervised') && (supervised ??= supervisorAlive())) pending.push(info);
    else dropDead(info);
  }
  return { live, pending };
}

/** Remove the entry of a dead daemon's mount, unless a daemon has written it again since. */
function dropDead(info: MountInfo): void {
  if (readInfo(`${info.id}.json`)?.pid === info.pid) removeMountInfo(info.id, true);
}

/**
 * Live mounts, ordered by start time. A mount being taken over (see scan) is left out; a client
 * may wait up to `waitTakeoverMs` for it (never the daemon, which this would block), after which
 * one not taken over is a dead mount's and is removed.
 */
export function listMounts(o: { waitTakeoverMs?: number } = {}): MountInfo[] {
  const until = Date.now() + (o.waitTakeoverMs ?? 0);
  let s = scan();
  while (s.pending.length > 0 && Date.now() < until) {
    pause(20);
    s = scan();
  }
  if (o.waitTakeoverMs) s.pending.forEach(dropDead);
  return s.live.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

/**
 * The live mount at `mountpoint`, waiting (without blocking: services call this) up to
 * TAKEOVER_WAIT_MS while one whose daemon died is being taken over.
 */
export async function findMountAfterTakeover(mountpoint: string): Promise<MountInfo | undefined> {
  const until = Date.now() + TAKEOVER_WAIT_MS;
  for (;;) {
    const s = scan();
    const m = s.live.find((x) => x.mountpoint === mountpoint);
    if (m || Date.now() >= until || !s.pending.some((x) => x.mountpoint === mountpoint)) return m;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The live mount at `mountpoint` (absolute, resolved), if any. */
export function findMount(mountpoint: string): MountInfo | undefined {
  return listMounts().find((m) => m.mountpoint === mountpoint);
}
