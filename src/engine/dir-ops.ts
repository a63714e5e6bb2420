/**
 * Directory operations (like overlayfs dir.c): mknod, mkdir, symlink, create, unlink, rmdir,
 * link. New entries go to the rw branch; removing a name that exists below leaves a whiteout;
 * a directory made where a lower one was whited out is opaque.
 */
import { ST, fdops, joinRel, statArray, type Branch } from '../branch/index.js';
import { FsError } from '../errors/index.js';
import type { Core } from './core.js';
import { copyUp, ensureDirOn, originCopiedUp } from './copy-up.js';
import { canPlace, cpupTargets, createTargets, placeEach } from './place-ops.js';
import { lowerHas, type RwProbe } from './namei.js';
import { adjustCount, countOf, nameRemoved } from './hardlinks.js';
import { FileHandle, S_IFCHR, S_IFDIR, S_IFMT, S_IFREG, UnionNode } from './node.js';
import { isMergedEmpty } from './readdir.js';
import type { Ctx } from './types.js';
import { newMode } from './acl.js';
import { checkName, clearMarkers, removeWhiteout, setOpaque, writeWhiteout } from './whiteout.js';
import { O_CREAT, O_EXCL, O_NOCTTY, RENAME_EXCHANGE, S_ISGID } from '../sys/constants.js';
import { WH, isOverlayWhiteout } from '../format/index.js';

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

/**
 * The lstat numbers of the entry the last create-type op made, taken after its last change (or
 * null when a change came after the last stat): the reply's attributes without another lstat.
 * One array, read by the caller before the next operation (the engine is synchronous).
 */
const madeNums = statArray();

/** What a create-type op made: the node, and its fresh numbers (madeNums) when it has them. */
export interface Made {
  node: UnionNode;
  nums: Float64Array | null;
}

/** The identity addCreated needs from lstat numbers. */
function idOf(nums: Float64Array): { dev: number; ino: number; mode: number } {
  return { dev: nums[ST.dev]!, ino: nums[ST.ino]!, mode: nums[ST.mode]! };
}

/** lstat `rel` of `rw` into madeNums (the entry was just made: it is there). */
function statMade(rw: Branch, rel: string): Float64Array {
  if (!rw.lstatInto(rel, madeNums)) throw new FsError('ENOENT', 'lstat');
  return madeNums;
}

export function checkDirParent(core: Core, parent: UnionNode, syscall: string): void {
  core.ensure(parent);
  if (!parent.isDir) throw new FsError('ENOTDIR', syscall);
  if (parent.unlinked) throw new FsError('ENOENT', syscall);
}

/** What a create-type op makes its entry with: the branch, the new rel, the owner... */
interface Placed {
  /** The writable branch the entry is for (its parent dir there gives the default ACL). */
  rw: Branch;
  /** The branch's index. */
  t: number;
  /**
   * Where the entry is made: `rw`, or rw's work dir when NAME holds an overlay whiteout there (the
   * entry is then moved over it by `settle`, as kernel overlayfs does: never a moment without
   * either, at which a crash would show the name below again).
   */
  at: Branch;
  /** The entry's rel in `at`. */
  rel: string;
  /** The final rel in `rw`. */
  finalRel: string;
  hadWhiteout: boolean;
  owner: Ctx;
  sgid: boolean;
}

/**
 * A just-made entry into its place: nothing to do when it was made there; made in the work dir
 * over an overlay whiteout, it is renamed over the whiteout (a directory, which cannot replace a
 * non-directory, is exchanged with it and the whiteout then removed from the work dir). Returns
 * the entry's numbers (`nums` when made in place, else taken again after the move). On failure
 * the entry is removed and nothing changed in the union.
 */
function settle(p: Placed, dir: boolean, nums: Float64Array | null): Float64Array | null {
  if (p.at === p.rw) return nums;
  try {
    p.rw.renameFrom(p.at, p.rel, p.finalRel, dir ? RENAME_EXCHANGE : 0);
  } catch (e) {
    try {
      if (dir) {
        clearMarkers(p.at, p.rel);
        p.at.rmdir(p.rel);
      } else p.at.unlink(p.rel);
    } catch {
      /* best effort: the work dir's leftovers are dropped at the next mount */
    }
    throw e;
  }
  if (dir) {
    try {
      p.at.unlink(p.rel);
    } catch {
      /* best effort: as above */
    }
  }
  return statMade(p.rw, p.finalRel);
}

