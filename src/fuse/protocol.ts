/**
 * The raw protocol layer (as go-fuse's `fuse/` package apart from its node API): one table entry
 * per opcode decodes the request body into its typed struct (requests.ts), calls the one method of
 * the file system for that opcode (`RawFileSystem`, implemented over the node table by ops.ts) and
 * encodes its typed answer as the reply body (codec.ts, dirent-codec.ts). Errors thrown by the file
 * system become `-errno` here, and only here.
 *
 * The replies' cache timeouts are the protocol's: entries and attributes are handed out with the
 * session's entry/attr timeouts, and a LOOKUP that finds nothing becomes a negative entry for
 * negative_timeout (or plain ENOENT when that is 0).
 */
import type { Attr, StatFs } from '../engine/types.js';
import { errnoCode, errnoConstants, errnoOf, toFsError } from '../errors/index.js';
import { FSYNC_FDATASYNC, Init, Op, Size } from './abi.js';
import {
  type InHeader,
  type InitOut,
  encodeAttrOut,
  encodeEntryOut,
  encodeInitOut,
  encodeInitVersionOnly,
  encodeOpenOut,
  encodeStatfs,
  encodeU32Out,
  encodeU64Out,
  zeroAttr,
} from './codec.js';
import { DirentList } from './dirent-codec.js';
import { GENERATION } from './node-table.js';
import * as rq from './requests.js';

/** Returned by a handler when the kernel expects no reply. */
export const NO_REPLY = -1_000_000;

/** An entry handed to the kernel: its node id (one lookup reference counted) and attributes. */
export interface Entry {
  nodeid: number;
  attr: Attr;
}

/** How an open is answered: the handle, FOPEN_* flags and the passthrough backing id (0: none). */
export interface Opened {
  fh: number;
  openFlags: number;
  backingId: number;
}

/**
 * What requests are served from: one method per opcode (go-fuse's RawFileSystem), typed requests
 * in and typed answers out; no buffers but the READ destination and the READDIR list. `hd` is the
 * request's header (node id, caller). Methods throw FsError with the errno to answer.
 */
export interface RawFileSystem {
  /** The INIT answer for what the kernel offered; null for a major version we do not speak. */
  init(offered: rq.InitIn): InitOut | null;
  destroy(): void;
  /** null: no such name (a negative entry). */
  lookup(hd: InHeader, name: string): Entry | null;
  forget(nodeid: number, nlookup: number): void;
  getattr(hd: InHeader): Attr;
  setattr(hd: InHeader, req: rq.SetattrIn): Attr;
  readlink(hd: InHeader): string;
  symlink(hd: InHeader, req: rq.SymlinkIn): Entry;
  mknod(hd: InHeader, req: rq.MknodIn): Entry;
  mkdir(hd: InHeader, req: rq.MkdirIn): Entry;
  unlink(hd: InHeader, name: string): void;
  rmdir(hd: InHeader, name: string): void;
  rename(hd: InHeader, req: rq.RenameIn): void;
  link(hd: InHeader, req: rq.LinkIn): Entry;
  open(hd: InHeader, req: rq.OpenIn): Opened;
  create(hd: InHeader, req: rq.CreateIn): { entry: Entry; opened: Opened };
  /** Read at most `size` bytes into buf[at..]; the count read. */
  read(req: rq.ReadWriteIn, buf: Buffer, at: number, size: number): number;
  /** Write `req.size` bytes from data[at..]; the count written. */
  write(req: rq.ReadWriteIn, data: Buffer, at: number): number;
  flush(fh: number): void;
  release(fh: number): void;
  fsync(fh: number, datasync: boolean): void;
  opendir(hd: InHeader): Opened;
  /** Append the entries from `req.offset` on while they fit. */
  readdir(req: rq.ReadWriteIn, list: DirentList, plus: boolean): void;
  releasedir(fh: number): void;
  fsyncdir(fh: number): void;
  statfs(hd: InHeader): StatFs;
  access(hd: InHeader, mask: number): void;
  setxattr(hd: InHeader, req: rq.SetxattrIn): void;
  /** The value, or the negative errno of an absent name (the common answer: no exception built). */
  getxattr(hd: InHeader, name: string): Buffer | number;
  /** The names, each NUL-terminated. */
  listxattr(hd: InHeader): Buffer;
  removexattr(hd: InHeader, name: string): void;
  fallocate(req: rq.FallocateIn): void;
  lseek(req: rq.LseekIn): number;
}

