/**
 * Small pure helpers of the opcode handlers (ops.ts): reply shapes and request context.
 */
import type { Attr, Ctx } from '../engine/types.js';
import { errnoConstants } from '../errors/index.js';
import { Size } from './abi.js';
import { encodeU32Out, type InHeader } from './codec.js';

const OUT = Size.OUT_HEADER;
const ERANGE = -(errnoConstants.ERANGE ?? 34);

/** GETXATTR/LISTXATTR: size 0 asks for the size; a too-small buffer is ERANGE. */
export function sizedReply(out: Buffer, size: number, value: Buffer): number {
  if (size === 0) return encodeU32Out(out, OUT, value.length) - OUT;
  if (value.length > size) return ERANGE;
  value.copy(out, OUT);
  return value.length;
}

export function ctxOf(hd: InHeader): Ctx {
  return { uid: hd.uid, gid: hd.gid, pid: hd.pid };
}

export function isErrnoError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' && errnoConstants[(e as { code: string }).code] !== undefined;
}

export function zeroAttr(ino: number): Attr {
  return {
    ino,
    mode: 0o40000,
    nlink: 0,
    uid: 0,
    gid: 0,
    rdev: 0,
    size: 0,
    blocks: 0,
    blksize: 0,
    atimeSec: 0,
    atimeNsec: 0,
    mtimeSec: 0,
    mtimeNsec: 0,
    ctimeSec: 0,
    ctimeNsec: 0,
  };
}