/** The lookup every create-type op starts with: EEXIST when the name is there. */
function probeNew(core: Core, parent: UnionNode, name: string, syscall: string): RwProbe {
  core.requireRw(syscall);
  checkDirParent(core, parent, syscall);
  checkName(name, true, syscall);
  const d = core.lookupData(parent, name, true);
  if (d.node) throw new FsError('EEXIST', syscall, name);
  return d;
}

/**
 * Make a new name: on the writable branch the create= policy chooses (branch 0 with one rw
 * branch), falling over to the next on ENOSPC/EDQUOT/EROFS when the policy does. `make` builds the
 * entry on the branch it is given and removes it again if it fails half way; a whiteout removed for
 * it is put back before the next branch is tried.
 */
function placeNew(
  core: Core,
  parent: UnionNode,
  name: string,
  syscall: string,
  ctx: Ctx,
  probe: RwProbe,
  make: (p: Placed) => Made,
): Made {
  const order = createTargets(core, parent, name);
  return placeEach(core, order, core.placement.fallsOver('create'), syscall, (t) => {
    const p = prepareCreate(core, parent, name, syscall, ctx, probe, t);
    const aufs = core.options.whiteout !== 'overlay';
    try {
      const made = make(p);
      // AUFS: `.wh.NAME` goes once the entry is there (it wins over it): removed first, a crash
      // between would show the name below (a lower dir where a file is being created: EISDIR).
      // (Overlay format, made in the work dir: the entry replaced the whiteout; an AUFS-style
      // `.wh.NAME` beside it goes the same way.)
      if ((aufs && p.hadWhiteout) || p.at !== p.rw) removeWhiteout(p.rw, parent.rel, name);
      return made;
    } catch (e) {
      if (p.hadWhiteout && !aufs && p.at === p.rw) {
        try {
          writeWhiteout(p.rw, parent.rel, name, core.options.whiteout);
        } catch {
          /* best effort: the lookup below shows what is there */
        }
      }
      throw e;
    }
  });
}

/** Start of a create-type op on writable branch `t`: the parent made there, a whiteout of NAME there removed. */
function prepareCreate(core: Core, parent: UnionNode, name: string, syscall: string, ctx: Ctx, probe: RwProbe, t: number): Placed {
  const rw = core.branches[t]!;
  // the probe counts only if branch 0 already held the parent when it was taken
  const rwHadParent = t === 0 && parent.layers[0] === 0;
  if (!rwHadParent || !parent.copiedUpSince(core.gen)) {
    ensureDirOn(core, parent, t, syscall);
    if (t === 0 && parent.layers[0] === 0) parent.copyUpChecked(core.gen);
  }
  const known = rwHadParent ? probe : undefined;
  const finalRel = joinRel(parent.rel, name);
  let at = rw;
  let rel = finalRel;
  let hadWhiteout: boolean;
  if (core.options.whiteout === 'overlay') {
    // an overlay whiteout at NAME stays until the new entry replaces it (made in the work dir)
    const st = known?.nameSeen && !known.overlayWh ? null : rw.lstat(finalRel);
    const wh = st !== null && isOverlayWhiteout(st);
    const work = wh ? core.workFor(rw) : null;
    if (work && work.dev === rw.dev) {
      at = work;
      rel = core.tmpName();
      hadWhiteout = true;
    } else {
      // (NAME looked at just now: removeWhiteout need not lstat it again)
      const seen = wh ? known : { nameSeen: true, overlayWh: false, whSeen: known?.whSeen ?? false, aufsWh: known?.aufsWh ?? false };
      hadWhiteout = removeWhiteout(rw, parent.rel, name, seen);
    }
  } else hadWhiteout = known?.whSeen ? known.aufsWh : rw.exists(joinRel(parent.rel, WH + name));
  const there = rw.lstatInto(parent.rel, parentNums);
  const pmode = there ? parentNums[ST.mode]! : 0;
  const pgid = there ? parentNums[ST.gid]! : 0;
  return { rw, t, at, rel, finalRel, hadWhiteout, owner: ownerOf(ctx, pmode, pgid), sgid: (pmode & S_ISGID) !== 0 };
}

