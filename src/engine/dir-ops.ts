/**
 * Directory operations (like overlayfs dir.c): mknod, mkdir, symlink, create, unlink, rmdir,
 * link. New entries go to the rw branch; removing a name that exists below leaves a whiteout;
 * a directory made where a lower one was whited out is opaque.
 */
import { ST, fdops, joinRel, statArray, type Branch } from '../branch/index.js';
import { FsError } from '../errors/index.js';
import type { Core } from './core.js';
import { copyUp, originCopiedUp } from './copy-up.js';
import { lowerHas, type RwProbe } from './namei.js';
import { adjustCount, countOf, nameRemoved } from './hardlinks.js';
import { FileHandle, S_IFCHR, S_IFDIR, S_IFMT, S_IFREG, UnionNode } from './node.js';
import { isMergedEmpty } from './readdir.js';
import type { Ctx } from './types.js';
import { newMode } from './acl.js';
import { checkName, clearMarkers, removeWhiteout, setOpaque, writeWhiteout } from './whiteout.js';
import { O_CREAT, O_EXCL, O_NOCTTY, S_ISGID } from '../sys/constants.js';

const euid = typeof process.geteuid === 'function' ? process.geteuid() : 0;
const egid = typeof process.getegid === 'function' ? process.getegid() : 0;

function needChown(ctx: Ctx): boolean {
  return euid === 0 || ctx.uid !== euid || ctx.gid !== egid;
}

/**
 * Give a just-made entry (stat `st`) its owner and mode, with only the calls that change
 * something (the host already made most entries right: owner = the daemon, mode = mode & ~umask).
 * A chown clears set-id bits, so a chown is always followed by the chmod. Returns whether anything
 * changed (then `st` is stale).
 */
function fixOwnerMode(
  st: { uid: number; gid: number; mode: number },
  owner: Ctx,
  mode: number,
  chown: (uid: number, gid: number) => void,
  chmod: (mode: number) => void,
): boolean {
  const chowned = st.uid !== owner.uid || st.gid !== owner.gid;
  if (chowned) chown(owner.uid, owner.gid);
  if (chowned || (st.mode & 0o7777) !== mode) {
    chmod(mode);
    return true;
  }
  return chowned;
}

/** Owner of a new entry: the caller, but the group of a setgid parent (as Linux does). */
function ownerOf(ctx: Ctx, parentMode: number, parentGid: number): Ctx {
  if (parentMode & S_ISGID) return { uid: ctx.uid, gid: parentGid };
  return ctx;
}

/** The parent's lstat numbers in the rw branch (one array: the engine is synchronous). */
const parentNums = statArray();

export function checkDirParent(core: Core, parent: UnionNode, syscall: string): void {
  core.ensure(parent);
  if (!parent.isDir) throw new FsError('ENOTDIR', syscall);
  if (parent.unlinked) throw new FsError('ENOENT', syscall);
}

/** Common start of every create-type op. Returns the rw branch, the new rel and whether a whiteout was removed. */
function prepareCreate(
  core: Core,
  parent: UnionNode,
  name: string,
  syscall: string,
  ctx: Ctx,
  lookedUp: RwProbe | null = null,
): { rw: Branch; rel: string; hadWhiteout: boolean; owner: Ctx; sgid: boolean } {
  const rw = core.requireRw(syscall);
  let probe = lookedUp;
  if (!probe) {
    checkDirParent(core, parent, syscall);
    checkName(name, true, syscall);
    const d = core.lookupData(parent, name);
    if (d.node) throw new FsError('EEXIST', syscall, name);
    probe = d;
  }
  // the probe counts only if the rw branch already held the parent when it was taken
  const rwHadParent = parent.layers[0] === 0;
  if (!rwHadParent || !parent.copiedUpSince(core.gen)) {
    copyUp(core, parent, syscall);
    if (parent.layers[0] === 0) parent.copyUpChecked(core.gen);
  }
  const hadWhiteout = removeWhiteout(rw, parent.rel, name, rwHadParent ? probe : undefined);
  const there = rw.lstatInto(parent.rel, parentNums);
  const pmode = there ? parentNums[ST.mode]! : 0;
  const pgid = there ? parentNums[ST.gid]! : 0;
  return { rw, rel: joinRel(parent.rel, name), hadWhiteout, owner: ownerOf(ctx, pmode, pgid), sgid: (pmode & S_ISGID) !== 0 };
}

