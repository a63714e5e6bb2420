/**
 * One small handler per FUSE opcode; the only file of the transport that calls the engine.
 * A handler reads its request body from `inBuf`, writes its reply body into `out` after the
 * 16-byte out header, and returns the body length. Errors thrown by the engine (FsError)
 * become `-errno` here, and only here.
 *
 * Choices: the kernel applies the umask (FUSE_DONT_MASK is not negotiated), so modes arrive
 * final and the umask fields are ignored. O_TRUNC comes as a separate SETATTR (no
 * ATOMIC_O_TRUNC). Regular files are opened in FUSE passthrough mode when the kernel offers it
 * (passthrough.ts): the kernel then reads and writes the branch file itself. No writeback cache
 * (the kernel refuses passthrough with it), no keep_cache.
 *
 * Cache timeouts (entry, attr, negative) default to an hour (session.ts): the kernel keeps what a
 * reply told it, and every change made through the mount reaches it. For the requests it sends, the
 * kernel updates or drops its own dentries and attributes (create/mkdir/link/rename/unlink instantiate
 * or drop names, replace negative entries, invalidate the parent; SETATTR replies carry the new
 * attributes; writes invalidate size/mtime). What a request changes elsewhere is told with
 * NOTIFY_INVAL_INODE: the other names of a hard link (separate kernel inodes here) after
 * SETATTR/WRITE/FALLOCATE/LINK/UNLINK/RENAME over one of them (`refreshLinks`) and, from the engine's
 * invalidator, a directory that turns merged when a child is copied up (nlink 1). Changes made to the
 * branch directories beneath a live mount are not seen until the timeouts (AUFS udba=none).
 */
import type { Attr, DirHandleLike, FileHandleLike, SetAttr, TimeSpec, UnionNodeLike, UnionOps } from '../engine/types.js';
import { toFsError, errnoConstants } from '../errors/index.js';
import { Union, parseOptions } from '../engine/index.js';
import { Fattr, Fopen, FSYNC_FDATASYNC, Init, Init2, Op, Size } from './abi.js';
import {
  type InHeader,
  type InitOut,
  decodeBatchForget,
  decodeInitIn,
  decodeReadWriteIn,
  decodeSetattrIn,
  encodeAttrOut,
  encodeEntryOut,
  encodeInitOut,
  encodeOpenOut,
  encodeStatfs,
  encodeU32Out,
  encodeU64Out,
  negotiateInit,
  readCString,
  readTwoCStrings,
  readU64,
} from './codec.js';
import { direntPlusSize, encodeDirent, encodeDirentPlus } from './dirent-codec.js';
import { GENERATION, HandleTable, NodeTable } from './node-table.js';
import { ctxOf, isErrnoError, sizedReply, zeroAttr } from './ops-util.js';
import { MountError } from './mount-error.js';
import { PRESENT, XattrAbsence, changesNodes } from './xattr-absence.js';
import { type BackingDevice, Passthrough, fuseBackingDevice } from './passthrough.js';

/** Returned by a handler when the kernel expects no reply. */
export const NO_REPLY = -1_000_000;

const OUT = Size.OUT_HEADER;
const E = (code: string): number => -(errnoConstants[code] ?? errnoConstants.EIO!);
const ENOENT = E('ENOENT');
const EBADF = E('EBADF');
const ENOSYS = E('ENOSYS');
const ENODATA = E('ENODATA');
const EOPNOTSUPP = E('EOPNOTSUPP');
const EPROTO = E('EPROTO');
const ESTALE = E('ESTALE');
const O_ACCMODE = 3;
const DT_DIR = 4;
const RENAME_EXCHANGE = 2;
/** An open served by the daemon: no open_flags, no backing file. */
const THROUGH_US = { flags: 0, backingId: 0 } as const;

