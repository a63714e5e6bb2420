/**
 * Requests the kernel sends again after a daemon crash (FUSE_NOTIFY_RESEND, protocol 7.40): the
 * dead daemon had read them and not answered. A serving thread handles one request at a time, so
 * of a mount at most one such request was being handled when the daemon died: the journal's
 * in-flight slot (node-journal.ts) names it, or, when the daemons that took over since died before
 * serving its resend, their journals' CARRY records. Every other resent request never reached the
 * engine and is simply served.
 *
 * The in-flight one may have been done, in full, before the reply was lost: served again it
 * would fail where the first run succeeded. What the disk shows then decides:
 *   MKDIR, MKNOD, SYMLINK, LINK  EEXIST  -> done: answer with the entry now there
 *   CREATE                       EEXIST  -> done: served again without O_EXCL (opens what it made)
 *   UNLINK, RMDIR                ENOENT  -> done: answer 0
 *   RENAME, RENAME2              ENOENT  -> done (the old name is gone): answer 0
 *   WRITE on an O_APPEND handle     the file already reaches offset + size -> done: answer size
 *                                   (the kernel sends an append at its idea of the file's end; the
 *                                   backing fd appends wherever the end is, so a second run would
 *                                   append the data twice)
 * Other WRITEs (at their offset), SETATTR, SETXATTR, ... are idempotent and served again as they are.
 */
import { errnoOf } from '../errors/index.js';
import { O_APPEND, O_EXCL } from '../sys/constants.js';
import { Op, Size } from './abi.js';
import { encodeU32Out, type InHeader } from './codec.js';
import * as rq from './requests.js';

const EEXIST = -errnoOf('EEXIST');
const ENOENT = -errnoOf('ENOENT');

/**
 * The opcodes whose second run may differ from the first (the table above): only these are worth
 * carrying across takeovers (node-journal.ts CARRY); any other is simply served again.
 */
const JUDGED: ReadonlySet<number> = new Set([Op.WRITE, Op.CREATE, Op.MKDIR, Op.MKNOD, Op.SYMLINK, Op.LINK, Op.UNLINK, Op.RMDIR, Op.RENAME, Op.RENAME2]);

export function judgedOnResend(opcode: number): boolean {
  return JUDGED.has(opcode);
}

/** Bit 63 of a resent request's unique (FUSE_UNIQUE_RESEND). */
const RESEND_HI = 0x80000000;

/** The unique of the request in `b` without the resend bit, and whether the bit was set. */
export function uniqueOf(b: Buffer): { unique: number; resent: boolean } {
  const hi = b.readUInt32LE(12);
  return { unique: b.readUInt32LE(8) + (hi & 0x7fffffff) * 2 ** 32, resent: (hi & RESEND_HI) !== 0 };
}

export interface Replayable {
  dispatch(hd: InHeader, b: Buffer, end: number, out: Buffer): number;
  entryOf(hd: InHeader, name: string, out: Buffer): number;
  appendLanded(w: rq.ReadWriteIn): boolean;
}

/** Serve the request the dead daemon was handling when it died (see the module comment). */
export function serveReplayed(ops: Replayable, hd: InHeader, b: Buffer, end: number, out: Buffer): number {
  const at = Size.IN_HEADER;
  if (hd.opcode === Op.WRITE) {
    const w = rq.decodeReadWriteIn(b, at);
    if ((w.flags & O_APPEND) !== 0 && ops.appendLanded(w)) return encodeU32Out(out, Size.OUT_HEADER, w.size) - Size.OUT_HEADER;
  }
  if (hd.opcode === Op.CREATE) {
    const r = ops.dispatch(hd, b, end, out);
    if (r !== EEXIST) return r;
    b.writeUInt32LE(b.readUInt32LE(at) & ~O_EXCL, at);
    return ops.dispatch(hd, b, end, out);
  }
  const r = ops.dispatch(hd, b, end, out);
  switch (hd.opcode) {
    case Op.MKDIR:
      return r === EEXIST ? ops.entryOf(hd, rq.decodeMkdirIn(b, at, end).name, out) : r;
    case Op.MKNOD:
      return r === EEXIST ? ops.entryOf(hd, rq.decodeMknodIn(b, at, end).name, out) : r;
    case Op.SYMLINK:
      return r === EEXIST ? ops.entryOf(hd, rq.decodeSymlinkIn(b, at, end).name, out) : r;
    case Op.LINK:
      return r === EEXIST ? ops.entryOf(hd, rq.decodeLinkIn(b, at, end).name, out) : r;
    case Op.UNLINK:
    case Op.RMDIR:
    case Op.RENAME:
    case Op.RENAME2:
      return r === ENOENT ? 0 : r;
    default:
      return r;
  }
}
