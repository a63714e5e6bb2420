/**
 * The bridge between the protocol layer (protocol.ts) and the engine: one short method per opcode
 * over the node table (node ids <-> engine nodes, open handles); the only file of the transport
 * that calls the engine. Requests arrive decoded and answers leave typed; errors thrown here and by
 * the engine (FsError) become `-errno` in the protocol layer.
 *
 * Choices: POSIX ACLs are negotiated with DONT_MASK where the mount wants them (posix-acl.ts):
 * the umask fields then go to the engine, which applies default ACLs; otherwise the kernel applies
 * the umask and modes arrive final. O_TRUNC comes as a separate SETATTR (no
 * ATOMIC_O_TRUNC). Regular files are opened in FUSE passthrough mode when the kernel offers it
 * (passthrough.ts): the kernel then reads and writes the branch file itself. No writeback cache
 * (the kernel refuses passthrough with it), no keep_cache. What a request changes beyond what its
 * reply tells the kernel is told by invalidation.ts; absent xattrs are remembered by
 * xattr-absence.ts.
 */
import type { Attr, Ctx, DirHandleLike, FileHandleLike, SetAttr, StatFs, TimeSpec, UnionNodeLike, UnionOps } from '../engine/types.js';
import { errnoOf, fsErr, toFsError } from '../errors/index.js';
import { O_ACCMODE, RENAME_EXCHANGE } from '../sys/constants.js';
import { Fattr, Fopen, Init, Init2 } from './abi.js';
import { type InHeader, type InitOut, negotiateInit } from './codec.js';
import type { DirentList } from './dirent-codec.js';
import { Invalidation } from './invalidation.js';
import { HandleTable, NodeTable } from './node-table.js';
import { type BackingDevice, Passthrough, THROUGH_US, fuseBackingDevice, openMode } from './passthrough.js';
import { type Entry, FuseProtocol, type Opened, type RawFileSystem } from './protocol.js';
import type * as rq from './requests.js';
import { type Clock, XattrAbsence } from './xattr-absence.js';
import { noFlushBit } from './flush-policy.js';
import { Restorer, type OpsJournal } from './restore.js';
import { journalMode, resumePassthrough } from './passthrough-resume.js';
import { intendRename, settleMoves } from './rename-intent.js';
import type { JournalState } from './node-journal.js';
import { ACL_INIT_FLAGS, aclGranted, createCtx } from './posix-acl.js';

export { NO_REPLY } from './protocol.js';

/** The kernel's INIT offers FUSE_OVER_IO_URING (flags2 counts only with INIT_EXT). */
function offersUring(offered: rq.InitIn): boolean {
  return (offered.flags & Init.INIT_EXT) !== 0 && (offered.flags2 & Init2.OVER_IO_URING) !== 0;
}

const ENODATA = -errnoOf('ENODATA');
const EOPNOTSUPP = -errnoOf('EOPNOTSUPP');
const EMPTY = Buffer.alloc(0);

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
  /** The clock cache deadlines are kept on, in ms (default performance.now; tests pass their own). */
  clock?: Clock;
  /** udba: a node got its first id / lost its last one (udba-watch.ts watches the directories the kernel knows). */
  onNodeNew?: (node: never) => void;
  onNodeGone?: (node: never) => void;
  /** Whether the kernel may cache a directory's listing (FOPEN_CACHE_DIR); default yes. No for udba=reval. */
  dirCache?: (node: never) => boolean;
  /** Ask for FUSE_POSIX_ACL + DONT_MASK (posix-acl.ts; only with default_permissions). */
  posixAcl?: boolean;
  /** Whether to agree to FUSE_OVER_IO_URING, told whether the kernel offers it (uring-transport.ts). */
  overIoUring?: (offered: boolean) => boolean;
}

interface OpenFile<F> {
  file: F;
  /** The node id it was opened by (hard links to refresh after a write; passthrough's count). */
  nodeid: number;
  /** Restored after a restart: whether the dead daemon's Passthrough counted it (passthrough-resume.ts). */
  pt?: boolean;
}