export interface OpsConfig {
  entryTimeout: number;
  attrTimeout: number;
  /** How long the kernel may remember that a name does not exist (0: not at all). */
  negativeTimeout: number;
  maxWrite: number;
  /** Called once INIT has been answered (the mount is live). */
  onInit?: (init: InitOut) => void;
  /** Called on DESTROY. */
  onDestroy?: () => void;
  /** Tell the kernel to drop its cached attributes of a node id (no page-cache change). */
  invalInode?: (nodeid: number) => void;
  /** Called with an unexpected (non-errno) error, for the trace. */
  onBug?: (opcode: number, e: unknown) => void;
  /** /dev/fuse, for registering passthrough backing files (none: no passthrough). */
  devFd?: number;
  /** Ask for FUSE passthrough of regular files (default true; used when the kernel offers it). */
  passthrough?: boolean;
  /** Registers backing files instead of /dev/fuse ioctls (tests). */
  backingDevice?: BackingDevice;
}

interface OpenDir<N, D> {
  node: N;
  dh: D;
}

/** What the union must offer to be served: the contract plus identity objects. */
export type ServedUnion<N extends UnionNodeLike & object, F extends FileHandleLike, D extends DirHandleLike> = UnionOps<N, F, D>;

export class FuseOps<N extends UnionNodeLike & object, F extends FileHandleLike, D extends DirHandleLike> {
  readonly nodes: NodeTable<N>;
  readonly files = new HandleTable<F>();
  /** fh -> node id, to refresh hard links after a write. */
  private readonly fileIds = new Map<number, number>();
  readonly dirs = new HandleTable<OpenDir<N, D>>();
  init: InitOut | null = null;
  /** Set when INIT negotiated passthrough. */
  passthrough: Passthrough | null = null;
  private readonly handlers = new Map<number, (h: InHeader, b: Buffer, p: number, end: number, out: Buffer) => number>();
  /** Absent xattrs already answered (ls -l asks for the same few names of every file). */
  private readonly xattrAbsent: XattrAbsence<N>;

