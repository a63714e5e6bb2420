/**
 * Inode operations (like overlayfs inode.c): getattr, setattr, readlink, access, xattrs, statfs.
 * Any change copies the node up first; private xattrs stay hidden.
 */
import type { BigIntStats } from 'node:fs';
import { ST, fdops, nsParts, statArray, type Branch } from '../branch/index.js';
import { FsError } from '../errors/index.js';
import type { Core } from './core.js';
import { copyUp } from './copy-up.js';
import type { CopyAttrs } from './copy-file.js';
import { S_IFDIR, S_IFLNK, S_IFREG, type FileHandle, type UnionNode } from './node.js';
import type { Attr, Ctx, SetAttr, StatFs, TimeSpec } from './types.js';
import { isPrivateXattr } from '../format/index.js';
import { mayHaveCount, readCount } from './hardlinks.js';
import { O_ACCMODE, O_RDONLY, R_OK, S_IFMT, S_ISGID, W_OK, X_OK } from '../sys/constants.js';

export function toAttr(ino: number, st: BigIntStats, nlink?: number): Attr {
  const [as, an] = nsParts(st.atimeNs);
  const [ms, mn] = nsParts(st.mtimeNs);
  const [cs, cn] = nsParts(st.ctimeNs);
  return {
    ino,
    mode: Number(st.mode),
    nlink: nlink ?? Number(st.nlink),
    uid: Number(st.uid),
    gid: Number(st.gid),
    rdev: Number(st.rdev),
    size: Number(st.size),
    blocks: Number(st.blocks),
    blksize: Number(st.blksize),
    atimeSec: as,
    atimeNsec: an,
    mtimeSec: ms,
    mtimeNsec: mn,
    ctimeSec: cs,
    ctimeNsec: cn,
  };
}

function anyHandle(node: UnionNode): FileHandle | undefined {
  if (node.openCount === 0) return undefined;
  for (const h of node.handles) if (!h.closed) return h;
  return undefined;
}

export function getattr(core: Core, node: UnionNode): Attr {
  core.ensure(node);
  if (node.unlinked) {
    const h = anyHandle(node);
    if (!h) throw new FsError('ENOENT', 'getattr');
    const st = fdops.fstatBig(h.fd);
    return toAttr(node.ino, st, core.isUpper(h.branch) ? Number(st.nlink) : 0);
  }
  const r = core.real(node);
  return attrOf(core, node, r.b, r.rel, lstatNums(r.b, r.rel));
}

/**
 * getattr of a node lookup just created, from the lstat numbers lookup took of its topmost
 * entry in the same call (LookupData.nums of Core.lookupData): one lstat per LOOKUP instead of two.
 */
export function getattrFromLookup(core: Core, node: UnionNode, nums: Float64Array): Attr {
  // A hard link read through the index: the real file is another entry.
  if (node.alias !== null || node.unlinked) return getattr(core, node);
  return attrOf(core, node, core.branches[node.layers[0]!]!, node.rel, nums);
}

function attrOf(core: Core, node: UnionNode, b: Branch, rel: string, st: Float64Array): Attr {
  // A merged directory's link count is unknown: 1, as overlayfs and find(1) agree.
  if (node.isDir) return attrOfNums(node.ino, st, node.layers.length > 1 || node.marked ? 1 : undefined);
  // A hard-linked copy-up: the union-wide count is recorded on the file.
  if (st[ST.nlink]! > 1 && node.type === S_IFREG && mayHaveCount(core, b)) {
    const c = readCount(b, rel);
    if (c) return attrOfNums(node.ino, st, c.n);
  }
  return attrOfNums(node.ino, st);
}

/** One array reused by every getattr (the engine is synchronous: no call overlaps another). */
const statNums = statArray();

/** lstat into `statNums` (no Stats object: getattr is the hottest call); a missing entry is getattr's ENOENT. */
function lstatNums(b: Branch, rel: string): Float64Array {
  if (b.lstatInto(rel, statNums)) return statNums;
  throw new FsError('ENOENT', 'getattr');
}

/** Like toAttr, from the numbers of lstatInto. */
export function attrOfNums(ino: number, st: Float64Array, nlink?: number): Attr {
  return {
    ino,
    mode: st[ST.mode]!,
    nlink: nlink ?? st[ST.nlink]!,
    uid: st[ST.uid]!,
    gid: st[ST.gid]!,
    rdev: st[ST.rdev]!,
    size: st[ST.size]!,
    blocks: st[ST.blocks]!,
    blksize: st[ST.blksize]!,
    atimeSec: st[ST.atimeSec]!,
    atimeNsec: st[ST.atimeNsec]!,
    mtimeSec: st[ST.mtimeSec]!,
    mtimeNsec: st[ST.mtimeNsec]!,
    ctimeSec: st[ST.ctimeSec]!,
    ctimeNsec: st[ST.ctimeNsec]!,
  };
}

