/**
 * The native addon (native/layerfs.c, built by `node-gyp rebuild` into
 * build/Release/layerfs.node): the Linux syscalls node:fs lacks.
 *
 * Every function is synchronous and throws an `FsError` shaped like a node:fs
 * error (`code`, negative `errno`, `syscall`, `path`, `dest`), e.g.
 * `ENODATA: no data available, lgetxattr '/x'`. Bad argument types throw a
 * TypeError, as node:fs does. The addon itself returns a negative errno on
 * failure (one exception, thrown here, instead of two); `tryLgetxattr` and
 * `tryFgetxattr` return undefined for an absent xattr without any exception. Offsets and lengths are JS numbers (int64 in C,
 * exact up to 2^53). The addon is context-aware: it loads in worker_threads too.
 */
import { createRequire } from 'node:module';
import { FsError, codeOf, errnoOf } from '../errors/index.js';
import { AT_REMOVEDIR } from './constants.js';

/** What the addon returns: a negative errno number on failure, else the value. */
interface Binding {
  UTIME_NOW: number;
  UTIME_OMIT: number;
  FICLONE: number;
  lgetxattr(path: string, name: string): Buffer | number;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): undefined | number;
  llistxattr(path: string): string[] | number;
  lremovexattr(path: string, name: string): undefined | number;
  fgetxattr(fd: number, name: string): Buffer | number;
  fsetxattr(fd: number, name: string, value: Buffer, flags: number): undefined | number;
  flistxattr(fd: number): string[] | number;
  fremovexattr(fd: number, name: string): undefined | number;
  mknod(path: string, mode: number, dev: number): undefined | number;
  renameat2(oldPath: string, newPath: string, flags: number): undefined | number;
  utimensat(path: string, as: number, ans: number, ms: number, mns: number, noFollow: boolean): undefined | number;
  futimens(fd: number, as: number, ans: number, ms: number, mns: number): undefined | number;
  fallocate(fd: number, mode: number, offset: number, length: number): undefined | number;
  lseek(fd: number, offset: number, whence: number): number;
  copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): number;
  ficlone(destFd: number, srcFd: number): undefined | number;
  ioctl(fd: number, request: number, arg: Buffer | number | null): number;
  mount(source: string, target: string, fstype: string, flags: number, data: string): undefined | number;
  umount2(target: string, flags: number): undefined | number;
  socketpair(): [number, number] | number;
  recvFd(sockfd: number): number;
  lstatInto(path: string, out: Float64Array): number;
  setNonBlocking(fd: number, on: boolean): undefined | number;
  readSpin(fd: number, buf: Buffer, spinUs: number, wait: boolean): number;
  pollIn(fds: Buffer, count: number, spinUs: number): number;
  eventfd(): number;
  write(fd: number, buf: Buffer, length: number): number;
  syncFileRange(fd: number, offset: number, nbytes: number, flags: number): undefined | number;
  syncfs(fd: number): undefined | number;
  openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number;
  fstatatInto(dirfd: number, path: string, out: Float64Array, flags: number): number;
  mkdirat(dirfd: number, path: string, mode: number): undefined | number;
  unlinkat(dirfd: number, path: string, flags: number): undefined | number;
  symlinkat(target: string, dirfd: number, path: string): undefined | number;
  linkat(oldDirfd: number, oldPath: string, newDirfd: number, newPath: string, flags: number): undefined | number;
  renameat2At(oldDirfd: number, oldPath: string, newDirfd: number, newPath: string, flags: number): undefined | number;
  mknodat(dirfd: number, path: string, mode: number, dev: number): undefined | number;
  readlinkat(dirfd: number, path: string): string | number;
  fchmodat(dirfd: number, path: string, mode: number, flags: number): undefined | number;
  fchownat(dirfd: number, path: string, uid: number, gid: number, flags: number): undefined | number;
  utimensatAt(dirfd: number, path: string, as: number, ans: number, ms: number, mns: number, flags: number): undefined | number;
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

const ENODATA = -errnoOf('ENODATA');

/** Throws the FsError for a negative errno returned by the addon. */
function fail(r: number, syscall: string, path?: string, dest?: string): never {
  throw new FsError(codeOf(-r), syscall, path, dest);
}

// ---- constants ----------------------------------------------------------------

/** utimensat/futimens nanosecond values: set to now / leave unchanged. */
export const UTIME_NOW: number = b.UTIME_NOW;
export const UTIME_OMIT: number = b.UTIME_OMIT;
/** setxattr, renameat2, umount2 and mount flags: one copy, in constants.ts. */
export {
  XATTR_CREATE,
  XATTR_REPLACE,
  RENAME_NOREPLACE,
  RENAME_EXCHANGE,
  RENAME_WHITEOUT,
  MNT_FORCE,
  MNT_DETACH,
  MNT_EXPIRE,
  UMOUNT_NOFOLLOW,
  MS_RDONLY,
  MS_NOSUID,
  MS_NODEV,
  MS_NOEXEC,
  MS_REMOUNT,
  MS_BIND,
  MS_REC,
} from './constants.js';
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
  const r = b.lgetxattr(path, name);
  if (typeof r === 'number') fail(r, 'lgetxattr', path);
  return r;
}