/** Run `fix` on a just-made entry; on failure remove the entry (no half-made name is left) and rethrow. */
function orRemove<T>(rw: Branch, rel: string, dir: boolean, fix: () => T): T {
  try {
    return fix();
  } catch (e) {
    try {
      if (dir) {
        clearMarkers(rw, rel);
        rw.rmdir(rel);
      } else rw.unlink(rel);
    } catch {
      /* best effort */
    }
    throw e;
  }
}

export function mknod(core: Core, parent: UnionNode, name: string, mode: number, rdev: number, ctx: Ctx): Made {
  const type = mode & S_IFMT || S_IFREG;
  if (type === S_IFDIR) throw new FsError('EINVAL', 'mknod', name);
  // A char device 0/0 is how a whiteout looks on disk: it cannot be a file of the union.
  if (type === S_IFCHR && rdev === 0) throw new FsError('EPERM', 'mknod', name);
  const probe = probeNew(core, parent, name, 'mknod');
  return placeNew(core, parent, name, 'mknod', ctx, probe, (p) => {
    const { rw, at, t, rel, owner } = p;
    const nm = newMode(rw, parent.rel, mode & 0o7777, ctx);
    at.mknod(rel, type | nm.mode, rdev);
    const made = orRemove(at, rel, false, () => {
      if (needChown(owner)) at.lchown(rel, owner.uid, owner.gid);
      // (the chown may have cleared set-id bits: the mode again, the host's where it came from an ACL)
      at.chmod(rel, nm.inherit ? at.lstat(rel)!.mode & 0o7777 : nm.mode);
      return statMade(at, rel);
    });
    const st = settle(p, false, made)!;
    return { node: core.addCreated(parent, name, idOf(st), [t]), nums: st };
  });
}

export function mkdir(core: Core, parent: UnionNode, name: string, mode: number, ctx: Ctx): Made {
  const probe = probeNew(core, parent, name, 'mkdir');
  return placeNew(core, parent, name, 'mkdir', ctx, probe, (p) => {
    const { rw, at, t, rel, hadWhiteout, owner, sgid } = p;
    const opaque = hadWhiteout || lowerHas(core.branches, parent, name, core.lowerIndex, t);
    const nm = newMode(rw, parent.rel, mode & 0o7777, ctx);
    const m = nm.mode | (sgid ? S_ISGID : 0);
    at.mkdir(rel, m);
    let fresh = true;
    const st = orRemove(at, rel, true, () => {
      const nums = statMade(at, rel);
      const st = { uid: nums[ST.uid]!, gid: nums[ST.gid]!, mode: nums[ST.mode]! };
      if (fixOwnerMode(st, owner, nm.inherit ? st.mode & 0o7777 : m, (u, g) => at.lchown(rel, u, g), (md) => at.chmod(rel, md))) fresh = false;
      if (opaque) {
        setOpaque(at, rel, core.options.whiteout, core.markers.opaque);
        fresh = false;
      }
      return nums;
    });
    const ids = idOf(st);
    const nums = settle(p, true, fresh ? st : null);
    // (addCreated reads only dev, ino and the type bits, which the changes above leave)
    return { node: core.addCreated(parent, name, ids, [t]), nums };
  });
}