export interface ProtocolConfig {
  entryTimeout: number;
  attrTimeout: number;
  /** How long the kernel may remember that a name does not exist (0: not at all). */
  negativeTimeout: number;
  /** Called with an unexpected (non-errno) error, for the trace. */
  onBug?: (opcode: number, e: unknown) => void;
}

const OUT = Size.OUT_HEADER;
const ENOENT = -errnoOf('ENOENT');
const ENOSYS = -errnoOf('ENOSYS');
const EOPNOTSUPP = -errnoOf('EOPNOTSUPP');
const EPROTO = -errnoOf('EPROTO');
const ERANGE = -errnoOf('ERANGE');

/** One opcode: decode the body at `at` (ending at `end`), serve it, encode the reply at out[16..]. */
type Handler = (s: FuseProtocol, hd: InHeader, b: Buffer, at: number, end: number, out: Buffer) => number;

const T: Handler[] = [];
T[Op.INIT] = (s, _hd, b, at, end, out) => s.initReply(out, rq.decodeInitIn(b, at, end));
T[Op.DESTROY] = (s) => (s.fs.destroy(), 0);
T[Op.LOOKUP] = (s, hd, b, at, end, out) => s.lookupReply(out, s.fs.lookup(hd, rq.decodeName(b, at, end)));
T[Op.FORGET] = (s, hd, b, at) => (s.fs.forget(hd.nodeid, rq.decodeForgetIn(b, at)), NO_REPLY);
T[Op.BATCH_FORGET] = (s, _hd, b, at, end) => {
  for (const f of rq.decodeBatchForget(b, at, end)) s.fs.forget(f.nodeid, f.nlookup);
  return NO_REPLY;
};
T[Op.INTERRUPT] = () => NO_REPLY;
T[Op.GETATTR] = (s, hd, _b, _at, _end, out) => s.attrReply(out, s.fs.getattr(hd));
T[Op.SETATTR] = (s, hd, b, at, _end, out) => s.attrReply(out, s.fs.setattr(hd, rq.decodeSetattrIn(b, at)));
T[Op.READLINK] = (s, hd, _b, _at, _end, out) => out.write(s.fs.readlink(hd), OUT, 'utf8');
T[Op.SYMLINK] = (s, hd, b, at, end, out) => s.entryReply(out, OUT, s.fs.symlink(hd, rq.decodeSymlinkIn(b, at, end)));
T[Op.MKNOD] = (s, hd, b, at, end, out) => s.entryReply(out, OUT, s.fs.mknod(hd, rq.decodeMknodIn(b, at, end)));
T[Op.MKDIR] = (s, hd, b, at, end, out) => s.entryReply(out, OUT, s.fs.mkdir(hd, rq.decodeMkdirIn(b, at, end)));
T[Op.UNLINK] = (s, hd, b, at, end) => (s.fs.unlink(hd, rq.decodeName(b, at, end)), 0);
T[Op.RMDIR] = (s, hd, b, at, end) => (s.fs.rmdir(hd, rq.decodeName(b, at, end)), 0);
T[Op.RENAME] = (s, hd, b, at, end) => (s.fs.rename(hd, rq.decodeRenameIn(b, at, end, false)), 0);
T[Op.RENAME2] = (s, hd, b, at, end) => (s.fs.rename(hd, rq.decodeRenameIn(b, at, end, true)), 0);
T[Op.LINK] = (s, hd, b, at, end, out) => s.entryReply(out, OUT, s.fs.link(hd, rq.decodeLinkIn(b, at, end)));
T[Op.OPEN] = (s, hd, b, at, _end, out) => openReply(out, OUT, s.fs.open(hd, rq.decodeOpenIn(b, at)));
T[Op.CREATE] = (s, hd, b, at, end, out) => {
  const { entry, opened } = s.fs.create(hd, rq.decodeCreateIn(b, at, end));
  return openReply(out, OUT + s.entryReply(out, OUT, entry), opened);
};
T[Op.READ] = (s, _hd, b, at, _end, out) => {
  const r = rq.decodeReadWriteIn(b, at);
  return s.fs.read(r, out, OUT, Math.min(r.size, out.length - OUT));
};
T[Op.WRITE] = (s, _hd, b, at, _end, out) => encodeU32Out(out, OUT, s.fs.write(rq.decodeReadWriteIn(b, at), b, rq.writeDataAt(at))) - OUT;
T[Op.FLUSH] = (s, _hd, b, at) => (s.fs.flush(rq.decodeFh(b, at)), 0);
T[Op.RELEASE] = (s, _hd, b, at) => (s.fs.release(rq.decodeFh(b, at)), 0);
T[Op.FSYNC] = (s, _hd, b, at) => {
  const r = rq.decodeFsyncIn(b, at);
  s.fs.fsync(r.fh, (r.fsyncFlags & FSYNC_FDATASYNC) !== 0);
  return 0;
};
T[Op.OPENDIR] = (s, hd, _b, _at, _end, out) => openReply(out, OUT, s.fs.opendir(hd));
T[Op.READDIR] = (s, _hd, b, at, _end, out) => s.readdirReply(out, rq.decodeReadWriteIn(b, at), false);
T[Op.READDIRPLUS] = (s, _hd, b, at, _end, out) => s.readdirReply(out, rq.decodeReadWriteIn(b, at), true);
T[Op.RELEASEDIR] = (s, _hd, b, at) => (s.fs.releasedir(rq.decodeFh(b, at)), 0);
T[Op.FSYNCDIR] = (s, _hd, b, at) => (s.fs.fsyncdir(rq.decodeFh(b, at)), 0);
T[Op.STATFS] = (s, hd, _b, _at, _end, out) => encodeStatfs(out, OUT, s.fs.statfs(hd)) - OUT;
T[Op.ACCESS] = (s, hd, b, at) => (s.fs.access(hd, rq.decodeAccessIn(b, at)), 0);
T[Op.SETXATTR] = (s, hd, b, at, end) => (s.fs.setxattr(hd, rq.decodeSetxattrIn(b, at, end, s.setxattrExt)), 0);
T[Op.GETXATTR] = (s, hd, b, at, end, out) => {
  const r = rq.decodeGetxattrIn(b, at, end);
  return sizedReply(out, r.size, s.fs.getxattr(hd, r.name));
};
T[Op.LISTXATTR] = (s, hd, b, at, _end, out) => sizedReply(out, rq.decodeListxattrIn(b, at), s.fs.listxattr(hd));
T[Op.REMOVEXATTR] = (s, hd, b, at, end) => (s.fs.removexattr(hd, rq.decodeName(b, at, end)), 0);
T[Op.FALLOCATE] = (s, _hd, b, at) => (s.fs.fallocate(rq.decodeFallocateIn(b, at)), 0);
T[Op.LSEEK] = (s, _hd, b, at, _end, out) => encodeU64Out(out, OUT, s.fs.lseek(rq.decodeLseekIn(b, at))) - OUT;