interface OpenDir<N, D> {
  node: N;
  dh: D;
  /** The node id it was opened by (READDIRPLUS entries' parent, for the journal). */
  nodeid: number;
}

/** What the union must offer to be served: the contract plus identity objects. */
export type ServedUnion<N extends UnionNodeLike & object, F extends FileHandleLike, D extends DirHandleLike> = UnionOps<N, F, D>;

function ctxOf(hd: InHeader): Ctx {
  return { uid: hd.uid, gid: hd.gid, pid: hd.pid };
}

/** SETATTR's valid bits and fields as the engine's SetAttr (the file handle aside). */
function setAttrOf(s: rq.SetattrIn): SetAttr {
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
  return set;
}

export class FuseOps<N extends UnionNodeLike & object, F extends FileHandleLike, D extends DirHandleLike> implements RawFileSystem {
  readonly nodes: NodeTable<N>;
  readonly files = new HandleTable<OpenFile<F>>();
  readonly dirs = new HandleTable<OpenDir<N, D>>();
  /** Set when INIT negotiated passthrough. */
  passthrough: Passthrough | null = null;
  private negotiated: InitOut | null = null;
  /** POSIX ACLs granted: create-type requests carry the caller's umask to the engine. */
  private aclUmask = false;
  private readonly protocol: FuseProtocol;
  private readonly inval: Invalidation<N>;
  /** Absent xattrs already answered (ls -l asks for the same few names of every file). */
  private readonly xattrAbsent: XattrAbsence<N>;
  private readonly xattrNames = (n: N): readonly string[] | null => this.union.xattrNames(n);
  /** Supervised mounts: what the kernel is handed is journaled (node-journal.ts). */
  journal: OpsJournal | null = null;
  /** After a restart: the dead daemon's ids and handles, found again on first use (restore.ts). */
  private restorer: Restorer<N, F, D> | null = null;
  /** After a restart: the dead daemon's handles its Passthrough counted (passthrough-resume.ts). */
  private ptResumed = new Map<number, number>();

  constructor(
    private readonly union: ServedUnion<N, F, D>,
    private readonly cfg: OpsConfig,
  ) {
    const gone = cfg.onNodeGone as ((n: N) => void) | undefined;
    this.nodes = new NodeTable<N>(
      union.root,
      gone ? (n) => (gone(n), union.forget(n)) : (n) => union.forget(n),
      (cfg.onNodeNew as ((n: N) => void) | undefined) ?? null,
    );
    this.inval = new Invalidation(this.nodes, cfg.invalInode);
    // The engine tells us when a node's attributes change as a side effect of another request
    // (a directory that becomes merged on a child's copy-up, nlink -> 1): drop the kernel's copy.
    union.setInvalidator((n) => this.inval.sideEffect(n));
    this.xattrAbsent = new XattrAbsence<N>(cfg.attrTimeout * 1000, cfg.clock);
    this.protocol = new FuseProtocol(this, cfg);
  }

  /**
   * Handle one request. Returns the reply body length (written at out[16..]), a negative errno,
   * or NO_REPLY.
   */
  dispatch(hd: InHeader, b: Buffer, end: number, out: Buffer): number {
    return this.protocol.dispatch(hd, b, end, out);
  }

  /** The live configuration (the protocol reads its timeouts from it for every reply). */
  get config(): OpsConfig {
    return this.cfg;
  }

  /** Called by the channel after the INIT reply is written. */
  initDone(): void {
    if (this.negotiated) this.cfg.onInit?.(this.negotiated);
  }

  /** The node of an id: the table's, else (after a restart) the journal's. */
  private byId(nodeid: number): N | undefined {
    return this.nodes.get(nodeid) ?? this.restorer?.node(nodeid);
  }

  private node(hd: InHeader): N {
    const n = this.byId(hd.nodeid);
    // unknown, or replaced by a branch change: the kernel retries with a fresh lookup (LOOKUP_REVAL)
    if (!n || this.union.isStale?.(n)) throw fsErr('ESTALE');
    return n;
  }