/** Like lgetxattr, but `undefined` when the xattr is absent (no exception on the common miss). */
export function tryLgetxattr(path: string, name: string): Buffer | undefined {
  const r = b.lgetxattr(path, name);
  if (typeof r === 'number') {
    if (r === ENODATA) return undefined;
    fail(r, 'lgetxattr', path);
  }
  return r;
}

export function lsetxattr(path: string, name: string, value: Buffer, flags: number): void {
  const r = b.lsetxattr(path, name, value, flags);
  if (r !== undefined) fail(r, 'lsetxattr', path);
}

/** Names of all xattrs of `path` the caller may see (symlinks not followed). */
export function llistxattr(path: string): string[] {
  const r = b.llistxattr(path);
  if (typeof r === 'number') fail(r, 'llistxattr', path);
  return r;
}

export function lremovexattr(path: string, name: string): void {
  const r = b.lremovexattr(path, name);
  if (r !== undefined) fail(r, 'lremovexattr', path);
}

export function fgetxattr(fd: number, name: string): Buffer {
  const r = b.fgetxattr(fd, name);
  if (typeof r === 'number') fail(r, 'fgetxattr');
  return r;
}

/** Like fgetxattr, but `undefined` when the xattr is absent. */
export function tryFgetxattr(fd: number, name: string): Buffer | undefined {
  const r = b.fgetxattr(fd, name);
  if (typeof r === 'number') {
    if (r === ENODATA) return undefined;
    fail(r, 'fgetxattr');
  }
  return r;
}

export function fsetxattr(fd: number, name: string, value: Buffer, flags: number): void {
  const r = b.fsetxattr(fd, name, value, flags);
  if (r !== undefined) fail(r, 'fsetxattr');
}

export function flistxattr(fd: number): string[] {
  const r = b.flistxattr(fd);
  if (typeof r === 'number') fail(r, 'flistxattr');
  return r;
}

export function fremovexattr(fd: number, name: string): void {
  const r = b.fremovexattr(fd, name);
  if (r !== undefined) fail(r, 'fremovexattr');
}

// ---- nodes and names ------------------------------------------------------------

/** mknod(2). `mode` includes the type (S_IFIFO, S_IFCHR, ...); `dev` is a `makedev` value. */
export function mknod(path: string, mode: number, dev: number): void {
  const r = b.mknod(path, mode, dev);
  if (r !== undefined) fail(r, 'mknod', path);
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
  const r = b.renameat2(oldPath, newPath, flags);
  if (r !== undefined) fail(r, 'renameat2', oldPath, newPath);
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
  const r = b.utimensat(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, noFollow);
  if (r !== undefined) fail(r, 'utimensat', path);
}

export function futimens(fd: number, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void {
  const r = b.futimens(fd, atimeSec, atimeNsec, mtimeSec, mtimeNsec);
  if (r !== undefined) fail(r, 'futimens');
}

// ---- file data ------------------------------------------------------------------

export function fallocate(fd: number, mode: number, offset: number, length: number): void {
  const r = b.fallocate(fd, mode, offset, length);
  if (r !== undefined) fail(r, 'fallocate');
}

/** lseek(2), including SEEK_DATA/SEEK_HOLE (ENXIO past the last data). Returns the new offset. */
export function lseek(fd: number, offset: number, whence: number): number {
  const r = b.lseek(fd, offset, whence);
  if (r < 0) fail(r, 'lseek');
  return r;
}

/**
 * copy_file_range(2); returns bytes copied (0 at end of input, may be short).
 * A negative offset means "use and advance the fd's own file position".
 */
export function copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): number {
  const r = b.copyFileRange(fdIn, offIn, fdOut, offOut, length);
  if (r < 0) fail(r, 'copy_file_range');
  return r;
}

/** ioctl(destFd, FICLONE, srcFd): share extents. EOPNOTSUPP/EXDEV/EINVAL when the filesystem cannot. */
export function ficlone(destFd: number, srcFd: number): void {
  const r = b.ficlone(destFd, srcFd);
  if (r !== undefined) fail(r, 'ioctl');
}

/**
 * ioctl(2). A Buffer `arg` is passed as a pointer (the kernel may read and write it);
 * a number is passed as an integer. Returns ioctl's (non-negative) return value.
 */
