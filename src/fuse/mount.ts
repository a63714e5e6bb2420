/**
 * Mounting and unmounting a FUSE filesystem. As root: open /dev/fuse, mount(2) with
 * `fd=N,rootmode=40000,user_id=U,group_id=G[,allow_other][,default_permissions]` and fstype
 * `fuse.layerfs` (through the native addon; `/bin/mount -i` with the fd as its fd 3 when the addon
 * is missing). As root of a user namespace (podman rootless): the same, falling back to fusermount3
 * when the kernel refuses. As a normal user: through fusermount3 (fusermount.ts). Also the
 * mount-option split (kernel/VFS options vs the union's) and the /proc/self/mountinfo queries.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, lstatSync, openSync, realpathSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { errnoCode, isCode } from '../errors/index.js';
import { splitOptionList } from '../engine/params.js';
import {
  MNT_DETACH,
  MS_DIRSYNC,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RDONLY,
  MS_RELATIME,
  MS_STRICTATIME,
  MS_SYNCHRONOUS,
} from '../sys/constants.js';
import { isMountPoint, mountTable } from '../sys/mountinfo.js';
import { MountError } from './mount-error.js';
import { privilege } from '../sys/privilege.js';
import { fusermountMount, fusermountUnmount, userAllowOther } from './fusermount.js';

export const FSTYPE = 'fuse.layerfs';


/** VFS options: name -> [flag to set, flag to clear]. */
const VFS: Record<string, [number, number]> = {
  ro: [MS_RDONLY, 0],
  rw: [0, MS_RDONLY],
  nosuid: [MS_NOSUID, 0],
  suid: [0, MS_NOSUID],
  nodev: [MS_NODEV, 0],
  dev: [0, MS_NODEV],
  noexec: [MS_NOEXEC, 0],
  exec: [0, MS_NOEXEC],
  sync: [MS_SYNCHRONOUS, 0],
  async: [0, MS_SYNCHRONOUS],
  dirsync: [MS_DIRSYNC, 0],
  noatime: [MS_NOATIME, 0],
  atime: [0, MS_NOATIME],
  nodiratime: [MS_NODIRATIME, 0],
  diratime: [0, MS_NODIRATIME],
  relatime: [MS_RELATIME, 0],
  norelatime: [0, MS_RELATIME],
  strictatime: [MS_STRICTATIME, 0],
  nostrictatime: [0, MS_STRICTATIME],
};

/** Accepted and ignored (fstab/mount(8) noise, libfuse options we have no use for). */
const IGNORED = new Set([
  'defaults', 'auto', 'noauto', 'user', 'nouser', 'users', 'owner', 'group', '_netdev', 'nofail',
  'loud', 'silent', 'remount', 'kernel_cache', 'auto_cache', 'debug', 'nonempty', 'big_writes',
]);
const IGNORED_VALUED = new Set(['fsname', 'subtype', 'max_read', 'uid', 'gid', 'umask', 'context', 'fscontext', 'defcontext', 'rootcontext']);

export interface TransportOptions {
  /** mount(2) flags from rw/ro/nosuid/... */
  flags: number;
  allowOther: boolean;
  /** allow_other/noallow_other was given (else allowOther is the default). */
  allowOtherGiven?: boolean;
  defaultPermissions: boolean;
  /** Kernel cache timeouts in seconds (entry_timeout=, attr_timeout=, negative_timeout=). */
  entryTimeout?: number;
  attrTimeout?: number;
  negativeTimeout?: number;
  /** spin=US: how long the serving thread polls /dev/fuse after a reply before it sleeps (0 = never). */
  spinUs?: number;
  /** supervise=off: a daemon crash ends this mount (no journal; passthrough as usual). Default on. */
  supervise?: boolean;
  /** uring / nouring: serve over FUSE-over-io_uring when the kernel offers it (fuse/uring-transport.ts). */
  uring?: boolean;
  /** The options for the union (dirs=, lowerdir=, ..., anything unknown) joined with commas. */
  unionOptions: string;
}

/** Upper bound of spin= (10 ms): beyond that spinning only burns CPU. */
export const MAX_SPIN_US = 10_000;

const TIMEOUTS: Record<string, 'entryTimeout' | 'attrTimeout' | 'negativeTimeout'> = {
  entry_timeout: 'entryTimeout',
  attr_timeout: 'attrTimeout',
  negative_timeout: 'negativeTimeout',
};