/** fuse_open_out at `off`; the body length up to its end. */
function openReply(out: Buffer, off: number, o: Opened): number {
  return encodeOpenOut(out, off, o.fh, o.openFlags, o.backingId) - OUT;
}

/** GETXATTR/LISTXATTR: size 0 asks for the size; a too-small buffer is ERANGE. */
function sizedReply(out: Buffer, size: number, value: Buffer | number): number {
  if (typeof value === 'number') return value;
  if (size === 0) return encodeU32Out(out, OUT, value.length) - OUT;
  if (value.length > size) return ERANGE;
  value.copy(out, OUT);
  return value.length;
}

/** A thrown error with an errno of its own (FsError, node:fs errors), as against a bug. */
function isErrnoError(e: unknown): boolean {
  const code = errnoCode(e);
  return code !== undefined && errnoConstants[code] !== undefined;
}

export class FuseProtocol {
  /** The INIT answer, once given (requests before it are EPROTO). */
  init: InitOut | null = null;
  /** The kernel sends the 16-byte fuse_setxattr_in (SETXATTR_EXT agreed). */
  setxattrExt = false;

  constructor(
    readonly fs: RawFileSystem,
    private readonly cfg: ProtocolConfig,
  ) {}

  /**
   * Handle one request. Returns the reply body length (written at out[16..]), a negative errno,
   * or NO_REPLY.
   */
  dispatch(hd: InHeader, b: Buffer, end: number, out: Buffer): number {
    const fn = T[hd.opcode];
    if (fn === undefined) return ENOSYS;
    if (this.init === null && hd.opcode !== Op.INIT) return EPROTO;
    try {
      return fn(this, hd, b, Size.IN_HEADER, end, out);
    } catch (e) {
      const err = toFsError(e);
      if (err === e || isErrnoError(e)) {
        // The kernel remembers ENOSYS per opcode and stops asking: never let the file system's ENOSYS through.
        return err.code === 'ENOSYS' ? EOPNOTSUPP : -err.errnoNumber;
      }
      this.cfg.onBug?.(hd.opcode, e);
      return -err.errnoNumber;
    }
  }

