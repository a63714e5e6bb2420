/**
 * Operations on host file descriptors opened through a Branch (open files of the union).
 * Thin wrappers so that the engine never imports node:fs itself.
 */
import * as fs from 'node:fs';
import * as native from '../sys/native.js';
import { FsError, codeOf } from '../errors/index.js';
import { AT_EMPTY_PATH } from '../sys/constants.js';

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

/** fstat into `out` (slots of sys ST, exact nanoseconds; see Branch.lstatInto); returns `out`. */
export function fstatInto(fd: number, out: Float64Array): Float64Array {
  const r = native.fstatatInto(fd, '', out, AT_EMPTY_PATH);
  if (r !== 0) throw new FsError(codeOf(-r), 'fstat');
  return out;
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

export { copyData, copySys, CHUNK, type CopyCaps, type CopyMethod, type CopyOptions } from './copy-data.js';

/** utimensat/futimens special nanosecond values. */
export const UTIME_NOW: number = native.UTIME_NOW;
export const UTIME_OMIT: number = native.UTIME_OMIT;

/** The xattr names of an open file (throws EOPNOTSUPP where the filesystem has none). */
export function flistxattr(fd: number): string[] {
  return native.flistxattr(fd);
}

/** An open file's xattr value, undefined when absent (ENODATA, without an exception). */
export function tryFgetxattr(fd: number, name: string): Buffer | undefined {
  return native.tryFgetxattr(fd, name);
}
