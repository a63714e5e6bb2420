/**
 * The union engine: `Union` serves every filesystem operation over a stack of branches
 * (see types.ts for the contract). Each method maps failures to FsError with a Linux errno once,
 * here; the work is done by the per-concern modules (namei, readdir, copy-up, dir-ops, rename,
 * inode-ops, file-ops, inode-table).
 */
import { FsError, toFsError } from '../errors/index.js';
import { Core } from './core.js';
import * as dirOps from './dir-ops.js';
import * as fileOps from './file-ops.js';
import * as inodeOps from './inode-ops.js';
import { DirHandle, FileHandle, S_IFDIR, UnionNode, dtOf } from './node.js';
import { parseOptions } from './params.js';
import { Ownership, formatOverride, parseOverride } from './ownership.js';
import type { LookupData } from './namei.js';
import { mergedEntries } from './readdir.js';
import { rename } from './rename.js';
import { BranchChanges, Reval } from './udba.js';
import { changeBranchesByOptions } from './branch-set.js';
import { branchStateOf } from './branch-state.js';
import type { Attr, BranchState, Ctx, DirEntry, SetAttr, StatFs, UnionOps, UnionOptions } from './types.js';

function wrap<T>(syscall: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw rethrown(e, syscall);
  }
}

/** The error to throw for `e`: host paths of branch files never leak out; callers add the user's path (FsError.withContext). */
function rethrown(e: unknown, syscall: string): FsError {
  const f = toFsError(e, syscall);
  return new FsError(f.code, f.syscall ?? syscall);
}

/** One line per branch as AUFS shows in /sys/fs/aufs/si_ID/brN: `path=perm`. */
export interface UnionInfo {
  branches: Array<{ index: number; path: string; perm: string; id: number }>;
  xinoPath: string | null;
  workdir: string | null;
  whiteout: string;
  dirRename: string;
  udba: string;
}

export class Union implements UnionOps<UnionNode, FileHandle, DirHandle> {
  readonly core: Core;
  readonly root: UnionNode;
  private closed = false;
  /** Id mapping / squash / xattr ownership (fuse-overlayfs options); null: ownership as stored. */
  private readonly own: Ownership | null;
  private readonly staticNlink: boolean;
  /** udba: drops what a change made directly in a branch makes stale (engine/udba.ts). */
  readonly changes: BranchChanges;
  /** udba=reval (or notify past the watch limit): the directory re-checks; null otherwise. */
  reval: Reval | null = null;

  /** `options`: parsed options or a mount option string (`dirs=A=rw:B`). */
  constructor(options: UnionOptions | string) {
    const o = typeof options === 'string' ? parseOptions(options) : options;
    this.core = new Core(o);
    this.root = this.core.root;
    this.own = o.ownership ? new Ownership(o.ownership) : null;
    this.staticNlink = o.staticNlink === true;
    this.changes = new BranchChanges(this.core);
    if (o.udba === 'reval') this.revalidate(null);
  }

  /** Re-check directories on access (udba=reval); `covers`: only those it says (null: all). */
  revalidate(covers: ((dir: UnionNode) => boolean) | null): Reval {
    const r = new Reval(this.changes, undefined, undefined, covers);
    this.reval = r;
    this.core.udbaCheck = (dir) => r.check(dir);
    return r;
  }

  /** An attribute on its way out: ownership as shown, static_nlink. */
  private attrOut(node: UnionNode, a: Attr): Attr {
    let r = a;
    if (this.own) {
      const x = this.own.overrideXattr;
      r = this.own.attrOut(a, x ? this.override(node, x) : null);
    }
    if (this.staticNlink && node.isDir && r.nlink !== 1) r = { ...r, nlink: 1 };
    return r;
  }

  private override(node: UnionNode, name: string): { uid: number; gid: number; mode: number } | null {
    try {
      return parseOverride(inodeOps.getxattr(this.core, node, name).toString('utf8'));
    } catch {
      return null; // no override recorded (ENODATA) or unreadable: the real owner shows
    }
  }

  /** The caller in stored ids. */
  private ctxIn(ctx: Ctx): Ctx {
    return this.own ? this.own.ctxIn(ctx) : ctx;
  }

  get options(): UnionOptions {
    return this.core.options;
  }

  /** Path of the persistent inode table (null: in memory only). */
  get xinoPath(): string | null {
    return this.core.xino.path;
  }

  /** Whether the union has a writable branch. */
  get writable(): boolean {
    return this.core.rw !== null;
  }

  info(): UnionInfo {
    return {
      branches: this.core.branches.map((b, index) => ({ index, path: b.root, perm: [b.perm, ...b.attrs].join('+'), id: b.id })),
      xinoPath: this.core.xino.path,
      workdir: this.core.work ? this.core.work.root : null,
      whiteout: this.core.options.whiteout,
      dirRename: this.core.options.dirRename,
      udba: this.core.options.udba ?? 'none',
    };
  }

