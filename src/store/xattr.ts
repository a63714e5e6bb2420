/**
 * Extended attributes of files in a layer, through the native addon (never following symlinks).
 */
import * as native from '../sys/native.js';
import { errnoCode, isCode } from '../errors/index.js';
import { storeErr } from './store-error.js';

export function setXattr(file: string, name: string, value: Buffer): void {
  try {
    native.lsetxattr(file, name, value, 0);
  } catch (e) {
    throw xattrErr(e, name, file);
  }
}

/** setXattr through an open fd (`file` names it in the error). */
export function fsetXattr(fd: number, name: string, value: Buffer, file: string): void {
  try {
    native.fsetxattr(fd, name, value, 0);
  } catch (e) {
    throw xattrErr(e, name, file);
  }
}

function xattrErr(e: unknown, name: string, file: string): Error {
  const code = isCode(e, 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EACCES', 'ENOSPC', 'E2BIG', 'ERANGE') ? errnoCode(e)! : 'EIO';
  return storeErr(code, `cannot set xattr ${name}`, 'setxattr', file);
}

/**
 * The xattrs of one file (not following symlinks), private ones included (callers filter with
 * the engine's isPrivateXattr, the one rule for what a layer never carries). Filesystems without xattr support give an empty map.
 */
export function readXattrs(file: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let names: string[];
  try {
    names = native.llistxattr(file);
  } catch (e) {
    if (isCode(e, 'ENOTSUP', 'EOPNOTSUPP')) return out;
    throw e;
  }
  for (const name of names) {
    const v = native.tryLgetxattr(file, name);
    if (v !== undefined) out.set(name, v);
  }
  return out;
}
