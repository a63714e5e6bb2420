/**
 * The native addon (native/layerfs.c, built by `node-gyp rebuild` into
 * build/Release/layerfs.node): the Linux syscalls node:fs lacks.
 *
 * Every function is synchronous and throws an `FsError` shaped like a node:fs
 * error (`code`, negative `errno`, `syscall`, `path`, `dest`), e.g.
 * `ENODATA: no data available, lgetxattr '/x'`. Bad argument types throw a
 * TypeError, as node:fs does. Offsets and lengths are JS numbers (int64 in C,
 * exact up to 2^53). The addon is context-aware: it loads in worker_threads too.
 */
import { createRequire } from 'node:module';
import { FsError, codeOf } from '../errors/index.js';

interface Binding {
  UTIME_NOW: number;
  UTIME_OMIT: number;
  FICLONE: number;
  lgetxattr(path: string, name: string): Buffer;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): void;
  llistxattr(path: string): string[];
  lremovexattr(path: string, name: string): void;
  fgetxattr(fd: number, name: string): Buffer;
  fsetxattr(fd: number, name: string, value: Buffer, flags: number): void;
  flistxattr(fd: number): string[];
  fremovexattr(fd: number, name: string): void;
  mknod(path: string, mode: number, dev: number): void;
  renameat2(oldPath: string, newPath: string, flags: number): void;
  utimensat(path: string, as: number, ans: number, ms: number, mns: number, noFollow: boolean): void;
  futimens(fd: number, as: number, ans: number, ms: number, mns: number): void;
  fallocate(fd: number, mode: number, offset: number, length: number): void;
  lseek(fd: number, offset: number, whence: number): number;
  copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): number;
  ficlone(destFd: number, srcFd: number): void;
  ioctl(fd: number, request: number, arg: Buffer | number | null): number;
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
}

function load(): Binding {
  const require = createRequire(import.meta.url);
  // dist/src/sys/native.js -> <repo>/build/Release/layerfs.node
  const where = '../../../build/Release/layerfs.node';
  try {
    return require(where) as Binding;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`layerfs: cannot load the native addon (${where}); run \`npm install\` or \`npx node-gyp rebuild\`: ${why}`);
  }
}

const b: Binding = load();

/** A raw addon error carries a negative `errno` and `syscall`; anything else (TypeError) passes through. */
function wrap(e: unknown, path?: string, dest?: string): unknown {
  if (typeof e !== 'object' || e === null) return e;
  const x = e as { errno?: unknown; syscall?: unknown };
  if (typeof x.errno !== 'number' || typeof x.syscall !== 'string') return e;
  const n = -x.errno;
  // 95 has two names; Linux (and the brief's callers) use EOPNOTSUPP for files.
  const code = n === 95 ? 'EOPNOTSUPP' : codeOf(n);
  return new FsError(code, x.syscall, path, dest);
}

// ---- constants ----------------------------------------------------------------

/** utimensat/futimens nanosecond values: set to now / leave unchanged. */
export const UTIME_NOW: number = b.UTIME_NOW;
export const UTIME_OMIT: number = b.UTIME_OMIT;
/** setxattr flags. */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
/** renameat2 flags. */
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const RENAME_WHITEOUT = 4;
/** umount2 flags. */
export const MNT_FORCE = 1;
export const MNT_DETACH = 2;
export const MNT_EXPIRE = 4;
export const UMOUNT_NOFOLLOW = 8;
/** mount flags (the common ones). */
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_REMOUNT = 32;
export const MS_BIND = 4096;
export const MS_REC = 16384;
/** lseek whence values beyond node's. */
export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;
/** fallocate modes. */
export const FALLOC_FL_KEEP_SIZE = 1;
export const FALLOC_FL_PUNCH_HOLE = 2;
/** ioctl request for ficlone (also usable with `ioctl`). */
export const FICLONE: number = b.FICLONE;

// ---- xattrs -------------------------------------------------------------------

/** Value of xattr `name` of `path` (symlinks not followed). ENODATA when absent. */
export function lgetxattr(path: string, name: string): Buffer {
  try {
    return b.lgetxattr(path, name);
  } catch (e) {
    throw wrap(e, path);
  }
}

export function lsetxattr(path: string, name: string, value: Buffer, flags: number): void {
  try {
    b.lsetxattr(path, name, value, flags);
  } catch (e) {
    throw wrap(e, path);
  }
}

/** Names of all xattrs of `path` the caller may see (symlinks not followed). */
export function llistxattr(path: string): string[] {
  try {
    return b.llistxattr(path);
  } catch (e) {
    throw wrap(e, path);
  }
}

export function lremovexattr(path: string, name: string): void {
  try {
    b.lremovexattr(path, name);
  } catch (e) {
    throw wrap(e, path);
  }
}