/** Split `-o` options into what the kernel gets and what the union gets. */
export function splitOptions(options: string): TransportOptions {
  const rest: string[] = [];
  const timeouts: Partial<Record<'entryTimeout' | 'attrTimeout' | 'negativeTimeout', number>> = {};
  let flags = 0;
  let allowOther = true;
  let allowOtherGiven = false;
  let defaultPermissions = true;
  let spinUs: number | undefined;
  let supervise: boolean | undefined;
  let uring: boolean | undefined;
  for (const raw of splitOptionList(options)) {
    const opt = raw.trim();
    if (opt === '') continue;
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    if (eq < 0 && VFS[key]) {
      const [set, clear] = VFS[key]!;
      flags = (flags | set) & ~clear;
    } else if (key === 'allow_other' && eq < 0) allowOther = allowOtherGiven = true;
    else if ((key === 'noallow_other' || key === 'no_allow_other') && eq < 0) {
      allowOther = false;
      allowOtherGiven = true;
    }
    else if (key === 'default_permissions' && eq < 0) defaultPermissions = true;
    else if ((key === 'nodefault_permissions' || key === 'no_default_permissions') && eq < 0) defaultPermissions = false;
    else if (eq >= 0 && TIMEOUTS[key]) {
      const v = Number(opt.slice(eq + 1));
      if (!Number.isFinite(v) || v < 0 || opt.slice(eq + 1).trim() === '') throw new MountError('EINVAL', `${key} needs a number of seconds, got '${opt.slice(eq + 1)}'`);
      timeouts[TIMEOUTS[key]!] = v;
    } else if (eq >= 0 && key === 'spin') {
      const text = opt.slice(eq + 1).trim();
      const v = Number(text);
      if (text === '' || !Number.isInteger(v) || v < 0 || v > MAX_SPIN_US) throw new MountError('EINVAL', `spin needs a whole number of microseconds (0..${MAX_SPIN_US}), got '${opt.slice(eq + 1)}'`);
      spinUs = v;
    } else if (eq >= 0 && key === 'supervise') {
      const v = opt.slice(eq + 1).trim();
      if (v !== 'on' && v !== 'off') throw new MountError('EINVAL', `supervise must be 'on' or 'off', got '${v}'`);
      supervise = v === 'on';
    } else if (eq < 0 && (key === 'uring' || key === 'nouring')) uring = key === 'uring';
    else if (eq < 0 && IGNORED.has(key)) continue;
    else if (eq >= 0 && IGNORED_VALUED.has(key)) continue;
    else if (key.startsWith('x-') || key.startsWith('comment=')) continue;
    else rest.push(opt);
  }
  return { flags, allowOther, ...(allowOtherGiven ? { allowOtherGiven } : {}), defaultPermissions, ...timeouts, ...(spinUs !== undefined ? { spinUs } : {}), ...(supervise !== undefined ? { supervise } : {}), ...(uring !== undefined ? { uring } : {}), unionOptions: rest.join(',') };
}

/** Resolve and check a mount point: exists, is a directory, nothing mounted on it. */
export function checkMountpoint(mnt: string, cwd: string = process.cwd()): string {
  const abs = resolve(cwd, mnt);
  let real: string;
  try {
    real = realpathSync(abs);
    if (!statSync(real).isDirectory()) throw new MountError('ENOTDIR', `mount point ${abs} is not a directory`);
  } catch (e) {
    if (e instanceof MountError) throw e;
    if (isCode(e, 'ENOENT')) throw new MountError('ENOENT', `mount point ${abs} does not exist`);
    if (isCode(e, 'ENOTCONN')) throw new MountError('EBUSY', `mount point ${abs} is a dead FUSE mount (umount it first)`);
    throw e;
  }
  if (isMountPoint(real)) throw new MountError('EBUSY', `mount point ${real} is busy (already mounted)`);
  return real;
}

/**
 * When the top mount at `abs` is a dead layerfs mount (its daemon died before anyone else held its
 * /dev/fuse fd: every access answers ENOTCONN), detach it; true when one was. Any other dead FUSE
 * mount is left for checkMountpoint to refuse.
 */
export async function detachDeadMount(abs: string): Promise<boolean> {
  try {
    lstatSync(abs);
    return false;
  } catch (e) {
    if (!isCode(e, 'ENOTCONN')) return false;
  }
  const top = mountTable()
    .filter((m) => m.mountpoint === abs)
    .pop();
  if (top?.fstype !== FSTYPE) return false;
  await kernelUnmount(abs, true);
  return true;
}

export function openFuseDevice(): number {
  try {
    return openSync('/dev/fuse', 'r+');
  } catch (e) {
    const code = isCode(e, 'ENOENT') ? 'ENODEV' : isCode(e, 'EACCES', 'EPERM') ? 'EPERM' : 'EIO';
    throw new MountError(code, `cannot open /dev/fuse (${(e as Error).message})`);
  }
}