  constructor(
    private readonly union: ServedUnion<N, F, D>,
    private readonly cfg: OpsConfig,
  ) {
    this.nodes = new NodeTable<N>(union.root, (n) => union.forget(n));
    // The engine tells us when a node's attributes change as a side effect of another request
    // (a directory that becomes merged on a child's copy-up, nlink -> 1): drop the kernel's copy.
    union.setInvalidator?.((n) => {
      for (const id of this.nodes.idsFor(n)) this.cfg.invalInode?.(id);
    });
    this.xattrAbsent = new XattrAbsence<N>(cfg.attrTimeout * 1000);
    const h = this.handlers;
    h.set(Op.INIT, (hd, b, p, end, out) => this.opInit(hd, b, p, end, out));
    h.set(Op.DESTROY, () => this.opDestroy());
    h.set(Op.LOOKUP, (hd, b, p, end, out) => this.opLookup(hd, b, p, end, out));
    h.set(Op.FORGET, (hd, b, p) => this.opForget(hd, b, p));
    h.set(Op.BATCH_FORGET, (_hd, b, p, end) => this.opBatchForget(b, p, end));
    h.set(Op.INTERRUPT, () => NO_REPLY);
    h.set(Op.GETATTR, (hd, _b, _p, _e, out) => this.opGetattr(hd, out));
    h.set(Op.SETATTR, (hd, b, p, _e, out) => this.opSetattr(hd, b, p, out));
    h.set(Op.READLINK, (hd, _b, _p, _e, out) => this.opReadlink(hd, out));
    h.set(Op.SYMLINK, (hd, b, p, end, out) => this.opSymlink(hd, b, p, end, out));
    h.set(Op.MKNOD, (hd, b, p, end, out) => this.opMknod(hd, b, p, end, out));
    h.set(Op.MKDIR, (hd, b, p, end, out) => this.opMkdir(hd, b, p, end, out));
    h.set(Op.UNLINK, (hd, b, p, end) => this.opUnlink(hd, b, p, end, false));
    h.set(Op.RMDIR, (hd, b, p, end) => this.opUnlink(hd, b, p, end, true));
    h.set(Op.RENAME, (hd, b, p, end) => this.opRename(hd, b, p, end, false));
    h.set(Op.RENAME2, (hd, b, p, end) => this.opRename(hd, b, p, end, true));
    h.set(Op.LINK, (hd, b, p, end, out) => this.opLink(hd, b, p, end, out));
    h.set(Op.OPEN, (hd, b, p, _e, out) => this.opOpen(hd, b, p, out));
    h.set(Op.CREATE, (hd, b, p, end, out) => this.opCreate(hd, b, p, end, out));
    h.set(Op.READ, (_hd, b, p, _e, out) => this.opRead(b, p, out));
    h.set(Op.WRITE, (_hd, b, p, _e, out) => this.opWrite(b, p, out));
    h.set(Op.FLUSH, (_hd, b, p) => this.opFlush(b, p));
    h.set(Op.RELEASE, (_hd, b, p) => this.opRelease(b, p));
    h.set(Op.FSYNC, (_hd, b, p) => this.withFile(b, p, (f) => this.union.fsync(f, (b.readUInt32LE(p + 8) & FSYNC_FDATASYNC) !== 0)));
    h.set(Op.OPENDIR, (hd, _b, _p, _e, out) => this.opOpendir(hd, out));
    h.set(Op.READDIR, (_hd, b, p, _e, out) => this.opReaddir(b, p, out, false));
    h.set(Op.READDIRPLUS, (_hd, b, p, _e, out) => this.opReaddir(b, p, out, true));
    h.set(Op.RELEASEDIR, (_hd, b, p) => this.opReleasedir(b, p));
    h.set(Op.FSYNCDIR, (_hd, b, p) => (this.dirs.get(readU64(b, p)) ? 0 : EBADF));
    h.set(Op.STATFS, (hd, _b, _p, _e, out) => encodeStatfs(out, OUT, this.union.statfs(this.node(hd))) - OUT);
    h.set(Op.ACCESS, (hd, b, p) => (this.union.access(this.node(hd), b.readUInt32LE(p), ctxOf(hd)), 0));
    h.set(Op.SETXATTR, (hd, b, p, end) => this.opSetxattr(hd, b, p, end));
    h.set(Op.GETXATTR, (hd, b, p, end, out) => this.opGetxattr(hd, b, p, end, out));
    h.set(Op.LISTXATTR, (hd, b, p, _e, out) => this.opListxattr(hd, b, p, out));
    h.set(Op.REMOVEXATTR, (hd, b, p, end) => (this.union.removexattr(this.node(hd), readCString(b, p, end).value), 0));
    h.set(Op.FALLOCATE, (_hd, b, p) => this.opFallocate(b, p));
    h.set(Op.LSEEK, (_hd, b, p, _e, out) => this.opLseek(b, p, out));
  }

  /**
   * Handle one request. Returns the reply body length (written at out[16..]), a negative errno,
   * or NO_REPLY.
   */
  dispatch(hd: InHeader, b: Buffer, end: number, out: Buffer): number {
    const fn = this.handlers.get(hd.opcode);
    if (!fn) return ENOSYS;
    if (!this.init && hd.opcode !== Op.INIT) return EPROTO;
    if (changesNodes(hd.opcode)) this.xattrAbsent.changed();
    try {
      return fn(hd, b, Size.IN_HEADER, end, out);
    } catch (e) {
      const err = toFsError(e);
      if (err === e || isErrnoError(e)) {
        // The kernel remembers ENOSYS per opcode and stops asking: never let the engine's ENOSYS through.
        return err.code === 'ENOSYS' ? E('EOPNOTSUPP') : -err.errnoNumber;
      }
      this.cfg.onBug?.(hd.opcode, e);
      return -err.errnoNumber;
    }
  }

  private node(hd: InHeader): N {
    const n = this.nodes.get(hd.nodeid);
    if (!n) throw toFsError({ code: 'ESTALE' });
    return n;
  }

  /** Write an entry_out for `node` (counting one lookup); returns the body length. */
  private entry(out: Buffer, node: N): number {
    return this.entryWithId(out, node).len;
  }

  private entryWithId(out: Buffer, node: N, attrIn?: Attr): { len: number; nodeid: number } {
    const attr = attrIn ?? this.union.getattr(node);
    const nodeid = this.nodes.add(node);
    const len =
      encodeEntryOut(out, OUT, {
        nodeid,
        generation: GENERATION,
        entryValid: this.cfg.entryTimeout,
        attrValid: this.cfg.attrTimeout,
        attr,
      }) - OUT;
    return { len, nodeid };
  }