  /** An open directory (after a restart: the dead daemon's, opened again on first use); undefined when unknown. */
  private dir(fh: number): OpenDir<N, D> | undefined {
    return this.dirs.get(fh) ?? (this.restorer?.dir(fh) ? this.dirs.get(fh) : undefined);
  }

  private file(fh: number): OpenFile<F> {
    const f = this.files.get(fh) ?? (this.restorer?.file(fh) ? this.files.get(fh) : undefined);
    if (!f) throw fsErr('EBADF');
    return f;
  }

  /** Hand `node` to the kernel (counting one lookup), with `attr` or a fresh getattr. */
  private entry(node: N, parent: number, name: string, attr?: Attr): Entry {
    const a = attr ?? this.union.getattr(node);
    return { nodeid: this.addNamed(node, parent, name), attr: a };
  }

  /** entry() of a node a create-type op just made: its attributes as the op took them, when it has them. */
  private made(node: N, parent: number, name: string): Entry {
    return this.entry(node, parent, name, this.union.takeMadeAttr?.(node) ?? undefined);
  }

  /** nodes.add, journaling a new id's name. */
  private addNamed(node: N, parent: number, name: string): number {
    if (this.journal === null) return this.nodes.add(node);
    const before = this.nodes.size;
    const id = this.nodes.add(node);
    if (this.nodes.size > before) this.journal.named(id, parent, name);
    return id;
  }

  /** Every id the kernel holds for `node` (none when absent): what the journal drops or renames. */
  private idsOf(node: N | undefined): number[] {
    return node === undefined ? [] : this.nodes.idsFor(node);
  }

  /**
   * Serve again after a daemon crash: INIT as negotiated by the dead daemon (the kernel sends no
   * new one), the dead daemon's ids and handles from its journal.
   */
  resume(init: InitOut, state: JournalState): void {
    this.negotiated = init;
    this.aclUmask = aclGranted(init.flags);
    this.protocol.resumed(init);
    if ((init.flags2 & Init2.PASSTHROUGH) !== 0 && (this.cfg.devFd !== undefined || this.cfg.backingDevice !== undefined)) {
      this.passthrough = new Passthrough(this.cfg.backingDevice ?? fuseBackingDevice(this.cfg.devFd!));
      this.ptResumed = resumePassthrough(this.passthrough, state);
    }
    this.nodes.reserve(state.maxId);
    this.files.reserve(state.maxFh);
    this.dirs.reserve(state.maxFh);
    const u = this.union;
    settleMoves(state, u.root, (p, n) => u.lookup(p, n), this.journal);
    this.restorer = new Restorer<N, F, D>(state, {
      root: u.root,
      lookup: (p, n) => u.lookup(p, n),
      open: (n, f, c) => u.open(n, f, c),
      opendir: (n, c) => u.opendir(n, c),
      adoptNode: (id, n) => this.nodes.adopt(id, n),
      adoptFile: (fh, file, nodeid) => this.files.adopt(fh, { file, nodeid, pt: this.ptResumed.delete(fh) }),
      adoptDir: (fh, node, dh, nodeid) => this.dirs.adopt(fh, { node, dh, nodeid }),
      known: (id) => this.nodes.get(id),
      lost: (id) => this.journal?.dropped(id),
    });
  }

  /** After a restart, before a request that changes names: every pending id and handle resolved (restore.ts). */
  settle(): void {
    if (this.restorer !== null && this.restorer.pending > 0) this.restorer.settle();
  }

  /** The INIT this session negotiated (for a restart). */
  get initState(): InitOut | null {
    return this.negotiated;
  }

  /**
   * A resent O_APPEND WRITE the dead daemon may have done: whether the file already reaches the end
   * the kernel sent it for (replay.ts).
   */
  appendLanded(w: rq.ReadWriteIn): boolean {
    const node = this.byId(this.file(w.fh).nodeid);
    return node !== undefined && this.union.getattr(node).size >= w.offset + w.size;
  }