function timeParts(t: TimeSpec | undefined): [number, number] {
  if (t === undefined || t === 'omit') return [0, fdops.UTIME_OMIT];
  if (t === 'now') return [0, fdops.UTIME_NOW];
  return [t.sec, t.nsec];
}

export function setattr(core: Core, node: UnionNode, setIn: SetAttr, ctx: Ctx, fh?: FileHandle): Attr {
  core.requireRw('setattr');
  core.ensure(node);
  let set = setIn;
  if (set.mode !== undefined && (set.mode & S_ISGID) && ctx.uid !== 0) {
    // chmod by someone outside the file's group silently drops S_ISGID (Linux setattr_prepare).
    const gid = set.gid ?? getattr(core, node).gid;
    if (gid !== ctx.gid) set = { ...set, mode: set.mode & ~S_ISGID };
  }
  const hasTimes = set.atime !== undefined || set.mtime !== undefined;
  // A change of nothing (chown(path, -1, -1)) still copies up and updates ctime, as the kernel's
  // setattr does (notify_change with ATTR_CTIME alone): a chown of -1, -1 on the real file does that.
  const owner = set.uid !== undefined || set.gid !== undefined || (set.mode === undefined && set.size === undefined && !hasTimes);
  if (node.unlinked) {
    const h = fh ?? anyHandle(node);
    if (!h) throw new FsError('ENOENT', 'setattr');
    if (owner) fdops.fchown(h.fd, set.uid ?? -1, set.gid ?? -1);
    if (set.mode !== undefined) fdops.fchmod(h.fd, set.mode & 0o7777);
    if (set.size !== undefined) fdops.ftruncate(h.fd, set.size);
    if (hasTimes) {
      const [as, an] = timeParts(set.atime);
      const [ms, mn] = timeParts(set.mtime);
      fdops.futimens(h.fd, as, an, ms, mn);
    }
    return getattr(core, node);
  }
  if (set.size !== undefined) {
    if (node.isDir) throw new FsError('EISDIR', 'truncate');
    if (node.type !== S_IFREG) throw new FsError('EINVAL', 'truncate');
  }
  // chmod/utimes alone of a lower file: the copy is made with them (no second pass over the path)
  const fold = !owner && set.size === undefined && node.type === S_IFREG ? foldedAttrs(set) : undefined;
  // folded in: the copy's own lstat, taken once it had its name, is the answer (no second lstat)
  const copied = copyUp(core, node, 'setattr', set.size === 0 && node.type === S_IFREG, fold);
  if (copied) return attrOf(core, node, core.top(node), node.rel, copied);
  // the writable branch holding it now (branch 0 unless the union has several)
  const rw = core.top(node);
  const rel = node.rel;
  if (owner) rw.lchown(rel, set.uid ?? -1, set.gid ?? -1);
  if (set.mode !== undefined && node.type !== S_IFLNK) rw.chmod(rel, set.mode & 0o7777);
  if (set.size !== undefined) {
    if (fh && fh.branch === node.layers[0] && !fh.closed && (fh.flags & O_ACCMODE) !== O_RDONLY) fdops.ftruncate(fh.fd, set.size);
    else rw.truncate(rel, set.size);
  }
  if (hasTimes) {
    const [as, an] = timeParts(set.atime);
    const [ms, mn] = timeParts(set.mtime);
    rw.utimens(rel, as, an, ms, mn);
  }
  return getattr(core, node);
}

/** The mode and times of a setattr as a copy-up takes them (CopyAttrs); times omitted stay the source's. */
function foldedAttrs(set: SetAttr): CopyAttrs {
  const out: CopyAttrs = {};
  if (set.mode !== undefined) out.mode = set.mode & 0o7777;
  if (set.atime !== undefined && set.atime !== 'omit') out.atime = timeParts(set.atime);
  if (set.mtime !== undefined && set.mtime !== 'omit') out.mtime = timeParts(set.mtime);
  return out;
}

export function readlink(core: Core, node: UnionNode): string {
  core.ensure(node);
  if (node.unlinked) throw new FsError('ENOENT', 'readlink');
  if (node.type !== S_IFLNK) throw new FsError('EINVAL', 'readlink');
  return core.top(node).readlink(node.rel);
}