  private opInit(_hd: InHeader, b: Buffer, p: number, end: number, out: Buffer): number {
    const offered = decodeInitIn(b, p, end - p);
    const reply = negotiateInit(offered, {
      flags:
        Init.ASYNC_READ |
        Init.BIG_WRITES |
        Init.PARALLEL_DIROPS |
        Init.DO_READDIRPLUS |
        Init.READDIRPLUS_AUTO |
        Init.MAX_PAGES |
        Init.ABORT_ERROR |
        Init.AUTO_INVAL_DATA |
        Init.CACHE_SYMLINKS |
        Init.INIT_EXT,
      flags2: Init2.NO_EXPORT_SUPPORT | (this.wantsPassthrough() ? Init2.PASSTHROUGH : 0),
      maxWrite: this.cfg.maxWrite,
      maxBackground: 64,
      // backing files on a plain filesystem; layerfs itself may still be a lower layer of overlayfs
      maxStackDepth: 1,
    });
    if (!reply) {
      // Unknown major: answer with our version only; the kernel decides.
      out.writeUInt32LE(7, OUT);
      out.writeUInt32LE(0, OUT + 4);
      return 8;
    }
    this.init = reply;
    if ((reply.flags2 & Init2.PASSTHROUGH) !== 0) {
      this.passthrough = new Passthrough(this.cfg.backingDevice ?? fuseBackingDevice(this.cfg.devFd!));
    }
    const len = encodeInitOut(out, OUT, reply) - OUT;
    return len;
  }

  /** Called by the channel after the INIT reply is written. */
  initDone(): void {
    if (this.init) this.cfg.onInit?.(this.init);
  }

  private opDestroy(): number {
    this.cfg.onDestroy?.();
    return 0;
  }

  private opLookup(hd: InHeader, b: Buffer, p: number, end: number, out: Buffer): number {
    const name = readCString(b, p, end).value;
    let node: N;
    let attr: Attr | undefined;
    try {
      const parent = this.node(hd);
      if (this.union.tryLookupAttr) {
        // the common miss builds no error object
        const r = this.union.tryLookupAttr(parent, name);
        if (r === null) return this.negativeEntry(out);
        ({ node, attr } = r);
      } else if (this.union.lookupAttr) ({ node, attr } = this.union.lookupAttr(parent, name));
      else node = this.union.lookup(parent, name);
    } catch (e) {
      if (toFsError(e).code === 'ENOENT') return this.negativeEntry(out);
      throw e;
    }
    return this.entryWithId(out, node, attr).len;
  }

  /**
   * ENOENT for a LOOKUP: with negative_timeout, nodeid 0, a negative entry the kernel may cache
   * for entry_valid (creates through the mount replace it at once; changes made beneath us show
   * after the timeout, as for entries).
   */
  private negativeEntry(out: Buffer): number {
    if (this.cfg.negativeTimeout <= 0) return ENOENT;
    const attr = zeroAttr(0);
    attr.mode = 0;
    return encodeEntryOut(out, OUT, { nodeid: 0, generation: 0, entryValid: this.cfg.negativeTimeout, attrValid: 0, attr }) - OUT;
  }

  private opForget(hd: InHeader, b: Buffer, p: number): number {
    this.nodes.forget(hd.nodeid, readU64(b, p));
    return NO_REPLY;
  }

  private opBatchForget(b: Buffer, p: number, end: number): number {
    for (const f of decodeBatchForget(b, p, end)) this.nodes.forget(f.nodeid, f.nlookup);
    return NO_REPLY;
  }

  private opGetattr(hd: InHeader, out: Buffer): number {
    return encodeAttrOut(out, OUT, this.cfg.attrTimeout, this.union.getattr(this.node(hd))) - OUT;
  }