  /** Serving again after a daemon crash: INIT was answered by the dead daemon. */
  resumed(reply: InitOut): void {
    this.init = reply;
    this.setxattrExt = (reply.flags & Init.SETXATTR_EXT) !== 0;
  }

  initReply(out: Buffer, offered: rq.InitIn): number {
    const reply = this.fs.init(offered);
    if (!reply) return encodeInitVersionOnly(out, OUT) - OUT;
    this.init = reply;
    this.setxattrExt = (reply.flags & Init.SETXATTR_EXT) !== 0;
    return encodeInitOut(out, OUT, reply) - OUT;
  }

  /** An entry_out at `off` with the session's timeouts; its length. */
  entryReply(out: Buffer, off: number, e: Entry): number {
    const c = this.cfg;
    return encodeEntryOut(out, off, { nodeid: e.nodeid, generation: GENERATION, entryValid: c.entryTimeout, attrValid: c.attrTimeout, attr: e.attr }) - off;
  }

  /**
   * A LOOKUP that found nothing: with negative_timeout, node id 0, a negative entry the kernel
   * may cache for entry_valid (creates through the mount replace it at once; changes made beneath
   * us show after the timeout, as for entries); else ENOENT.
   */
  lookupReply(out: Buffer, e: Entry | null): number {
    if (e !== null) return this.entryReply(out, OUT, e);
    if (this.cfg.negativeTimeout <= 0) return ENOENT;
    return encodeEntryOut(out, OUT, { nodeid: 0, generation: 0, entryValid: this.cfg.negativeTimeout, attrValid: 0, attr: zeroAttr(0, 0) }) - OUT;
  }

  attrReply(out: Buffer, attr: Attr): number {
    return encodeAttrOut(out, OUT, this.cfg.attrTimeout, attr) - OUT;
  }

  readdirReply(out: Buffer, req: rq.ReadWriteIn, plus: boolean): number {
    const list = new DirentList(out, OUT, OUT + Math.min(req.size, out.length - OUT), this.cfg.entryTimeout, this.cfg.attrTimeout);
    this.fs.readdir(req, list, plus);
    return list.length;
  }
}