export function mknod(core: Core, parent: UnionNode, name: string, mode: number, rdev: number, ctx: Ctx): UnionNode {
  const type = mode & S_IFMT || S_IFREG;
  if (type === S_IFDIR) throw new FsError('EINVAL', 'mknod', name);
  // A char device 0/0 is how a whiteout looks on disk: it cannot be a file of the union.
  if (type === S_IFCHR && rdev === 0) throw new FsError('EPERM', 'mknod', name);
  const { rw, rel, owner } = prepareCreate(core, parent, name, 'mknod', ctx);
  const nm = newMode(rw, parent.rel, mode & 0o7777, ctx);
  rw.mknod(rel, type | nm.mode, rdev);
  if (needChown(owner)) rw.lchown(rel, owner.uid, owner.gid);
  // (the chown may have cleared set-id bits: the mode again, the host's where it came from an ACL)
  rw.chmod(rel, nm.inherit ? rw.lstat(rel)!.mode & 0o7777 : nm.mode);
  return core.addCreated(parent, name, rw.lstat(rel)!);
}

export function mkdir(core: Core, parent: UnionNode, name: string, mode: number, ctx: Ctx): UnionNode {
  const { rw, rel, hadWhiteout, owner, sgid } = prepareCreate(core, parent, name, 'mkdir', ctx);
  const opaque = hadWhiteout || lowerHas(core.branches, parent, name, core.lowerIndex);
  const nm = newMode(rw, parent.rel, mode & 0o7777, ctx);
  const m = nm.mode | (sgid ? S_ISGID : 0);
  rw.mkdir(rel, m);
  const st = rw.lstat(rel)!;
  fixOwnerMode(st, owner, nm.inherit ? st.mode & 0o7777 : m, (u, g) => rw.lchown(rel, u, g), (md) => rw.chmod(rel, md));
  if (opaque) setOpaque(rw, rel, core.options.whiteout, core.markers.opaque);
  return core.addCreated(parent, name, st);
}

export function symlink(core: Core, parent: UnionNode, name: string, target: string, ctx: Ctx): UnionNode {
  if (Buffer.byteLength(target) >= 4096) throw new FsError('ENAMETOOLONG', 'symlink', name);
  const { rw, rel, owner } = prepareCreate(core, parent, name, 'symlink', ctx);
  rw.symlink(target, rel);
  if (needChown(owner)) rw.lchown(rel, owner.uid, owner.gid);
  return core.addCreated(parent, name, rw.lstat(rel)!);
}

/** create: a new regular file opened with `flags` (O_EXCL on an existing name: EEXIST; else opened). */
export function create(
  core: Core,
  parent: UnionNode,
  name: string,
  mode: number,
  flags: number,
  ctx: Ctx,
  openExisting: (n: UnionNode, flags: number) => FileHandle,
): { node: UnionNode; fh: FileHandle } {
  core.requireRw('open');
  checkDirParent(core, parent, 'open');
  checkName(name, true, 'open');
  const probe = core.lookupData(parent, name);
  const existing = probe.node;
  if (existing) {
    if (flags & O_EXCL) throw new FsError('EEXIST', 'open', name);
    return { node: existing, fh: openExisting(existing, flags & ~O_CREAT) };
  }
  const { rw, rel, owner } = prepareCreate(core, parent, name, 'open', ctx, probe);
  const nm = newMode(rw, parent.rel, mode & 0o7777, ctx);
  const fd = rw.open(rel, (flags & ~(O_CREAT | O_EXCL | O_NOCTTY)) | O_CREAT | O_EXCL, nm.mode);
  let st;
  try {
    st = fdops.fstat(fd);
    const want = nm.inherit ? st.mode & 0o7777 : nm.mode;
    fixOwnerMode(st, owner, want, (u, g) => fdops.fchown(fd, u, g), (md) => fdops.fchmod(fd, md));
  } catch (e) {
    fdops.close(fd);
    throw e;
  }
  // addCreated reads only dev, ino and the type bits, which a chown/chmod does not change
  const node = core.addCreated(parent, name, st);
  const fh = new FileHandle(fd, flags, node, 0);
  node.handles.add(fh);
  core.openFiles.add(fh);
  return { node, fh };
}

