/**
 * Operations on host file descriptors opened through a Branch (open files of the union).
 * Thin wrappers so that the engine never imports node:fs itself.
 */
import * as fs from 'node:fs';
import { isCode } from '../errors/index.js';
import * as native from '../sys/native.js';

export const O = fs.constants;

export function read(fd: number, buf: Buffer, offset: number, length: number, position: number): number {
  return fs.readSync(fd, buf, offset, length, position);
}

export function write(fd: number, buf: Buffer, offset: number, length: number, position: number): number {
  return fs.writeSync(fd, buf, offset, length, position);
}

export function fstat(fd: number): fs.Stats {
  return fs.fstatSync(fd);
}

export function fstatBig(fd: number): fs.BigIntStats {
  return fs.fstatSync(fd, { bigint: true });
}

export function close(fd: number): void {
  fs.closeSync(fd);
}

export function fsync(fd: number, datasync: boolean): void {
  if (datasync) fs.fdatasyncSync(fd);
  else fs.fsyncSync(fd);
}

export function ftruncate(fd: number, size: number): void {
  fs.ftruncateSync(fd, size);
}

export function fchmod(fd: number, mode: number): void {
  fs.fchmodSync(fd, mode);
}

export function fchown(fd: number, uid: number, gid: number): void {
  fs.fchownSync(fd, uid, gid);
}

export function futimens(fd: number, aSec: number, aNsec: number, mSec: number, mNsec: number): void {
  native.futimens(fd, aSec, aNsec, mSec, mNsec);
}

export function fallocate(fd: number, mode: number, offset: number, length: number): void {
  native.fallocate(fd, mode, offset, length);
}

export function lseek(fd: number, offset: number, whence: number): number {
  return native.lseek(fd, offset, whence);
}

export function fsetxattr(fd: number, name: string, value: Buffer, flags: number): void {
  native.fsetxattr(fd, name, value, flags);
}

/**
 * Copy all of `src` into `dst` (both fds, dst empty): reflink when the filesystem can, else
 * copy_file_range in a loop, else read/write. Returns the method used.
 */
export function copyData(src: number, dst: number, size: number): 'ficlone' | 'copy_file_range' | 'readwrite' {
  if (size === 0) return 'readwrite';
  try {
    native.ficlone(dst, src);
    return 'ficlone';
  } catch (e) {
    if (!isCode(e, 'EOPNOTSUPP', 'ENOTSUP', 'EXDEV', 'EINVAL', 'ENOTTY', 'ENOSYS', 'EBADF', 'EPERM')) throw e;
  }
  let off = 0;
  try {
    while (off < size) {
      const n = native.copyFileRange(src, off, dst, off, Math.min(size - off, 1 << 30));
      if (n === 0) break;
      off += n;
    }
    // The file may have grown meanwhile; copy the rest too.
    for (;;) {
      const n = native.copyFileRange(src, off, dst, off, 1 << 30);
      if (n === 0) break;
      off += n;
    }
    return 'copy_file_range';
  } catch (e) {
    if (!isCode(e, 'EOPNOTSUPP', 'ENOTSUP', 'EXDEV', 'EINVAL', 'ENOSYS', 'EBADF')) throw e;
  }
  const buf = Buffer.allocUnsafe(1 << 20);
  for (;;) {
    const n = fs.readSync(src, buf, 0, buf.length, off);
    if (n === 0) break;
    let w = 0;
    while (w < n) w += fs.writeSync(dst, buf, w, n - w, off + w);
    off += n;
  }
  return 'readwrite';
}

/** utimensat/futimens special nanosecond values. */
export const UTIME_NOW: number = native.UTIME_NOW;
export const UTIME_OMIT: number = native.UTIME_OMIT;