export function ioctl(fd: number, request: number, arg: Buffer | number): number {
  const r = b.ioctl(fd, request, arg);
  if (r < 0) fail(r, 'ioctl');
  return r;
}

// ---- mounts ---------------------------------------------------------------------

/** mount(2). Empty `source`, `fstype` or `data` are passed as NULL. */
export function mount(source: string, target: string, fstype: string, flags: number, data: string): void {
  const r = b.mount(source, target, fstype, flags, data);
  if (r !== undefined) fail(r, 'mount', target);
}

/** umount2(2) with MNT_FORCE / MNT_DETACH / MNT_EXPIRE / UMOUNT_NOFOLLOW. */
export function umount2(target: string, flags: number): void {
  const r = b.umount2(target, flags);
  if (r !== undefined) fail(r, 'umount2', target);
}

// ---- fd passing (fusermount3) -------------------------------------------------------

/** socketpair(AF_UNIX, SOCK_STREAM), both ends close-on-exec. */
export function socketpair(): [number, number] {
  const r = b.socketpair();
  if (typeof r === 'number') fail(r, 'socketpair');
  return r;
}

/**
 * Receive one fd sent with SCM_RIGHTS on unix socket `sockfd` (blocking; one recvmsg(2)). ENODATA
 * when the peer closed, or sent a message without an fd.
 */
export function recvFd(sockfd: number): number {
  const r = b.recvFd(sockfd);
  if (r < 0) fail(r, 'recvmsg');
  return r;
}

// ---- lstat into numbers ---------------------------------------------------------

/** Slots of the array `lstatInto` fills. */
export const ST = {
  dev: 0, ino: 1, mode: 2, nlink: 3, uid: 4, gid: 5, rdev: 6, size: 7, blksize: 8, blocks: 9,
  atimeSec: 10, atimeNsec: 11, mtimeSec: 12, mtimeNsec: 13, ctimeSec: 14, ctimeNsec: 15,
} as const;

/** An array for `lstatInto` (16 slots, see ST). */
export function statArray(): Float64Array {
  return new Float64Array(16);
}

/**
 * lstat(2) of `path` into `out` (slots in ST; times as seconds + nanoseconds, exact), without a
 * Stats object. Returns 0, or a NEGATIVE ERRNO (no exception: a missing entry is common).
 */
export function lstatInto(path: string, out: Float64Array): number {
  return b.lstatInto(path, out);
}

// ---- /dev/fuse I/O --------------------------------------------------------------

/** Sets or clears O_NONBLOCK on `fd`. */
export function setNonBlocking(fd: number, on: boolean): void {
  const r = b.setNonBlocking(fd, on);
  if (typeof r === 'number') fail(r, 'fcntl');
}

/**
 * One read(2) of `fd` (which must be O_NONBLOCK) into `buf`: retried for up to `spinUs`
 * microseconds while nothing is there; then, with `wait` (default), waits in poll(2) and reads,
 * else returns -EAGAIN. Returns the byte count, or a NEGATIVE ERRNO (no exception: the caller
 * decides, e.g. -ENODEV once a FUSE mount is gone).
 */
export function readSpin(fd: number, buf: Buffer, spinUs: number, wait = true): number {
  return b.readSpin(fd, buf, spinUs, wait);
}

/** Size of one struct pollfd in the buffer pollIn takes: int fd, short events, short revents. */
export const POLLFD_SIZE = 8;
export const POLLIN = 1;

/**
 * poll(2) over `count` struct pollfd in `fds` (POLLFD_SIZE bytes each, fd and events filled by
 * the caller): polls without sleeping for up to `spinUs` microseconds, then waits. Returns how
 * many entries have revents set (at offset 6 of each), or a NEGATIVE ERRNO.
 */
export function pollIn(fds: Buffer, count: number, spinUs: number): number {
  return b.pollIn(fds, count, spinUs);
}

/** A non-blocking eventfd(2): write 8 bytes to it to wake a thread waiting in pollIn. */
export function eventfd(): number {
  const r = b.eventfd();
  if (r < 0) fail(r, 'eventfd');
  return r;
}

/** write(2) of buf[0..length): the byte count, or a NEGATIVE ERRNO (no exception). */
export function writeRaw(fd: number, buf: Buffer, length: number): number {
  return b.write(fd, buf, length);
}

// ---- writeback ------------------------------------------------------------------

/** sync_file_range(2) flags. */
export const SYNC_FILE_RANGE_WAIT_BEFORE = 1;
export const SYNC_FILE_RANGE_WRITE = 2;
export const SYNC_FILE_RANGE_WAIT_AFTER = 4;

/**
 * sync_file_range(2): start (and/or wait for) writeback of a byte range. No durability by itself
 * (no metadata, no disk cache flush): it only lets a later fsync wait for less.
 */