interface NativeMount {
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
}

let nativeCache: NativeMount | null | undefined;
async function native(): Promise<NativeMount | null> {
  if (nativeCache === undefined) {
    try {
      nativeCache = (await import('../sys/native.js')) as NativeMount;
    } catch {
      nativeCache = null;
    }
  }
  return nativeCache;
}

/** mount(2) the FUSE filesystem served on `fd` at `mountpoint`. */
export async function kernelMount(fd: number, mountpoint: string, source: string, t: TransportOptions): Promise<void> {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const data = [`fd=${fd}`, 'rootmode=40000', `user_id=${uid}`, `group_id=${gid}`];
  if (t.allowOther) data.push('allow_other');
  if (t.defaultPermissions) data.push('default_permissions');
  const n = await native();
  if (n) {
    try {
      n.mount(source, mountpoint, FSTYPE, t.flags, data.join(','));
      return;
    } catch (e) {
      throw new MountError(errnoCode(e) ?? 'EIO', `mount(2) on ${mountpoint} failed: ${(e as Error).message}`);
    }
  }
  const flagOpts = flagNames(t.flags);
  const r = spawnSync('/bin/mount', ['-i', '-n', '-t', FSTYPE, '-o', [...flagOpts, ...data.map((d) => (d.startsWith('fd=') ? 'fd=3' : d))].join(','), source, mountpoint], {
    stdio: ['ignore', 'ignore', 'pipe', fd],
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new MountError('EIO', `mount ${mountpoint}: ${(r.stderr || '').trim() || 'failed'}`);
}

/** How a mount was made: mount(2) by us, or fusermount3 (which then also unmounts it). */
export type MountVia = 'mount(2)' | 'fusermount3';

/**
 * Open /dev/fuse and mount it at `mountpoint` the way our privilege allows (see the module
 * comment); resolves with the fd to serve and how it was mounted.
 */
export async function mountFuse(mountpoint: string, source: string, t: TransportOptions): Promise<{ fd: number; via: MountVia }> {
  const p = privilege();
  if (p !== 'user') {
    let fd = -1;
    try {
      fd = openFuseDevice();
      await kernelMount(fd, mountpoint, source, t);
      return { fd, via: 'mount(2)' };
    } catch (e) {
      if (fd >= 0) closeQuietly(fd);
      if (p === 'root' || !(e instanceof MountError) || e.code !== 'EPERM') throw e;
      // a user namespace whose root may not mount FUSE (or open /dev/fuse): try the setuid way
    }
  }
  const fd = await fusermountMount(mountpoint, {
    flags: flagNames(t.flags),
    // the default allow_other only where fusermount3 allows it; an explicit one is refused there with a clear error
    allowOther: t.allowOther && (t.allowOtherGiven === true || userAllowOther()),
    defaultPermissions: t.defaultPermissions,
    source,
    subtype: FSTYPE.slice('fuse.'.length),
  });
  return { fd, via: 'fusermount3' };
}

/** VFS flag names for a flags word (the set ones). */
function flagNames(flags: number): string[] {
  return Object.entries(VFS)
    .filter(([, [set]]) => set !== 0 && (flags & set) === set)
    .map(([k]) => k);
}

/**
 * Unmount: umount2(2) (`lazy` detaches); without root `fusermount3 -u [-z]` (also for a user
 * namespace's root whose umount2 is refused: the mount was made by fusermount3 then). Never call
 * this from the thread that serves the mount.
 */
export async function kernelUnmount(mountpoint: string, lazy: boolean, via?: MountVia): Promise<void> {
  const p = privilege();
  if (via === 'fusermount3' || p === 'user') return fusermountUnmount(mountpoint, lazy);
  if (p === 'userns') {
    try {
      await umount2Now(mountpoint, lazy);
    } catch (e) {
      if (!isCode(e, 'EPERM')) throw e;
      await fusermountUnmount(mountpoint, lazy);
    }
    return;
  }
  return umount2Now(mountpoint, lazy);
}

async function umount2Now(mountpoint: string, lazy: boolean): Promise<void> {
  const n = await native();
  if (n) {
    n.umount2(mountpoint, lazy ? MNT_DETACH : 0);
    return;
  }
  const r = spawnSync('/bin/umount', [...(lazy ? ['-l'] : []), mountpoint], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new MountError('EBUSY', `umount ${mountpoint}: ${(r.stderr || '').trim()}`);
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}