  private opSetattr(hd: InHeader, b: Buffer, p: number, out: Buffer): number {
    const s = decodeSetattrIn(b, p);
    const set: SetAttr = {};
    if (s.valid & Fattr.MODE) set.mode = s.mode & 0o7777;
    if (s.valid & Fattr.UID) set.uid = s.uid;
    if (s.valid & Fattr.GID) set.gid = s.gid;
    if (s.valid & Fattr.SIZE) set.size = s.size;
    const time = (flag: number, now: number, sec: number, nsec: number): TimeSpec | undefined =>
      s.valid & now ? 'now' : s.valid & flag ? { sec, nsec } : undefined;
    const at = time(Fattr.ATIME, Fattr.ATIME_NOW, s.atime, s.atimensec);
    const mt = time(Fattr.MTIME, Fattr.MTIME_NOW, s.mtime, s.mtimensec);
    if (at) set.atime = at;
    if (mt) set.mtime = mt;
    const fh = s.valid & Fattr.FH ? this.files.get(s.fh) : undefined;
    const node = this.node(hd);
    const attr = Object.keys(set).length === 0 ? this.union.getattr(node) : this.union.setattr(node, set, ctxOf(hd), fh);
    this.refreshLinks(hd.nodeid);
    return encodeAttrOut(out, OUT, this.cfg.attrTimeout, attr) - OUT;
  }

  private opReadlink(hd: InHeader, out: Buffer): number {
    const target = this.union.readlink(this.node(hd));
    return out.write(target, OUT, 'utf8');
  }

  private opSymlink(hd: InHeader, b: Buffer, p: number, end: number, out: Buffer): number {
    const [name, target] = readTwoCStrings(b, p, end);
    return this.entry(out, this.union.symlink(this.node(hd), name, target, ctxOf(hd)));
  }

  private opMknod(hd: InHeader, b: Buffer, p: number, end: number, out: Buffer): number {
    const mode = b.readUInt32LE(p);
    const rdev = b.readUInt32LE(p + 4);
    const name = readCString(b, p + Size.MKNOD_IN, end).value;
    return this.entry(out, this.union.mknod(this.node(hd), name, mode, rdev, ctxOf(hd)));
  }

  private opMkdir(hd: InHeader, b: Buffer, p: number, end: number, out: Buffer): number {
    const mode = b.readUInt32LE(p) & 0o7777;
    const name = readCString(b, p + Size.MKDIR_IN, end).value;
    return this.entry(out, this.union.mkdir(this.node(hd), name, mode, ctxOf(hd)));
  }

  private opUnlink(hd: InHeader, b: Buffer, p: number, end: number, dir: boolean): number {
    const name = readCString(b, p, end).value;
    const parent = this.node(hd);
    if (dir) {
      this.union.rmdir(parent, name);
      return 0;
    }
    const gone = this.idOfName(parent, name);
    this.union.unlink(parent, name);
    // the other names of a hard-linked file have one link less (the kernel holds them apart)
    this.refreshLinks(gone);
    return 0;
  }

  private opRename(hd: InHeader, b: Buffer, p: number, end: number, v2: boolean): number {
    const newdir = this.nodes.get(readU64(b, p));
    if (!newdir) return ENOENT;
    const flags = v2 ? b.readUInt32LE(p + 8) : 0;
    const [from, to] = readTwoCStrings(b, p + (v2 ? Size.RENAME2_IN : Size.RENAME_IN), end);
    const replaced = (flags & RENAME_EXCHANGE) === 0 ? this.idOfName(newdir, to) : undefined;
    this.union.rename(this.node(hd), from, newdir, to, flags);
    this.refreshLinks(replaced);
    return 0;
  }

  /** The node id the kernel holds for `name` in `dir`, if any (nothing when absent). */
  private idOfName(dir: N, name: string): number | undefined {
    let n: N;
    try {
      n = this.union.lookup(dir, name);
    } catch {
      return undefined;
    }
    return this.nodes.idFor(n);
  }

  private opLink(hd: InHeader, b: Buffer, p: number, end: number, out: Buffer): number {
    const old = this.nodes.get(readU64(b, p));
    if (!old) return ENOENT;
    const name = readCString(b, p + Size.LINK_IN, end).value;
    const oldId = readU64(b, p);
    const len = this.entry(out, this.union.link(old, this.node(hd), name));
    this.cfg.invalInode?.(oldId);
    this.refreshLinks(oldId);
    return len;
  }

