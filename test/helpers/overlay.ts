/**
 * Mount helpers for conformance tests: kernel overlayfs (the oracle), layerfs through its CLI, and
 * fuse-overlayfs (a peer, to prove a harness can fail). Layers are given overlay style: `lowers[0]`
 * is the topmost lower layer. Every mount has a hard unmount (umount, then FUSE abort + lazy umount)
 * and FUSE mounts get a watchdog process that aborts the connection if a test hangs on it.
 * Layers in overlay on-disk format: whiteout = char device 0/0, opaque dir = trusted.overlay.opaque=y.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lsetxattr, makedev, mknod } from '../../src/sys/native.js';

export type UnionKind = 'overlay' | 'layerfs' | 'fuse-overlayfs';

/** Repository root (this file runs from dist/test/helpers/). */
export const repoRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The layerfs executable: LAYERFS_BIN, else bin/layerfs of this checkout. */
export const layerfsBin: string = process.env.LAYERFS_BIN || join(repoRoot, 'bin', 'layerfs');

const MOUNT_TIMEOUT_MS = 20_000;
const UMOUNT_TIMEOUT_MS = 20_000;
/** How long an overlay mount answering EBUSY (a layer still in use by a detached mount) is retried. */
const BUSY_WAIT_MS = 10_000;

export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

interface MountInfo {
  majorMinor: string;
  mountPoint: string;
  fsType: string;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mount currently at `mnt` (topmost), from /proc/self/mountinfo. */
export function mountAt(mnt: string): MountInfo | undefined {
  let found: MountInfo | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f.length < 5) continue;
    if (unescapeMount(f[4]!) !== mnt) continue;
    found = { majorMinor: f[2]!, mountPoint: mnt, fsType: f[sep + 1] ?? '' };
  }
  return found;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Why mounting of `kind` cannot work on this machine (no root, no /dev/fuse, no overlay module, no
 * fuse-overlayfs binary), or undefined when it should. A missing layerfs build is NOT a reason: that
 * is a failure of the product, and the caller's mount attempt will fail loudly.
 */
export function mountUnavailable(kind: UnionKind): string | undefined {
  if (!isRoot()) return 'needs root';
  if (kind === 'overlay') {
    const fss = readFileSync('/proc/filesystems', 'utf8');
    if (!/\toverlay\n/.test(fss)) {
      spawnSync('modprobe', ['overlay'], { timeout: 10_000 });
      if (!/\toverlay\n/.test(readFileSync('/proc/filesystems', 'utf8'))) return 'kernel overlayfs unavailable';
    }
    return undefined;
  }
  if (!existsSync('/dev/fuse')) return '/dev/fuse missing';
  if (kind === 'fuse-overlayfs' && spawnSync('fuse-overlayfs', ['--version']).error) return 'fuse-overlayfs not installed';
  return undefined;
}

/**
 * For node:test: when `kind` cannot mount here, fail under CI, else skip with the reason.
 * Returns true when the caller should go on.
 */
export function requireMount(t: { skip(msg?: string): void }, kind: UnionKind): boolean {
  const why = mountUnavailable(kind);
  if (!why) return true;
  if (process.env.CI) throw new Error(`cannot mount ${kind} under CI: ${why}`);
  t.skip(`${kind}: ${why}`);
  return false;
}

export interface UnionLayers {
  /** Topmost first. */
  lowers: string[];
  upper: string;
  work: string;
}

export interface Mounted {
  kind: UnionKind;
  mnt: string;
  layers: UnionLayers;
  unmount(): void;
}

export interface MountOptions {
  /** Extra comma-separated mount options (e.g. `dirrename=exdev`). */
  extra?: string[];
  /** Seconds after which a FUSE watchdog aborts the connection (default 600). */
  watchdogSeconds?: number;
}

function optionString(l: UnionLayers, extra: string[]): string {
  return [`lowerdir=${l.lowers.join(':')}`, `upperdir=${l.upper}`, `workdir=${l.work}`, ...extra].join(',');
}

function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function abortFuse(majorMinor: string): void {
  const [maj, min] = majorMinor.split(':');
  if (maj !== '0' || !min) return;
  const p = `/sys/fs/fuse/connections/${min}/abort`;
  try {
    writeFileSync(p, '1');
  } catch {
    // already gone
  }
}

/** Unmount `mnt` for sure: umount, else abort the FUSE connection and detach. Throws if still mounted. */
export function hardUnmount(mnt: string): void {
  for (let i = 0; i < 3 && mountAt(mnt); i++) {
    const r = spawnSync('umount', [mnt], { timeout: UMOUNT_TIMEOUT_MS, encoding: 'utf8' });
    if (r.status === 0) continue;
    const m = mountAt(mnt);
    if (m) abortFuse(m.majorMinor);
    spawnSync('umount', ['-l', mnt], { timeout: UMOUNT_TIMEOUT_MS });
  }
  if (mountAt(mnt)) throw new Error(`could not unmount ${mnt}`);
}