export function symlink(core: Core, parent: UnionNode, name: string, target: string, ctx: Ctx): Made {
  if (Buffer.byteLength(target) >= 4096) throw new FsError('ENAMETOOLONG', 'symlink', name);
  const probe = probeNew(core, parent, name, 'symlink');
  return placeNew(core, parent, name, 'symlink', ctx, probe, (p) => {
    const { at, t, rel, owner } = p;
    at.symlink(target, rel);
    const made = orRemove(at, rel, false, () => {
      if (needChown(owner)) at.lchown(rel, owner.uid, owner.gid);
      return statMade(at, rel);
    });
    const st = settle(p, false, made)!;
    return { node: core.addCreated(parent, name, idOf(st), [t]), nums: st };
  });
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
): { node: UnionNode; fh: FileHandle; nums: Float64Array | null } {
  core.requireRw('open');
  checkDirParent(core, parent, 'open');
  checkName(name, true, 'open');
  const probe = core.lookupData(parent, name, true);
  const existing = probe.node;
  if (existing) {
    if (flags & O_EXCL) throw new FsError('EEXIST', 'open', name);
    return { node: existing, fh: openExisting(existing, flags & ~O_CREAT), nums: null };
  }
  let fd = -1;
  const { node, nums } = placeNew(core, parent, name, 'open', ctx, probe, (p) => {
    const { rw, at, t, rel, owner } = p;
    const nm = newMode(rw, parent.rel, mode & 0o7777, ctx);
    fd = at.open(rel, (flags & ~(O_CREAT | O_EXCL | O_NOCTTY)) | O_CREAT | O_EXCL, nm.mode);
    const made = orRemove(at, rel, false, () => {
      try {
        const st = fdops.fstatInto(fd, madeNums);
        const cur = { uid: st[ST.uid]!, gid: st[ST.gid]!, mode: st[ST.mode]! };
        const want = nm.inherit ? cur.mode & 0o7777 : nm.mode;
        // a change makes new numbers (ctime, mode): taken again from the fd, not by path
        if (fixOwnerMode(cur, owner, want, (u, g) => fdops.fchown(fd, u, g), (md) => fdops.fchmod(fd, md))) fdops.fstatInto(fd, madeNums);
        return st;
      } catch (e) {
        fdops.close(fd);
        throw e;
      }
    });
    let st: Float64Array;
    try {
      st = settle(p, false, made)!;
    } catch (e) {
      fdops.close(fd);
      throw e;
    }
    // addCreated reads only dev, ino and the type bits, which a chown/chmod does not change
    return { node: core.addCreated(parent, name, idOf(st), [t]), nums: st };
  });
  const fh = new FileHandle(fd, flags, node, node.layers[0]!);
  node.handles.add(fh);
  core.openFiles.add(fh);
  return { node, fh, nums };
}

/**
 * Where the whiteout for removing NAME (node `node`) goes and what is below it: the branch of its
 * topmost copy when writable, else where a copy-up would go (AUFS, see place-ops.ts).
 */
function hideName(core: Core, parent: UnionNode, name: string, node: UnionNode, needWh: boolean, syscall: string): void {
  const k = node.layers[0]!;
  if (!needWh) {
    originCopiedUp(core, parent);
    return;
  }
  if (core.isUpper(k)) {
    ensureDirOn(core, parent, k, syscall);
    writeWhiteout(core.branches[k]!, parent.rel, name, core.options.whiteout);
    return;
  }
  placeEach(core, cpupTargets(core, node), core.placement.fallsOver('cpup'), syscall, (t) => {
    ensureDirOn(core, parent, t, syscall);
    writeWhiteout(core.branches[t]!, parent.rel, name, core.options.whiteout);
  });
}

export function unlink(core: Core, parent: UnionNode, name: string): void {
  core.requireRw('unlink');
  checkDirParent(core, parent, 'unlink');
  if (name === '.' || name === '..') throw new FsError('EISDIR', 'unlink', name);
  const node = core.lookup(parent, name);
  if (node.isDir) throw new FsError('EISDIR', 'unlink', name);
  const k = node.layers[0]!;
  const upper = core.isUpper(k);
  const needWh = lowerHas(core.branches, parent, name, core.lowerIndex, upper ? k : undefined);
  const r = core.real(node);
  const count = countOf(core, r.b, r.rel, node.type);
  let nlink = 1;
  if (upper) {
    const rw = core.branches[k]!;
    const st = rw.lstat(node.rel);
    rw.unlink(node.rel);
    if (st) {
      nlink = st.nlink;
      if (nlink <= 1 && node.openCount === 0) core.xino.delete(st.dev, st.ino);
    }
  }
  hideName(core, parent, name, node, needWh, 'unlink');
  nameRemoved(core, count);
  // The node is this name: it is gone (other hard links are other nodes).
  node.removed();
  parent.children.delete(name);
  core.misses.changed(parent);
}