  private wantsPassthrough(): boolean {
    return this.cfg.passthrough !== false && (this.cfg.devFd !== undefined || this.cfg.backingDevice !== undefined);
  }

  /**
   * open_flags and backing id for a new open of node id `nodeid` reading/writing `fd` (counted
   * until RELEASE), or 'conflict' when that id serves another file (passthrough.ts).
   */
  private openMode(nodeid: number, fd: number): { flags: number; backingId: number } | 'conflict' {
    if (!this.passthrough || fd < 0) return THROUGH_US;
    const m = this.passthrough.open(nodeid, fd);
    if (m === 'conflict') return m;
    return m.passthrough ? { flags: Fopen.PASSTHROUGH, backingId: m.backingId } : THROUGH_US;
  }

  private opOpen(hd: InHeader, b: Buffer, p: number, out: Buffer): number {
    const flags = b.readUInt32LE(p);
    const f = this.union.open(this.node(hd), flags, ctxOf(hd));
    const m = this.openMode(hd.nodeid, f.fd);
    if (m === 'conflict') {
      // this kernel inode serves another file (a lower one, before this open's copy-up): give the
      // node a new id and let the VFS walk the path again (passthrough.ts)
      this.union.release(f);
      this.nodes.retire(hd.nodeid);
      return ESTALE;
    }
    const fh = this.files.add(f);
    this.fileIds.set(fh, hd.nodeid);
    // a write open copies a lower file up: its other names (hard links) now show the copy's ctime
    if ((flags & O_ACCMODE) !== 0) this.refreshLinks(hd.nodeid);
    return encodeOpenOut(out, OUT, fh, m.flags, m.backingId) - OUT;
  }

  private opCreate(hd: InHeader, b: Buffer, p: number, end: number, out: Buffer): number {
    const flags = b.readUInt32LE(p);
    const mode = b.readUInt32LE(p + 4);
    const name = readCString(b, p + Size.CREATE_IN, end).value;
    const { node, fh } = this.union.create(this.node(hd), name, mode, flags, ctxOf(hd));
    // an existing node (O_CREAT without O_EXCL) may already serve another file: a new id then
    const known = this.nodes.idFor(node);
    let m = known === undefined ? undefined : this.openMode(known, fh.fd);
    if (m === 'conflict') this.nodes.retire(known!);
    const { len, nodeid } = this.entryWithId(out, node);
    if (m === undefined || m === 'conflict') m = this.openMode(nodeid, fh.fd);
    // (a fresh id serves no file yet)
    if (m === 'conflict') m = THROUGH_US;
    const id = this.files.add(fh);
    this.fileIds.set(id, nodeid);
    return encodeOpenOut(out, OUT + len, id, m.flags, m.backingId) - OUT;
  }

  private opRead(b: Buffer, p: number, out: Buffer): number {
    const r = decodeReadWriteIn(b, p);
    const f = this.files.get(r.fh);
    if (!f) return EBADF;
    const size = Math.min(r.size, out.length - OUT);
    return this.union.read(f, out, OUT, size, r.offset);
  }

  private opWrite(b: Buffer, p: number, out: Buffer): number {
    const r = decodeReadWriteIn(b, p);
    const f = this.files.get(r.fh);
    if (!f) return EBADF;
    const n = this.union.write(f, b, p + Size.WRITE_IN, r.size, r.offset);
    this.refreshLinks(this.fileIds.get(r.fh));
    return encodeU32Out(out, OUT, n) - OUT;
  }

  private withFile(b: Buffer, p: number, fn: (f: F) => void): number {
    const f = this.files.get(readU64(b, p));
    if (!f) return EBADF;
    fn(f);
    return 0;
  }