export function syncFileRange(fd: number, offset: number, nbytes: number, flags: number): void {
  const r = b.syncFileRange(fd, offset, nbytes, flags);
  if (r !== undefined) fail(r, 'sync_file_range');
}

// ---- xattr names without exceptions (appended: the GETXATTR absence cache) ---------------

/**
 * Names of all xattrs of `path` (symlinks not followed), or a NEGATIVE ERRNO (no exception:
 * e.g. -EOPNOTSUPP on a filesystem without xattrs, -ENOENT).
 */
export function tryLlistxattr(path: string): string[] | number {
  return b.llistxattr(path);
}

/** syncfs(2): write out and commit the whole filesystem holding `fd` (many files, one commit). */
export function syncfs(fd: number): void {
  const r = b.syncfs(fd);
  if (r !== undefined) fail(r, 'syncfs');
}

// ---- calls relative to a directory fd (branches held by fd, see branch/branch.ts) ----------

/** Shows `path` in an error as where it was resolved from (the dir fd) and the relative name. */
function atPath(dirfd: number, path: string): string {
  return `/proc/self/fd/${dirfd}/${path}`;
}

/**
 * openat2(2) (Linux 5.6): open `path` relative to `dirfd` under the RESOLVE_* rules `resolve`
 * (RESOLVE_BENEATH: no `..`, absolute path or symlink may leave dirfd's tree). O_CLOEXEC is added.
 */
export function openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
  const r = b.openat2(dirfd, path, flags, mode, resolve);
  if (r < 0) fail(r, 'openat2', atPath(dirfd, path));
  return r;
}

/** fstatat(2) into `out` (slots in ST), as lstatInto: 0 or a NEGATIVE ERRNO. */
export function fstatatInto(dirfd: number, path: string, out: Float64Array, flags: number): number {
  return b.fstatatInto(dirfd, path, out, flags);
}

export function mkdirat(dirfd: number, path: string, mode: number): void {
  const r = b.mkdirat(dirfd, path, mode);
  if (r !== undefined) fail(r, 'mkdir', atPath(dirfd, path));
}

export function unlinkat(dirfd: number, path: string, flags: number): void {
  const r = b.unlinkat(dirfd, path, flags);
  if (r !== undefined) fail(r, flags & AT_REMOVEDIR ? 'rmdir' : 'unlink', atPath(dirfd, path));
}

export function symlinkat(target: string, dirfd: number, path: string): void {
  const r = b.symlinkat(target, dirfd, path);
  if (r !== undefined) fail(r, 'symlink', target, atPath(dirfd, path));
}

export function linkat(oldDirfd: number, oldPath: string, newDirfd: number, newPath: string, flags: number): void {
  const r = b.linkat(oldDirfd, oldPath, newDirfd, newPath, flags);
  if (r !== undefined) fail(r, 'link', atPath(oldDirfd, oldPath), atPath(newDirfd, newPath));
}

/** renameat2(2) between two directory fds; flags RENAME_NOREPLACE / RENAME_EXCHANGE / RENAME_WHITEOUT or 0. */
export function renameat2At(oldDirfd: number, oldPath: string, newDirfd: number, newPath: string, flags: number): void {
  const r = b.renameat2At(oldDirfd, oldPath, newDirfd, newPath, flags);
  if (r !== undefined) fail(r, 'rename', atPath(oldDirfd, oldPath), atPath(newDirfd, newPath));
}

export function mknodat(dirfd: number, path: string, mode: number, dev: number): void {
  const r = b.mknodat(dirfd, path, mode, dev);
  if (r !== undefined) fail(r, 'mknod', atPath(dirfd, path));
}

export function readlinkat(dirfd: number, path: string): string {
  const r = b.readlinkat(dirfd, path);
  if (typeof r === 'number') fail(r, 'readlink', atPath(dirfd, path));
  return r;
}

/** fchmodat; with AT_SYMLINK_NOFOLLOW a symlink answers EOPNOTSUPP (nothing is followed). */
export function fchmodat(dirfd: number, path: string, mode: number, flags: number): void {
  const r = b.fchmodat(dirfd, path, mode, flags);
  if (r !== undefined) fail(r, 'chmod', atPath(dirfd, path));
}

export function fchownat(dirfd: number, path: string, uid: number, gid: number, flags: number): void {
  const r = b.fchownat(dirfd, path, uid, gid, flags);
  if (r !== undefined) fail(r, 'lchown', atPath(dirfd, path));
}

export function utimensatAt(
  dirfd: number,
  path: string,
  atimeSec: number,
  atimeNsec: number,
  mtimeSec: number,
  mtimeNsec: number,
  flags: number,
): void {
  const r = b.utimensatAt(dirfd, path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, flags);
  if (r !== undefined) fail(r, 'utimensat', atPath(dirfd, path));
}