export function access(core: Core, node: UnionNode, mask: number, ctx: Ctx): void {
  const a = getattr(core, node);
  if ((mask & W_OK) && !core.rw) throw new FsError('EROFS', 'access');
  if (mask === 0) return;
  if (ctx.uid === 0) {
    if ((mask & X_OK) && (a.mode & S_IFMT) !== S_IFDIR && (a.mode & 0o111) === 0) throw new FsError('EACCES', 'access');
    return;
  }
  let bits: number;
  if (ctx.uid === a.uid) bits = (a.mode >> 6) & 7;
  else if (ctx.gid === a.gid) bits = (a.mode >> 3) & 7;
  else bits = a.mode & 7;
  if ((mask & (R_OK | W_OK | X_OK) & ~bits) !== 0) throw new FsError('EACCES', 'access');
}

export function getxattr(core: Core, node: UnionNode, name: string): Buffer {
  core.ensure(node);
  if (node.unlinked) throw new FsError('ENOENT', 'getxattr');
  if (isPrivateXattr(name, core.options.userxattr)) throw new FsError('ENODATA', 'getxattr');
  const r = core.real(node);
  return r.b.getxattr(r.rel, name);
}

/**
 * Names of the node's xattrs as getxattr would find them (private ones left out), with one
 * llistxattr and no exception; null when that cannot say (a filesystem without xattrs answers
 * EOPNOTSUPP to getxattr, not ENODATA; an unlinked node): the caller asks getxattr instead.
 */
export function xattrNames(core: Core, node: UnionNode): string[] | null {
  core.ensure(node);
  if (node.unlinked) return null;
  const r = core.real(node);
  const names = r.b.tryListxattr(r.rel);
  if (names === null || names.length === 0) return names;
  return names.filter((n) => !isPrivateXattr(n, core.options.userxattr));
}

export function listxattr(core: Core, node: UnionNode): string[] {
  core.ensure(node);
  if (node.unlinked) throw new FsError('ENOENT', 'listxattr');
  const r = core.real(node);
  return r.b.listxattr(r.rel).filter((n) => !isPrivateXattr(n, core.options.userxattr));
}

function checkXattrChange(core: Core, node: UnionNode, name: string, syscall: string): void {
  core.requireRw(syscall);
  core.ensure(node);
  if (node.unlinked) throw new FsError('ENOENT', syscall);
  if (isPrivateXattr(name, core.options.userxattr)) throw new FsError(syscall === 'removexattr' ? 'ENODATA' : 'EPERM', syscall);
  if (node.type === S_IFLNK && name.startsWith('user.')) throw new FsError('EPERM', syscall);
}

export function setxattr(core: Core, node: UnionNode, name: string, value: Buffer, flags: number): void {
  checkXattrChange(core, node, name, 'setxattr');
  copyUp(core, node, 'setxattr');
  core.top(node).setxattr(node.rel, name, value, flags);
}

export function removexattr(core: Core, node: UnionNode, name: string): void {
  checkXattrChange(core, node, name, 'removexattr');
  // Nothing to copy up when the attribute is absent.
  const r = core.real(node);
  r.b.getxattr(r.rel, name);
  copyUp(core, node, 'removexattr');
  core.top(node).removexattr(node.rel, name);
}

export function statfs(core: Core): StatFs {
  const s = core.placement.several ? pooledStatfs(core) : (core.rw ?? core.branches[0]!).statfs();
  return {
    bsize: s.bsize,
    frsize: s.bsize,
    blocks: s.blocks,
    bfree: s.bfree,
    bavail: s.bavail,
    files: s.files,
    ffree: s.ffree,
    namelen: 255,
  };
}

/**
 * Several writable branches: what df shows is the pool, the sum of the writable branches'
 * filesystems (each counted once), in the first one's block size.
 */
function pooledStatfs(core: Core): { bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number } {
  const seen = new Set<number>();
  let first: { bsize: number } | null = null;
  const out = { bsize: 0, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0 };
  for (const bi of core.placement.writable) {
    const b = core.branches[bi]!;
    if (seen.has(b.dev)) continue;
    seen.add(b.dev);
    const s = b.statfs();
    first ??= s;
    const k = s.bsize / first.bsize;
    out.blocks += Math.floor(s.blocks * k);
    out.bfree += Math.floor(s.bfree * k);
    out.bavail += Math.floor(s.bavail * k);
    out.files += s.files;
    out.ffree += s.ffree;
  }
  out.bsize = first ? first.bsize : 4096;
  return out;
}