  /**
   * close(2) waits for FLUSH (RELEASE comes later, asynchronously): passthrough writes never reached
   * us, so the other names of a hard-linked file learn of them here, before close returns.
   */
  private opFlush(b: Buffer, p: number): number {
    const fh = readU64(b, p);
    const f = this.files.get(fh);
    if (!f) return EBADF;
    this.union.flush(f);
    if (this.passthrough && (f.flags & O_ACCMODE) !== 0) this.refreshLinks(this.fileIds.get(fh));
    return 0;
  }

  private opRelease(b: Buffer, p: number): number {
    const fh = readU64(b, p);
    const f = this.files.remove(fh);
    const nodeid = this.fileIds.get(fh);
    this.fileIds.delete(fh);
    if (f) this.union.release(f);
    if (nodeid !== undefined && this.passthrough) this.passthrough.release(nodeid);
    return 0;
  }

  private opOpendir(hd: InHeader, out: Buffer): number {
    const node = this.node(hd);
    const dh = this.union.opendir(node, ctxOf(hd));
    return encodeOpenOut(out, OUT, this.dirs.add({ node, dh }), Fopen.CACHE_DIR | Fopen.KEEP_CACHE) - OUT;
  }

  /**
   * Entries come from the engine's snapshot taken at opendir (`.` and `..` included, as the engine
   * lists them); entry i's `off` is i + 1, the cookie to continue after it. READDIRPLUS entries
   * other than `.`/`..` are looked up (one lookup reference each); a name gone since opendir is
   * skipped.
   */
  private opReaddir(b: Buffer, p: number, out: Buffer, plus: boolean): number {
    const r = decodeReadWriteIn(b, p);
    const od = this.dirs.get(r.fh);
    if (!od) return EBADF;
    const limit = OUT + Math.min(r.size, out.length - OUT);
    const entries = od.dh.entries;
    let pos: number = OUT;
    for (let i = r.offset; i < entries.length; i++) {
      const e = entries[i]!;
      const dots = e.name === '.' || e.name === '..';
      if (!plus) {
        const next = encodeDirent(out, pos, limit, e.ino, i + 1, e.type, e.name);
        if (next < 0) break;
        pos = next;
        continue;
      }
      if (pos + direntPlusSize(Buffer.byteLength(e.name)) > limit) break;
      if (dots) {
        const entry = { nodeid: 0, generation: 0, entryValid: 0, attrValid: 0, attr: zeroAttr(e.ino) };
        pos = encodeDirentPlus(out, pos, limit, entry, i + 1, e.type || DT_DIR, e.name);
        continue;
      }
      let child: N;
      let attr: Attr;
      try {
        if (this.union.lookupAttr) ({ node: child, attr } = this.union.lookupAttr(od.node, e.name));
        else {
          child = this.union.lookup(od.node, e.name);
          attr = this.union.getattr(child);
        }
      } catch {
        continue; // gone since opendir
      }
      const nodeid = this.nodes.add(child);
      const entry = { nodeid, generation: GENERATION, entryValid: this.cfg.entryTimeout, attrValid: this.cfg.attrTimeout, attr };
      pos = encodeDirentPlus(out, pos, limit, entry, i + 1, e.type, e.name);
    }
    return pos - OUT;
  }

  private opReleasedir(b: Buffer, p: number): number {
    const od = this.dirs.remove(readU64(b, p));
    if (od) this.union.releasedir(od.dh);
    return 0;
  }

  private opSetxattr(hd: InHeader, b: Buffer, p: number, end: number): number {
    const size = b.readUInt32LE(p);
    const flags = b.readUInt32LE(p + 4);
    const ext = this.init !== null && (this.init.flags & Init.SETXATTR_EXT) !== 0;
    const name = readCString(b, p + (ext ? Size.SETXATTR_IN_EXT : Size.SETXATTR_IN), end);
    const value = Buffer.from(b.subarray(name.next, name.next + size));
    this.union.setxattr(this.node(hd), name.value, value, flags);
    return 0;
  }