export function fgetxattr(fd: number, name: string): Buffer {
  try {
    return b.fgetxattr(fd, name);
  } catch (e) {
    throw wrap(e);
  }
}

export function fsetxattr(fd: number, name: string, value: Buffer, flags: number): void {
  try {
    b.fsetxattr(fd, name, value, flags);
  } catch (e) {
    throw wrap(e);
  }
}

export function flistxattr(fd: number): string[] {
  try {
    return b.flistxattr(fd);
  } catch (e) {
    throw wrap(e);
  }
}

export function fremovexattr(fd: number, name: string): void {
  try {
    b.fremovexattr(fd, name);
  } catch (e) {
    throw wrap(e);
  }
}

// ---- nodes and names ------------------------------------------------------------

/** mknod(2). `mode` includes the type (S_IFIFO, S_IFCHR, ...); `dev` is a `makedev` value. */
export function mknod(path: string, mode: number, dev: number): void {
  try {
    b.mknod(path, mode, dev);
  } catch (e) {
    throw wrap(e, path);
  }
}

/** Device number from major/minor, glibc encoding (as st_rdev reports it). */
export function makedev(major: number, minor: number): number {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  const dev =
    ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
  return Number(dev);
}

/** Major number of a device number (glibc encoding). */
export function major(dev: number): number {
  const d = BigInt(dev);
  return Number(((d >> 32n) & 0xfffff000n) | ((d >> 8n) & 0xfffn));
}

/** Minor number of a device number (glibc encoding). */
export function minor(dev: number): number {
  const d = BigInt(dev);
  return Number(((d >> 12n) & 0xffffff00n) | (d & 0xffn));
}

/** renameat2(2) with RENAME_NOREPLACE / RENAME_EXCHANGE / RENAME_WHITEOUT. */
export function renameat2(oldPath: string, newPath: string, flags: number): void {
  try {
    b.renameat2(oldPath, newPath, flags);
  } catch (e) {
    throw wrap(e, oldPath, newPath);
  }
}

// ---- times ----------------------------------------------------------------------

/** utimensat(2) at nanosecond precision; an nsec of UTIME_NOW/UTIME_OMIT means now/unchanged. */
export function utimensat(
  path: string,
  atimeSec: number,
  atimeNsec: number,
  mtimeSec: number,
  mtimeNsec: number,
  noFollow: boolean,
): void {
  try {
    b.utimensat(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, noFollow);
  } catch (e) {
    throw wrap(e, path);
  }
}

export function futimens(fd: number, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void {
  try {
    b.futimens(fd, atimeSec, atimeNsec, mtimeSec, mtimeNsec);
  } catch (e) {
    throw wrap(e);
  }
}

// ---- file data ------------------------------------------------------------------

export function fallocate(fd: number, mode: number, offset: number, length: number): void {
  try {
    b.fallocate(fd, mode, offset, length);
  } catch (e) {
    throw wrap(e);
  }
}

/** lseek(2), including SEEK_DATA/SEEK_HOLE (ENXIO past the last data). Returns the new offset. */
export function lseek(fd: number, offset: number, whence: number): number {
  try {
    return b.lseek(fd, offset, whence);
  } catch (e) {
    throw wrap(e);
  }
}

/**
 * copy_file_range(2); returns bytes copied (0 at end of input, may be short).
 * A negative offset means "use and advance the fd's own file position".
 */
export function copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): number {
  try {
    return b.copyFileRange(fdIn, offIn, fdOut, offOut, length);
  } catch (e) {
    throw wrap(e);
  }
}

/** ioctl(destFd, FICLONE, srcFd): share extents. EOPNOTSUPP/EXDEV/EINVAL when the filesystem cannot. */
export function ficlone(destFd: number, srcFd: number): void {
  try {
    b.ficlone(destFd, srcFd);
  } catch (e) {
    throw wrap(e);
  }
}

/**
 * ioctl(2). A Buffer `arg` is passed as a pointer (the kernel may read and write it);
 * a number is passed as an integer. Returns ioctl's (non-negative) return value.
 */
export function ioctl(fd: number, request: number, arg: Buffer | number): number {
  try {
    return b.ioctl(fd, request, arg);
  } catch (e) {
    throw wrap(e);
  }
}

// ---- mounts ---------------------------------------------------------------------

/** mount(2). Empty `source`, `fstype` or `data` are passed as NULL. */
export function mount(source: string, target: string, fstype: string, flags: number, data: string): void {
  try {
    b.mount(source, target, fstype, flags, data);
  } catch (e) {
    throw wrap(e, target);
  }
}

/** umount2(2) with MNT_FORCE / MNT_DETACH / MNT_EXPIRE / UMOUNT_NOFOLLOW. */
export function umount2(target: string, flags: number): void {
  try {
    b.umount2(target, flags);
  } catch (e) {
    throw wrap(e, target);
  }
}