  /**
   * Change the branches of the live union (AUFS remount options `add:1:/x=ro,del:/y,mod:/z=rw`,
   * paths relative to `cwd`): all or nothing; the new list as info() shows it.
   */
  changeBranches(options: string, cwd: string = process.cwd()): UnionInfo['branches'] {
    changeBranchesByOptions(this.core, options, cwd); // FsErrors with their one-line messages
    return this.info().branches;
  }

  /**
   * The branch list as live changes left it, for a process that builds this union again (a daemon
   * taking the mount over): `new Union(withBranchState(parseOptions(mountOptions), state))`.
   */
  branchState(): BranchState {
    return branchStateOf(this.core);
  }

  /** Which branch (index) holds the node's topmost copy. */
  originOf(node: UnionNode): number {
    this.core.ensure(node);
    return node.layers[0]!;
  }

  lookup(parent: UnionNode, name: string): UnionNode {
    return wrap('lookup', () => this.core.lookup(parent, name));
  }

  lookupAttr(parent: UnionNode, name: string): { node: UnionNode; attr: Attr } | null {
    let d: LookupData;
    try {
      d = this.core.lookupData(parent, name);
    } catch (e) {
      throw rethrown(e, 'lookup');
    }
    const { node, nums } = d;
    if (node === null) return null;
    if (!nums) return { node, attr: this.getattr(node) };
    try {
      const attr = inodeOps.getattrFromLookup(this.core, node, nums);
      return { node, attr: this.own || this.staticNlink ? this.attrOut(node, attr) : attr };
    } catch (e) {
      throw rethrown(e, 'stat');
    }
  }

  forget(node: UnionNode): void {
    if (node === this.root || node.openCount > 0) return;
    const p = node.parent;
    if (p && !node.hasChildren && p.children.get(node.name) === node) p.children.delete(node.name);
  }

  getattr(node: UnionNode): Attr {
    const a = wrap('stat', () => inodeOps.getattr(this.core, node));
    return this.own || this.staticNlink ? this.attrOut(node, a) : a;
  }

  setattr(node: UnionNode, set: SetAttr, ctx: Ctx, fh?: FileHandle): Attr {
    if (!this.own) {
      const a = wrap('setattr', () => inodeOps.setattr(this.core, node, set, ctx, fh));
      return this.staticNlink ? this.attrOut(node, a) : a;
    }
    const own = this.own;
    let rest = own.setIn(set);
    const c = own.ctxIn(ctx);
    const x = own.overrideXattr;
    const owner = rest.uid !== undefined || rest.gid !== undefined;
    if (x && (owner || rest.mode !== undefined)) {
      // ownership and mode live in the xattr: record them there, leave the file's own alone
      const real = wrap('stat', () => inodeOps.getattr(this.core, node));
      const cur = this.override(node, x) ?? real;
      const value = formatOverride(rest.uid ?? cur.uid, rest.gid ?? cur.gid, rest.mode ?? cur.mode);
      wrap('setattr', () => inodeOps.setxattr(this.core, node, x, Buffer.from(value), 0));
      const { uid: _u, gid: _g, mode: _m, ...others } = rest;
      rest = others;
    } else if (owner && own.squashing) {
      // a squashed mount shows one owner whatever chown does: a refused chown is not an error
      const ids: SetAttr = {};
      if (rest.uid !== undefined) ids.uid = rest.uid;
      if (rest.gid !== undefined) ids.gid = rest.gid;
      try {
        inodeOps.setattr(this.core, node, ids, c, fh);
      } catch {
        /* ignored, as fuse-overlayfs does */
      }
      const { uid: _u, gid: _g, ...others } = rest;
      rest = others;
    }
    // Nothing left once ownership went to the xattr or the squash: done. An empty `set` (chown of
    // -1, -1) still goes to the engine, which updates ctime.
    const absorbed = Object.keys(rest).length === 0 && Object.keys(set).length !== 0;
    const a = absorbed ? wrap('stat', () => inodeOps.getattr(this.core, node)) : wrap('setattr', () => inodeOps.setattr(this.core, node, rest, c, fh));
    return this.attrOut(node, a);
  }

  readlink(node: UnionNode): string {
    return wrap('readlink', () => inodeOps.readlink(this.core, node));
  }

  mknod(parent: UnionNode, name: string, mode: number, rdev: number, ctx: Ctx): UnionNode {
    this.made = null;
    return this.keepMade(wrap('mknod', () => dirOps.mknod(this.core, parent, name, mode, rdev, this.ctxIn(ctx))));
  }

  mkdir(parent: UnionNode, name: string, mode: number, ctx: Ctx): UnionNode {
    this.made = null;
    return this.keepMade(wrap('mkdir', () => dirOps.mkdir(this.core, parent, name, mode, this.ctxIn(ctx))));
  }

  symlink(parent: UnionNode, name: string, target: string, ctx: Ctx): UnionNode {
    this.made = null;
    return this.keepMade(wrap('symlink', () => dirOps.symlink(this.core, parent, name, target, this.ctxIn(ctx))));
  }

  /** The entry the last create-type op made, with its attributes as that op took them (takeMadeAttr). */
  private made: { node: UnionNode; attr: Attr } | null = null;