  /** A resent request that the dead daemon may have done: answer a create-type one with the entry now there. */
  entryOf(hd: InHeader, name: string, out: Buffer): number {
    return this.protocol.lookupReply(out, this.lookup(hd, name));
  }

  /** The child `name` of `parent` with its attributes; null when there is none. */
  private lookupAttr(parent: N, name: string): { node: N; attr: Attr } | null {
    return this.union.lookupAttr(parent, name); // the common miss builds no error object
  }

  /** The node id the kernel holds for `name` in `dir`, if any (nothing when absent). */
  private nodeOfName(dir: N, name: string): N | undefined {
    try {
      return this.union.lookup(dir, name);
    } catch {
      return undefined;
    }
  }

  private wantsPassthrough(): boolean {
    return this.cfg.passthrough !== false && (this.cfg.devFd !== undefined || this.cfg.backingDevice !== undefined);
  }

  init(offered: rq.InitIn): InitOut | null {
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
        Init.INIT_EXT |
        (this.cfg.posixAcl ? ACL_INIT_FLAGS : 0),
      flags2: Init2.NO_EXPORT_SUPPORT | (this.wantsPassthrough() ? Init2.PASSTHROUGH : 0) | (this.cfg.overIoUring?.(offersUring(offered)) ? Init2.OVER_IO_URING : 0),
      maxWrite: this.cfg.maxWrite,
      maxBackground: 64,
      // backing files on a plain filesystem; layerfs itself may still be a lower layer of overlayfs
      maxStackDepth: 1,
    });
    if (!reply) return null;
    this.negotiated = reply;
    this.aclUmask = aclGranted(reply.flags);
    if ((reply.flags2 & Init2.PASSTHROUGH) !== 0) {
      this.passthrough = new Passthrough(this.cfg.backingDevice ?? fuseBackingDevice(this.cfg.devFd!));
    }
    return reply;
  }

  destroy(): void {
    this.cfg.onDestroy?.();
  }

  lookup(hd: InHeader, name: string): Entry | null {
    const r = this.lookupAttr(this.node(hd), name);
    return r && this.entry(r.node, hd.nodeid, name, r.attr);
  }

  forget(nodeid: number, nlookup: number): void {
    this.nodes.forget(nodeid, nlookup);
    if (this.journal !== null && this.nodes.get(nodeid) === undefined && nodeid !== 1) {
      this.journal.dropped(nodeid);
      this.restorer?.forget(nodeid);
    }
  }

  getattr(hd: InHeader): Attr {
    return this.union.getattr(this.node(hd));
  }

  setattr(hd: InHeader, s: rq.SetattrIn): Attr {
    const set = setAttrOf(s);
    const fh = s.valid & Fattr.FH ? this.files.get(s.fh)?.file : undefined;
    const node = this.node(hd);
    // SETATTR with nothing to set is chown(-1, -1) (the kernel keeps ATTR_CTIME alone to itself
    // without writeback caching): the union still updates ctime, as the kernel's setattr does.
    const attr = this.union.setattr(node, set, ctxOf(hd), fh);
    this.inval.otherNames(hd.nodeid);
    return attr;
  }

  readlink(hd: InHeader): string {
    return this.union.readlink(this.node(hd));
  }

  symlink(hd: InHeader, r: rq.SymlinkIn): Entry {
    return this.made(this.union.symlink(this.node(hd), r.name, r.target, ctxOf(hd)), hd.nodeid, r.name);
  }

  mknod(hd: InHeader, r: rq.MknodIn): Entry {
    return this.made(this.union.mknod(this.node(hd), r.name, r.mode, r.rdev, createCtx(ctxOf(hd), r.umask, this.aclUmask)), hd.nodeid, r.name);
  }

  mkdir(hd: InHeader, r: rq.MkdirIn): Entry {
    return this.made(this.union.mkdir(this.node(hd), r.name, r.mode & 0o7777, createCtx(ctxOf(hd), r.umask, this.aclUmask)), hd.nodeid, r.name);
  }

  unlink(hd: InHeader, name: string): void {
    const parent = this.node(hd);
    const victim = this.nodeOfName(parent, name);
    const ids = this.journal !== null ? this.idsOf(victim) : null;
    const gone = victim && this.nodes.idFor(victim);
    this.union.unlink(parent, name);
    if (ids) for (const id of ids) this.journal!.dropped(id);
    // the other names of a hard-linked file have one link less (the kernel holds them apart)
    this.inval.otherNames(gone);
  }

  rmdir(hd: InHeader, name: string): void {
    const parent = this.node(hd);
    const ids = this.journal !== null ? this.idsOf(this.nodeOfName(parent, name)) : null;
    this.union.rmdir(parent, name);
    if (ids) for (const id of ids) this.journal!.dropped(id);
  }

  rename(hd: InHeader, r: rq.RenameIn): void {
    this.xattrAbsent.changed();
    const newdir = this.byId(r.newdir);
    if (!newdir) throw fsErr('ENOENT');
    const exchanged = (r.flags & RENAME_EXCHANGE) !== 0;
    const target = this.nodeOfName(newdir, r.newName);
    const replaced = !exchanged && target ? this.nodes.idFor(target) : undefined;
    const olddir = this.node(hd);
    const j = this.journal;
    const moved = j !== null ? this.idsOf(this.nodeOfName(olddir, r.oldName)) : null;
    // a name that already is the source's (rename to itself, or to a hard link of it) stays
    const other = j !== null ? this.idsOf(target).filter((id) => !moved!.includes(id)) : null;
    if (j !== null && !exchanged) intendRename(j, hd.nodeid, r.oldName, r.newdir, r.newName, moved!, other!);
    try {
      this.union.rename(olddir, r.oldName, newdir, r.newName, r.flags);
    } catch (e) {
      if (j !== null && !exchanged) j.moved?.();
      throw e;
    }
    if (j !== null) {
      for (const id of moved!) j.named(id, r.newdir, r.newName);
      for (const id of other!) if (exchanged) j.named(id, hd.nodeid, r.oldName);
      else j.dropped(id);
      // only now: until the outcome is all journaled, the intent decides after a crash
      if (!exchanged) j.moved?.();
    }
    this.inval.otherNames(replaced);
  }

  link(hd: InHeader, r: rq.LinkIn): Entry {
    this.xattrAbsent.changed();
    const old = this.byId(r.oldnodeid);
    if (!old) throw fsErr('ENOENT');
    const e = this.entry(this.union.link(old, this.node(hd), r.name), hd.nodeid, r.name);
    this.inval.linked(r.oldnodeid);
    return e;
  }

  open(hd: InHeader, r: rq.OpenIn): Opened {
    const f = this.union.open(this.node(hd), r.flags, ctxOf(hd));
    const m = openMode(this.passthrough, hd.nodeid, f.fd);
    if (m === 'conflict') {
      // this kernel inode serves another file (a lower one, before this open's copy-up): give the
      // node a new id and let the VFS walk the path again (passthrough.ts)
      this.union.release(f);
      this.nodes.retire(hd.nodeid);
      throw fsErr('ESTALE');
    }
    const fh = this.files.add({ file: f, nodeid: hd.nodeid });
    this.journal?.fileOpened(fh, hd.nodeid, r.flags);
    if (f.fd >= 0) journalMode(this.journal, this.passthrough, fh, hd.nodeid);
    // a write open copies a lower file up: its other names (hard links) now show the copy's ctime
    if ((r.flags & O_ACCMODE) !== 0) this.inval.otherNames(hd.nodeid);
    return { fh, ...this.withNoFlush(m, r.flags, hd.nodeid) };
  }

  create(hd: InHeader, r: rq.CreateIn): { entry: Entry; opened: Opened } {
    const { node, fh } = this.union.create(this.node(hd), r.name, r.mode, r.flags, createCtx(ctxOf(hd), r.umask, this.aclUmask));
    // an existing node (O_CREAT without O_EXCL) may already serve another file: a new id then
    const known = this.nodes.idFor(node);
    let m = known === undefined ? undefined : openMode(this.passthrough, known, fh.fd);
    if (m === 'conflict') this.nodes.retire(known!);
    const entry = this.made(node, hd.nodeid, r.name);
    if (m === undefined || m === 'conflict') m = openMode(this.passthrough, entry.nodeid, fh.fd);
    // (a fresh id serves no file yet)
    const counted = m !== 'conflict' && fh.fd >= 0;
    if (m === 'conflict') m = THROUGH_US;
    const handle = this.files.add({ file: fh, nodeid: entry.nodeid });
    this.journal?.fileOpened(handle, entry.nodeid, r.flags);
    if (counted) journalMode(this.journal, this.passthrough, handle, entry.nodeid);
    return { entry, opened: { fh: handle, ...this.withNoFlush(m, r.flags, entry.nodeid) } };
  }

  read(r: rq.ReadWriteIn, buf: Buffer, at: number, size: number): number {
    return this.union.read(this.file(r.fh).file, buf, at, size, r.offset);
  }

  write(r: rq.ReadWriteIn, data: Buffer, at: number): number {
    const f = this.file(r.fh);
    const n = this.union.write(f.file, data, at, r.size, r.offset);
    this.inval.otherNames(f.nodeid);
    return n;
  }

  /**
   * close(2) waits for FLUSH (RELEASE comes later, asynchronously): passthrough writes never reached
   * us, so the other names of a hard-linked file learn of them here, before close returns.
   */
  flush(fh: number): void {
    // a dead daemon's passthrough handle that cannot be reopened (its file was unlinked before the
    // crash): the kernel reads and writes it without us; only the FLUSH of its close comes here
    if (this.ptResumed.has(fh) && this.files.get(fh) === undefined && !this.restorer?.file(fh)) return;
    const f = this.file(fh);
    this.union.flush(f.file);
    if (this.passthrough && (f.file.flags & O_ACCMODE) !== 0) this.inval.otherNames(f.nodeid);
  }

  release(fh: number): void {
    const f = this.files.remove(fh);
    this.journal?.fileClosed(fh);
    if (!f) {
      // a dead daemon's handle never used since the restart: not reopened now, still counted down
      this.restorer?.closed(fh);
      const id = this.ptResumed.get(fh);
      if (id !== undefined && this.ptResumed.delete(fh)) this.passthrough?.release(id);
      return;
    }
    this.union.release(f.file);
    if (f.pt !== false) this.passthrough?.release(f.nodeid);
    // passthrough writes of an open that skipped FLUSH (flush-policy.ts): a name linked meanwhile
    if (this.passthrough && (f.file.flags & O_ACCMODE) !== 0) this.inval.otherNames(f.nodeid);
  }

  /** An open reply's mode with FOPEN_NOFLUSH where its FLUSH would do nothing (flush-policy.ts). */
  private withNoFlush(m: { openFlags: number; backingId: number }, flags: number, nodeid: number): { openFlags: number; backingId: number } {
    const through = (m.openFlags & Fopen.PASSTHROUGH) !== 0;
    return { ...m, openFlags: m.openFlags | noFlushBit(flags, through, through ? this.nodes.sameIno(nodeid).length : 0) };
  }

  fsync(fh: number, datasync: boolean): void {
    this.union.fsync(this.file(fh).file, datasync);
  }

  fallocate(r: rq.FallocateIn): void {
    const f = this.file(r.fh);
    this.union.fallocate(f.file, r.mode, r.offset, r.length);
    this.inval.otherNames(f.nodeid);
  }

  lseek(r: rq.LseekIn): number {
    return this.union.lseek(this.file(r.fh).file, r.offset, r.whence);
  }

  opendir(hd: InHeader): Opened {
    const node = this.node(hd);
    const dh = this.union.opendir(node, ctxOf(hd));
    const cache = this.cfg.dirCache === undefined || (this.cfg.dirCache as (n: N) => boolean)(node);
    const fh = this.dirs.add({ node, dh, nodeid: hd.nodeid });
    this.journal?.dirOpened(fh, hd.nodeid);
    return { fh, openFlags: cache ? Fopen.CACHE_DIR | Fopen.KEEP_CACHE : 0, backingId: 0 };
  }

  /**
   * Entries come from the engine's snapshot taken at opendir (`.` and `..` included, as the engine
   * lists them); entry i's `off` is i + 1, the cookie to continue after it. READDIRPLUS entries
   * other than `.`/`..` are looked up (one lookup reference each); a name gone since opendir is
   * skipped.
   */
  readdir(r: rq.ReadWriteIn, list: DirentList, plus: boolean): void {
    const od = this.dir(r.fh);
    if (!od) throw fsErr('EBADF');
    const entries = od.dh.entries;
    for (let i = r.offset; i < entries.length; i++) {
      const e = entries[i]!;
      if (!plus) {
        if (!list.add(e.ino, i + 1, e.type, e.name)) break;
        continue;
      }
      if (!list.fitsPlus(e.name)) break;
      if (e.name === '.' || e.name === '..') {
        list.addPlusDots(e.ino, i + 1, e.type, e.name);
        continue;
      }
      let child: { node: N; attr: Attr } | null;
      try {
        child = this.lookupAttr(od.node, e.name);
      } catch {
        continue; // gone since opendir
      }
      if (child === null) continue;
      list.addPlus(this.addNamed(child.node, od.nodeid, e.name), child.attr, i + 1, e.type, e.name);
    }
  }

  releasedir(fh: number): void {
    const od = this.dirs.remove(fh);
    this.journal?.dirClosed(fh);
    if (od) this.union.releasedir(od.dh);
  }

  fsyncdir(fh: number): void {
    if (!this.dir(fh)) throw fsErr('EBADF');
  }

  statfs(hd: InHeader): StatFs {
    return this.union.statfs(this.node(hd));
  }

  access(hd: InHeader, mask: number): void {
    this.union.access(this.node(hd), mask, ctxOf(hd));
  }

  setxattr(hd: InHeader, r: rq.SetxattrIn): void {
    this.xattrAbsent.changed();
    this.union.setxattr(this.node(hd), r.name, r.value, r.flags);
    // the other names of a hard link: their kernel inodes keep the old ACL (and mode) otherwise
    this.inval.otherNames(hd.nodeid);
  }

  getxattr(hd: InHeader, name: string): Buffer | number {
    const node = this.node(hd);
    const known = this.xattrAbsent.answer(node, name, this.xattrNames);
    if (known < 0) return known;
    try {
      return this.union.getxattr(node, name);
    } catch (e) {
      const r = -toFsError(e).errnoNumber;
      if (r !== ENODATA && r !== EOPNOTSUPP) throw e;
      this.xattrAbsent.remember(node, name, r);
      return r;
    }
  }

  listxattr(hd: InHeader): Buffer {
    const node = this.node(hd);
    // podman's diff asks getxattr(security.capability) then listxattr of every file: the first
    // already listed the names (xattr-absence.ts)
    if (this.xattrAbsent.knownEmpty(node)) return EMPTY;
    const names = this.union.listxattr(node);
    this.xattrAbsent.rememberNames(node, names);
    return Buffer.from(names.map((n) => n + '\0').join(''), 'utf8');
  }

  removexattr(hd: InHeader, name: string): void {
    this.xattrAbsent.changed();
    this.union.removexattr(this.node(hd), name);
    this.inval.otherNames(hd.nodeid);
  }

  /** The union's branch list changed (fuse/branch-change.ts): what this side remembers of it goes. */
  branchesChanged(): void {
    this.xattrAbsent.changed();
  }

  /** Attributes or xattrs changed in a branch behind the mount's back (udba): absent-xattr answers are stale. */
  branchAttrsChanged(): void {
    this.xattrAbsent.changed();
  }

  /** Release everything still open (after unmount). */
  releaseAll(): void {
    for (const f of this.files.values()) {
      try {
        this.union.release(f.file);
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