function killWait(pid: number | undefined, ms: number): void {
  if (pid === undefined) return;
  const end = Date.now() + ms;
  while (pidAlive(pid) && Date.now() < end) sleepMs(20);
  if (pidAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}

/** The watchdog is a process group leader (detached): kill it with its `sleep` child. */
function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** A detached `sleep N; abort` process: the hard timeout for syscalls stuck on a FUSE server. */
function startWatchdog(majorMinor: string, seconds: number): number | undefined {
  const min = majorMinor.split(':')[1];
  if (!min) return undefined;
  const child = spawn('sh', ['-c', `sleep ${seconds}; echo 1 > /sys/fs/fuse/connections/${min}/abort`], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child.pid;
}

function mountFuse(kind: UnionKind, argv: string[], mnt: string, layers: UnionLayers, o: MountOptions): Mounted {
  const logDir = mkdtempSync(join(tmpdir(), `${kind}-mountlog-`));
  const logPath = join(logDir, 'log');
  const fd = openSync(logPath, 'w');
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const pid = child.pid;
  const log = (): string => {
    try {
      return readFileSync(logPath, 'utf8').trim();
    } catch {
      return '';
    }
  };
  const end = Date.now() + MOUNT_TIMEOUT_MS;
  let info = mountAt(mnt);
  while (!info && Date.now() < end) {
    if (pid === undefined || !pidAlive(pid)) {
      // It may have daemonized and exited right after mounting: look once more.
      info = mountAt(mnt);
      if (info) break;
      const out = log();
      rmSync(logDir, { recursive: true, force: true });
      throw new Error(`${kind} mount failed: ${argv.join(' ')}\n${out}`);
    }
    sleepMs(20);
    info = mountAt(mnt);
  }
  if (!info) {
    if (pid !== undefined) killWait(pid, 0);
    const out = log();
    rmSync(logDir, { recursive: true, force: true });
    throw new Error(`${kind} did not mount within ${MOUNT_TIMEOUT_MS} ms: ${argv.join(' ')}\n${out}`);
  }
  const watchdog = startWatchdog(info.majorMinor, o.watchdogSeconds ?? 600);
  let done = false;
  return {
    kind,
    mnt,
    layers,
    unmount(): void {
      if (done) return;
      done = true;
      try {
        hardUnmount(mnt);
      } finally {
        killWait(pid, 5000);
        if (watchdog !== undefined) killGroup(watchdog);
        rmSync(logDir, { recursive: true, force: true });
      }
    },
  };
}

/** Mount a union of `layers` at `mnt` (which must exist) with the given implementation. */
export function mountUnion(kind: UnionKind, layers: UnionLayers, mnt: string, o: MountOptions = {}): Mounted {
  const extra = o.extra ?? [];
  if (kind === 'overlay') {
    // index=on: hard links stay hard links across copy-up, as design.md asks of layerfs (with the
    // default index=off overlayfs breaks a lower hard link in two on copy-up).
    const opts = optionString(layers, ['redirect_dir=on', 'index=on', ...extra]);
    // EBUSY: with index=on a layer dir that was the upper or work dir of an overlay mount is "in use"
    // until that superblock ends, and a copy of the mount in a mount namespace made meanwhile (any
    // `unshare -m`, a container start elsewhere on the machine) keeps it alive after our umount:
    // wait for such a namespace to go (up to BUSY_WAIT_MS) before calling the reference broken.
    const end = Date.now() + BUSY_WAIT_MS;
    for (;;) {
      const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', opts, mnt], {
        timeout: MOUNT_TIMEOUT_MS,
        encoding: 'utf8',
      });
      if (r.status === 0) break;
      if (/busy/i.test(r.stderr ?? '') && Date.now() < end) {
        sleepMs(200);
        continue;
      }
      throw new Error(`overlay mount failed: ${opts}: ${r.stderr ?? ''}${r.error ? String(r.error) : ''}`);
    }
    let done = false;
    return {
      kind,
      mnt,
      layers,
      unmount(): void {
        if (done) return;
        done = true;
        hardUnmount(mnt);
      },
    };
  }
  if (kind === 'fuse-overlayfs') {
    return mountFuse(kind, ['fuse-overlayfs', '-o', optionString(layers, extra), mnt], mnt, layers, o);
  }
  return mountFuse(kind, [layerfsBin, 'mount', '-o', optionString(layers, extra), mnt], mnt, layers, o);
}

const UPPER_TIME = new Date('2020-01-01T00:00:00Z');

/** A fresh upper (its times set to UPPER_TIME), work and mount-point dir under `dir`, named by `tag`. */
export function freshUpper(dir: string, tag: string): { upper: string; work: string; mnt: string } {
  const upper = join(dir, `${tag}-upper`);
  const work = join(dir, `${tag}-work`);
  const mnt = join(dir, `${tag}-mnt`);
  for (const d of [upper, work, mnt]) mkdirSync(d, { recursive: true });
  // Two sides' uppers are made at different moments: one fixed time, so a root merged from them
  // shows the same mtime on both (a mount that takes long under load no longer makes them differ).
  utimesSync(upper, UPPER_TIME, UPPER_TIME);
  return { upper, work, mnt };
}

/** Overlay-format whiteout: a character device 0/0. */
export function makeWhiteout(path: string): void {
  mknod(path, 0o020000 | 0o000, makedev(0, 0));
}

/** Overlay-format opaque marker on a directory. */
export function makeOpaque(dir: string): void {
  lsetxattr(dir, 'trusted.overlay.opaque', Buffer.from('y'), 0);
}

/** Every target selectable by the LAYERFS_* env variables. */
export function parseKind(s: string | undefined, dflt: UnionKind): UnionKind {
  if (s === undefined || s === '') return dflt;
  if (s === 'overlay' || s === 'layerfs' || s === 'fuse-overlayfs') return s;
  throw new Error(`unknown union kind ${s} (overlay, layerfs, fuse-overlayfs)`);
}