  private opGetxattr(hd: InHeader, b: Buffer, p: number, end: number, out: Buffer): number {
    const size = b.readUInt32LE(p);
    const name = readCString(b, p + Size.GETXATTR_IN, end).value;
    const node = this.node(hd);
    let known = this.xattrAbsent.get(node, name);
    if (known === 0 && this.xattrAbsent.enabled && this.union.xattrNames) {
      // One listing answers this name and the others `ls -l` asks next (absent unless listed).
      const names = this.union.xattrNames(node);
      if (names) {
        this.xattrAbsent.rememberNames(node, names);
        known = names.includes(name) ? PRESENT : ENODATA;
      }
    }
    if (known < 0) return known;
    let value: Buffer;
    try {
      value = this.union.getxattr(node, name);
    } catch (e) {
      const r = -toFsError(e).errnoNumber;
      if (r === ENODATA || r === EOPNOTSUPP) {
        this.xattrAbsent.remember(node, name, r);
        return r;
      }
      throw e;
    }
    return sizedReply(out, size, value);
  }

  private opListxattr(hd: InHeader, b: Buffer, p: number, out: Buffer): number {
    const size = b.readUInt32LE(p);
    const names = this.union.listxattr(this.node(hd));
    const value = Buffer.from(names.map((n) => n + '\0').join(''), 'utf8');
    return sizedReply(out, size, value);
  }

  private opFallocate(b: Buffer, p: number): number {
    const f = this.files.get(readU64(b, p));
    if (!f) return EBADF;
    this.union.fallocate(f, b.readUInt32LE(p + 24), readU64(b, p + 8), readU64(b, p + 16));
    this.refreshLinks(this.fileIds.get(readU64(b, p)));
    return 0;
  }

  private opLseek(b: Buffer, p: number, out: Buffer): number {
    const f = this.files.get(readU64(b, p));
    if (!f) return EBADF;
    const pos = this.union.lseek(f, readU64(b, p + 8), b.readUInt32LE(p + 16));
    return encodeU64Out(out, OUT, pos) - OUT;
  }

  /**
   * After a change through one name of a hard-linked file, drop the kernel's cached attributes of
   * its other names (attributes only: no page-cache locks are taken, so this cannot deadlock; with
   * AUTO_INVAL_DATA the kernel drops stale pages itself when it sees the new size/mtime).
   */
  private refreshLinks(nodeid: number | undefined): void {
    if (nodeid === undefined || !this.cfg.invalInode) return;
    for (const id of this.nodes.sameIno(nodeid)) this.cfg.invalInode(id);
  }

  /** Release everything still open (after unmount). */
  releaseAll(): void {
    for (const f of this.files.values()) {
      try {
        this.union.release(f);
      } catch {
        /* best effort */
      }
    }
    for (const d of this.dirs.values()) {
      try {
        this.union.releasedir(d.dh);
      } catch {
        /* best effort */
      }
    }
  }
}

/** A union ready to serve, with what introspection shows about it. */
export interface OpenedUnion {
  union: ServedUnion<UnionNodeLike & object, FileHandleLike, DirHandleLike>;
  branches: { path: string; perm: string }[];
  xiPath: string;
  /** passthrough=on|off (default on): the transport's option, carried with the union's. */
  passthrough?: boolean;
  close(): void;
}

/** passthrough=on|off; undefined when absent. */
function passthroughOption(extra: Record<string, unknown>): boolean | undefined {
  if (!('passthrough' in extra)) return undefined;
  const v = extra.passthrough;
  delete extra.passthrough;
  if (v === 'on' || v === true) return true;
  if (v === 'off') return false;
  throw new MountError('EINVAL', `passthrough must be 'on' or 'off', got '${String(v)}'`);
}

/** Build the engine's union from a mount option string (relative paths against `cwd`). */
export function openUnion(options: string, cwd: string): OpenedUnion {
  const parsed = parseOptions(options, { cwd });
  const passthrough = passthroughOption(parsed.extra);
  // options nobody understands were warned about by the mounting command (option-warnings.ts)
  // and are ignored, as fuse-overlayfs does
  const union = new Union(parsed);
  const info = union.info();
  return {
    union,
    branches: info.branches.map((b) => ({ path: b.path, perm: b.perm })),
    xiPath: info.xinoPath ?? '',
    ...(passthrough !== undefined ? { passthrough } : {}),
    close: () => union.close(),
  };
}