  /** Keep what a create-type op made for takeMadeAttr (its numbers are read now: the array is shared). */
  private keepMade(m: dirOps.Made): UnionNode {
    if (m.nums !== null) {
      const a = inodeOps.attrOfNums(m.node.ino, m.nums);
      this.made = { node: m.node, attr: this.own || this.staticNlink ? this.attrOut(m.node, a) : a };
    }
    return m.node;
  }

  takeMadeAttr(node: UnionNode): Attr | null {
    const m = this.made;
    this.made = null;
    return m !== null && m.node === node ? m.attr : null;
  }

  link(node: UnionNode, newParent: UnionNode, newName: string): UnionNode {
    return wrap('link', () => dirOps.link(this.core, node, newParent, newName));
  }

  unlink(parent: UnionNode, name: string): void {
    wrap('unlink', () => dirOps.unlink(this.core, parent, name));
  }

  rmdir(parent: UnionNode, name: string): void {
    wrap('rmdir', () => dirOps.rmdir(this.core, parent, name));
  }

  rename(parent: UnionNode, name: string, newParent: UnionNode, newName: string, flags: number): void {
    wrap('rename', () => rename(this.core, parent, name, newParent, newName, flags));
  }

  open(node: UnionNode, flags: number, _ctx: Ctx): FileHandle {
    return wrap('open', () => fileOps.open(this.core, node, flags));
  }

  create(parent: UnionNode, name: string, mode: number, flags: number, ctx: Ctx): { node: UnionNode; fh: FileHandle } {
    this.made = null;
    const r = wrap('open', () =>
      dirOps.create(this.core, parent, name, mode, flags, this.ctxIn(ctx), (n, f) => fileOps.open(this.core, n, f)),
    );
    this.keepMade(r);
    return { node: r.node, fh: r.fh };
  }

  read(fh: FileHandle, buf: Buffer, offset: number, length: number, position: number): number {
    return wrap('read', () => fileOps.read(fh, buf, offset, length, position));
  }

  write(fh: FileHandle, buf: Buffer, offset: number, length: number, position: number): number {
    return wrap('write', () => fileOps.write(fh, buf, offset, length, position));
  }

  flush(_fh: FileHandle): void {
    /* data goes straight to the host fd; nothing buffered here */
  }

  fsync(fh: FileHandle, datasync: boolean): void {
    wrap('fsync', () => fileOps.fsync(fh, datasync));
  }

  release(fh: FileHandle): void {
    wrap('close', () => fileOps.release(this.core, fh));
  }

  fallocate(fh: FileHandle, mode: number, offset: number, length: number): void {
    wrap('fallocate', () => fileOps.fallocate(fh, mode, offset, length));
  }

  lseek(fh: FileHandle, offset: number, whence: number): number {
    return wrap('lseek', () => fileOps.lseek(fh, offset, whence));
  }

  opendir(node: UnionNode, _ctx: Ctx): DirHandle {
    return wrap('scandir', () => {
      this.core.ensure(node);
      if (node.unlinked) throw new FsError('ENOENT', 'scandir');
      if (!node.isDir) throw new FsError('ENOTDIR', 'scandir');
      const dot: DirEntry[] = [
        { name: '.', type: dtOf(S_IFDIR), ino: node.ino },
        { name: '..', type: dtOf(S_IFDIR), ino: (node.parent ?? node).ino },
      ];
      return new DirHandle(node, [...dot, ...mergedEntries(this.core, node)]);
    });
  }

  releasedir(_dh: DirHandle): void {
    /* snapshot only */
  }

  /** Merged entries of a directory node without `.`/`..` (convenience for the API and CLI). */
  readdir(node: UnionNode): DirEntry[] {
    return this.opendir(node, { uid: 0, gid: 0 }).entries.slice(2);
  }

  statfs(_node: UnionNode): StatFs {
    return wrap('statfs', () => inodeOps.statfs(this.core));
  }

  access(node: UnionNode, mask: number, ctx: Ctx): void {
    wrap('access', () => inodeOps.access(this.core, node, mask, this.ctxIn(ctx)));
  }

  getxattr(node: UnionNode, name: string): Buffer {
    return wrap('getxattr', () => inodeOps.getxattr(this.core, node, name));
  }

  xattrNames(node: UnionNode): string[] | null {
    try {
      return inodeOps.xattrNames(this.core, node);
    } catch {
      return null; // the caller asks getxattr, which reports the error
    }
  }

  setxattr(node: UnionNode, name: string, value: Buffer, flags: number): void {
    wrap('setxattr', () => inodeOps.setxattr(this.core, node, name, value, flags));
  }

  listxattr(node: UnionNode): string[] {
    return wrap('listxattr', () => inodeOps.listxattr(this.core, node));
  }

  removexattr(node: UnionNode, name: string): void {
    wrap('removexattr', () => inodeOps.removexattr(this.core, node, name));
  }

  isStale(node: UnionNode): boolean {
    return this.core.isStale(node);
  }

  setInvalidator(fn: ((node: UnionNode) => void) | null): void {
    this.core.invalidator = fn;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.core.close();
  }
}
