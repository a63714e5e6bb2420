import { constants as osConstants } from 'node:os';

/** Linux errno numbers by code name (`ENOENT` -> 2), from the running Node. */
export const constants: Readonly<Record<string, number>> = osConstants.errno as Record<string, number>;

const byNumber = new Map<number, string>();
for (const [name, n] of Object.entries(constants)) if (!byNumber.has(n)) byNumber.set(n, name);
// 95 has two names (ENOTSUP, EOPNOTSUPP); Linux (and callers) use EOPNOTSUPP for files.
if (constants.EOPNOTSUPP !== undefined) byNumber.set(constants.EOPNOTSUPP, 'EOPNOTSUPP');

/** Code name for an errno number, either sign (`2` -> `ENOENT`); `EIO` when unknown. */
export function codeOf(errno: number): string {
  return byNumber.get(Math.abs(errno)) ?? 'EIO';
}

/** Positive errno number for a code name; EIO's number when unknown. */
export function errnoOf(code: string): number {
  return constants[code] ?? constants.EIO!;
}

// The messages node:fs (libuv) prints for the codes a filesystem returns.
const messages: Record<string, string> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EIO: 'i/o error',
  EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'not enough memory',
  EACCES: 'permission denied',
  EBUSY: 'resource busy or locked',
  EEXIST: 'file already exists',
  EXDEV: 'cross-device link not permitted',
  ENODEV: 'no such device',
  ENOTDIR: 'not a directory',
  EISDIR: 'illegal operation on a directory',
  EINVAL: 'invalid argument',
  EMFILE: 'too many open files',
  ENFILE: 'file table overflow',
  ETXTBSY: 'text file is busy',
  EFBIG: 'file too large',
  ENOSPC: 'no space left on device',
  ESPIPE: 'invalid seek',
  EROFS: 'read-only file system',
  EMLINK: 'too many links',
  ERANGE: 'result too large',
  ENAMETOOLONG: 'name too long',
  ENOSYS: 'function not implemented',
  ENOTEMPTY: 'directory not empty',
  ELOOP: 'too many symbolic links encountered',
  ENODATA: 'no data available',
  ENOTSUP: 'operation not supported on socket',
  EOPNOTSUPP: 'operation not supported on socket',
  EOVERFLOW: 'value too large for defined data type',
  ESTALE: 'stale file handle',
  EINTR: 'interrupted system call',
  ENXIO: 'no such device or address',
  E2BIG: 'argument list too long',
  ECANCELED: 'operation canceled',
};

/** Human message for a code, as node:fs words it. */
export function strerror(code: string): string {
  return messages[code] ?? code.toLowerCase();
}