export function rmdir(core: Core, parent: UnionNode, name: string): void {
  core.requireRw('rmdir');
  checkDirParent(core, parent, 'rmdir');
  if (name === '.') throw new FsError('EINVAL', 'rmdir', name);
  if (name === '..') throw new FsError('ENOTEMPTY', 'rmdir', name);
  const node = core.lookup(parent, name);
  if (!node.isDir) throw new FsError('ENOTDIR', 'rmdir', name);
  if (!isMergedEmpty(core, node)) throw new FsError('ENOTEMPTY', 'rmdir', name);
  const k = node.layers[0]!;
  const upper = core.isUpper(k);
  const needWh = lowerHas(core.branches, parent, name, core.lowerIndex, upper ? k : undefined);
  if (upper) {
    const rw = core.branches[k]!;
    clearMarkers(rw, node.rel);
    const st = rw.lstat(node.rel);
    rw.rmdir(node.rel);
    if (st) core.xino.delete(st.dev, st.ino);
  }
  hideName(core, parent, name, node, needWh, 'rmdir');
  node.removed();
  parent.children.delete(name);
  core.misses.changed(parent);
}

/**
 * link: copy the file up, then hard-link it on the branch holding it. The new name shares the
 * inode number. With several writable branches a name the file's branch cannot show answers EXDEV
 * (a hard link cannot cross filesystems; AUFS does the same).
 */
export function link(core: Core, node: UnionNode, newParent: UnionNode, newName: string): UnionNode {
  core.requireRw('link');
  core.ensure(node);
  if (node.unlinked) throw new FsError('ENOENT', 'link', newName);
  if (node.isDir) throw new FsError('EPERM', 'link', newName);
  checkDirParent(core, newParent, 'link');
  checkName(newName, true, 'link');
  if (core.lookupData(newParent, newName, true).node) throw new FsError('EEXIST', 'link', newName);
  copyUp(core, node, 'link');
  const t = node.layers[0]!;
  const rw = core.branches[t]!;
  if (!canPlace(core, newParent, newName, t)) throw new FsError('EXDEV', 'link', newName);
  ensureDirOn(core, newParent, t, 'link');
  // (AUFS: `.wh.NAME` after the link, which wins over it; overlay format: a whiteout at NAME is
  // replaced by a link made in the work dir. Either way a crash never shows the name below.)
  const rel = joinRel(newParent.rel, newName);
  const overWh = core.options.whiteout === 'overlay' ? rw.lstat(rel) : null;
  const work = overWh && isOverlayWhiteout(overWh) ? core.workFor(rw) : null;
  const viaWork = work !== null && work.dev === rw.dev;
  if (viaWork) {
    const tmp = core.tmpName();
    work.linkFrom(rw, node.rel, tmp);
    try {
      rw.renameFrom(work, tmp, rel);
    } catch (e) {
      try {
        work.unlink(tmp);
      } catch {
        /* best effort: the work dir's leftovers are dropped at the next mount */
      }
      throw e;
    }
  } else {
    // (NAME lstat'ed just now: no second lstat where it is no overlay whiteout)
    const seen = overWh && isOverlayWhiteout(overWh) ? undefined : { nameSeen: true, overlayWh: false, whSeen: false, aufsWh: false };
    if (core.options.whiteout === 'overlay') removeWhiteout(rw, newParent.rel, newName, seen);
    rw.link(node.rel, rel);
  }
  if (viaWork || core.options.whiteout !== 'overlay') removeWhiteout(rw, newParent.rel, newName);
  adjustCount(rw, rel, +1);
  const st = rw.lstat(rel)!;
  core.xino.set(st.dev, st.ino, node.ino);
  const n = new UnionNode(node.ino, newParent, newName, node.type, rel, [t], core.gen);
  core.misses.changed(newParent);
  newParent.children.set(newName, n);
  return n;
}