export function unlink(core: Core, parent: UnionNode, name: string): void {
  const rw = core.requireRw('unlink');
  checkDirParent(core, parent, 'unlink');
  if (name === '.' || name === '..') throw new FsError('EISDIR', 'unlink', name);
  const node = core.lookup(parent, name);
  if (node.isDir) throw new FsError('EISDIR', 'unlink', name);
  const needWh = lowerHas(core.branches, parent, name, core.lowerIndex);
  const r = core.real(node);
  const count = countOf(core, r.b, r.rel, node.type);
  let nlink = 1;
  if (node.layers[0] === 0) {
    const st = rw.lstat(node.rel);
    rw.unlink(node.rel);
    if (st) {
      nlink = st.nlink;
      if (nlink <= 1 && node.openCount === 0) core.xino.delete(st.dev, st.ino);
    }
  }
  if (needWh) {
    copyUp(core, parent, 'unlink');
    writeWhiteout(rw, parent.rel, name, core.options.whiteout);
  } else originCopiedUp(core, parent);
  nameRemoved(core, count);
  // The node is this name: it is gone (other hard links are other nodes).
  node.removed();
  parent.children.delete(name);
}

export function rmdir(core: Core, parent: UnionNode, name: string): void {
  const rw = core.requireRw('rmdir');
  checkDirParent(core, parent, 'rmdir');
  if (name === '.') throw new FsError('EINVAL', 'rmdir', name);
  if (name === '..') throw new FsError('ENOTEMPTY', 'rmdir', name);
  const node = core.lookup(parent, name);
  if (!node.isDir) throw new FsError('ENOTDIR', 'rmdir', name);
  if (!isMergedEmpty(core, node)) throw new FsError('ENOTEMPTY', 'rmdir', name);
  const needWh = lowerHas(core.branches, parent, name, core.lowerIndex);
  if (node.layers[0] === 0) {
    clearMarkers(rw, node.rel);
    const st = rw.lstat(node.rel);
    rw.rmdir(node.rel);
    if (st) core.xino.delete(st.dev, st.ino);
  }
  if (needWh) {
    copyUp(core, parent, 'rmdir');
    writeWhiteout(rw, parent.rel, name, core.options.whiteout);
  } else originCopiedUp(core, parent);
  node.removed();
  parent.children.delete(name);
}

/** link: copy the file up, then hard-link it in the rw branch. The new name shares the inode number. */
export function link(core: Core, node: UnionNode, newParent: UnionNode, newName: string): UnionNode {
  const rw = core.requireRw('link');
  core.ensure(node);
  if (node.unlinked) throw new FsError('ENOENT', 'link', newName);
  if (node.isDir) throw new FsError('EPERM', 'link', newName);
  checkDirParent(core, newParent, 'link');
  checkName(newName, true, 'link');
  if (core.lookupData(newParent, newName).node) throw new FsError('EEXIST', 'link', newName);
  copyUp(core, node, 'link');
  copyUp(core, newParent, 'link');
  removeWhiteout(rw, newParent.rel, newName);
  const rel = joinRel(newParent.rel, newName);
  rw.link(node.rel, rel);
  adjustCount(rw, rel, +1);
  const st = rw.lstat(rel)!;
  core.xino.set(st.dev, st.ino, node.ino);
  const n = new UnionNode(node.ino, newParent, newName, node.type, rel, [0], core.gen);
  newParent.children.set(newName, n);
  return n;
}
