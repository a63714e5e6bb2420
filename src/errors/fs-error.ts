import { constants, strerror } from './errno.js';

/**
 * The one error class of layerfs. Shaped like the errors `node:fs` throws
 * (`code`, `errno` negative, `syscall`, `path`, `dest`), so callers of the
 * in-process API can treat both alike, and the FUSE transport can reply `-errno`.
 */
export class FsError extends Error {
  readonly code: string;
  /** Negative, as in node:fs (`-2` for ENOENT). */
  readonly errno: number;
  readonly syscall: string | undefined;
  readonly path: string | undefined;
  readonly dest: string | undefined;

  constructor(code: string, syscall?: string, path?: string, dest?: string, detail?: string) {
    const n = constants[code] ?? constants.EIO!;
    const known = constants[code] !== undefined ? code : 'EIO';
    let msg = `${known}: ${detail ?? strerror(known)}`;
    if (syscall) msg += `, ${syscall}`;
    if (path !== undefined) msg += ` '${path}'`;
    if (dest !== undefined) msg += ` -> '${dest}'`;
    super(msg);
    this.name = 'Error';
    this.code = known;
    this.errno = -n;
    this.syscall = syscall;
    this.path = path;
    this.dest = dest;
  }

  /** Positive errno number, for the FUSE reply (which sends its negative). */
  get errnoNumber(): number {
    return -this.errno;
  }

  /** Same error with another syscall/path (for API layers that know the user's path). */
  withContext(syscall: string | undefined, path?: string, dest?: string): FsError {
    return new FsError(this.code, syscall ?? this.syscall, path, dest);
  }
}

/** Throw helper: `throw fsErr('ENOENT', 'lookup', p)`. */
export function fsErr(code: string, syscall?: string, path?: string, dest?: string): FsError {
  return new FsError(code, syscall, path, dest);
}

interface ErrnoLike {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  path?: unknown;
  dest?: unknown;
}

/**
 * Map anything thrown (node:fs errors, native addon errors, FsError) to an FsError.
 * Unknown errors become EIO. Never matches on message text.
 */
export function toFsError(e: unknown, syscall?: string, path?: string): FsError {
  if (e instanceof FsError) return e;
  if (typeof e === 'object' && e !== null) {
    const x = e as ErrnoLike;
    if (typeof x.code === 'string' && constants[x.code] !== undefined) {
      return new FsError(
        x.code,
        typeof x.syscall === 'string' ? x.syscall : syscall,
        typeof x.path === 'string' ? x.path : path,
        typeof x.dest === 'string' ? x.dest : undefined,
      );
    }
  }
  return new FsError('EIO', syscall, path);
}

/**
 * The string `code` of anything thrown (FsError, node:fs and node:net errors, DaemonError...), or
 * undefined when it has none. The one place that looks inside an unknown error for its code.
 */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const c = (e as ErrnoLike).code;
  return typeof c === 'string' ? c : undefined;
}

/** True when `e` is an errno error with one of these codes (FsError or node:fs error). */
export function isCode(e: unknown, ...codes: string[]): boolean {
  const c = errnoCode(e);
  return c !== undefined && codes.includes(c);
}
