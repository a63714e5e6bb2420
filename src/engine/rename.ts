/**
 * rename (like overlayfs dir.c ovl_rename), POSIX rules first, then:
 * - a non-directory: copy up, rename in the rw branch, whiteout the old name if it exists below;
 * - a directory only in the rw branch: plain rename (made opaque if the new name exists below);
 * - a directory that also exists below: `exdev` mode answers EXDEV (as AUFS); `redirect` mode
 *   copies the merged subtree into the new name (opaque) and whiteouts the old one.
 */
import { joinRel } from '../branch/index.js';
import { FsError } from '../errors/index.js';
import type { Core } from './core.js';
import { copyTreeToWork, copyUp } from './copy-up.js';
import { checkDirParent } from './dir-ops.js';
import { lowerHas } from './namei.js';
import { countOf, nameRemoved } from './hardlinks.js';
import type { UnionNode } from './node.js';
import type { Stats } from 'node:fs';
import { renameOnBranch } from './rename-multi.js';
import { emptyTarget, renameLeavingWhiteout, renameOverDirWhiteout } from './rename-whiteout.js';
import { isMergedEmpty, mergedNames } from './readdir.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT } from '../sys/constants.js';
import { checkName, removeWhiteout, setOpaque } from './whiteout.js';

function isAncestor(a: UnionNode, n: UnionNode): boolean {
  for (let p: UnionNode | null = n; p; p = p.parent) if (p === a) return true;
  return false;
}

/**
 * The checks rename and RENAME_EXCHANGE share: both parents are live directories, no `.` or `..`,
 * valid names (`newCreated`: the new name may be made, so it must be one the union can hold).
 */
function checkNames(core: Core, parent: UnionNode, name: string, newParent: UnionNode, newName: string, newCreated: boolean): void {
  checkDirParent(core, parent, 'rename');
  checkDirParent(core, newParent, 'rename');
  if (name === '.' || name === '..' || newName === '.' || newName === '..') throw new FsError('EBUSY', 'rename');
  checkName(name, false, 'rename');
  checkName(newName, newCreated, 'rename');
}

export function rename(core: Core, parent: UnionNode, name: string, newParent: UnionNode, newName: string, flags: number): void {
  core.requireRw('rename');
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) throw new FsError('EINVAL', 'rename');
  if (flags & RENAME_WHITEOUT) throw new FsError('EINVAL', 'rename');
  if (flags & RENAME_EXCHANGE) {
    if (flags & RENAME_NOREPLACE) throw new FsError('EINVAL', 'rename');
    exchange(core, parent, name, newParent, newName);
    return;
  }
  checkNames(core, parent, name, newParent, newName, true);
  const src = core.lookup(parent, name);
  if (src.isDir && isAncestor(src, newParent)) throw new FsError('EINVAL', 'rename', name, newName);
  const dst = core.lookupData(newParent, newName).node;
  if (dst) {
    if (dst === src || (!src.isDir && dst.ino === src.ino)) return;
    if (flags & RENAME_NOREPLACE) throw new FsError('EEXIST', 'rename', name, newName);
    if (src.isDir && !dst.isDir) throw new FsError('ENOTDIR', 'rename', name, newName);
    if (!src.isDir && dst.isDir) throw new FsError('EISDIR', 'rename', name, newName);
    if (dst.isDir && !isMergedEmpty(core, dst)) throw new FsError('ENOTEMPTY', 'rename', name, newName);
  }
  const oldRel = src.rel;
  const newRel = joinRel(newParent.rel, newName);
  if (core.placement.several) {
    const r = renameOnBranch(core, parent, name, newParent, newName, src, dst);
    renamed(core, parent, name, newParent, newName, src, dst, r.dstUpper, r.dstCount);
    return;
  }
  const rw = core.rw!;
  const srcLower = lowerHas(core.branches, parent, name, core.lowerIndex);
  const dstLower = lowerHas(core.branches, newParent, newName, core.lowerIndex);
  const dstUpper = dst && dst.layers[0] === 0 ? rw.lstat(newRel) : null;
  const dstReal = dst ? core.real(dst) : null;
  const dstCount = dst && dstReal ? countOf(core, dstReal.b, dstReal.rel, dst.type) : null;

  const overlayWh = core.options.whiteout === 'overlay';
  if (src.isDir && src.layers.some((bi) => bi !== 0)) {
    if (core.options.dirRename === 'exdev') throw new FsError('EXDEV', 'rename', name, newName);
    copyUp(core, newParent, 'rename');
    copyUp(core, parent, 'rename');
    // First the merged tree copied in place, whole and opaque (nothing changes in the union: a
    // crash here leaves the rename undone), then renamed as a dir only in the rw branch, below.
    // (Copied straight to the new name, a crash left both names showing, the resent rename found
    // the new one not empty.)
    const tmp = copyTreeToWork(core, src, (n) => mergedNames(core, n).map((c) => core.lookup(n, c)));
    setOpaque(core.work!, tmp, core.options.whiteout, core.markers.opaque);
    if (src.layers[0] === 0) {
      rw.renameFrom(core.work!, tmp, oldRel, RENAME_EXCHANGE);
      core.work!.removeTree(tmp);
    } else rw.renameFrom(core.work!, tmp, oldRel);
  }
  if (src.isDir && src.layers.some((bi) => bi !== 0)) {
    if (dstUpper) emptyTarget(core, newParent.rel, newName, newRel);
    if (!renameOverDirWhiteout(core, oldRel, newRel, srcLower)) {
      if (overlayWh) removeWhiteout(rw, newParent.rel, newName);
      renameLeavingWhiteout(rw, parent.rel, name, newRel, core.options.whiteout);
      removeWhiteout(rw, newParent.rel, newName);
    }
  } else {
    copyUp(core, src, 'rename');
    copyUp(core, newParent, 'rename');
    if (dstUpper && dstUpper.isDirectory()) emptyTarget(core, newParent.rel, newName, newRel);
    // a directory arriving over a name that exists below hides it from the first moment (made
    // opaque where it is: it is only in the rw branch, so nothing changes there)
    if (src.isDir && dstLower) setOpaque(rw, oldRel, core.options.whiteout, core.markers.opaque);
    // a non-directory replaces a whiteout of the new name in the rename itself (the whiteout
    // removed first, a crash would show the name below again); a directory cannot
    if (src.isDir && !dst && renameOverDirWhiteout(core, oldRel, newRel, srcLower)) {
      /* done */
    } else {
      // (a dir cannot replace an overlay whiteout: removed first; an AUFS `.wh.NAME` and an
      // overlay whiteout a non-dir replaces go after, the rw entry winning over the former)
      if (src.isDir && overlayWh) removeWhiteout(rw, newParent.rel, newName);
      // with a whiteout left at once where the name exists below (a crash leaves no half-rename)
      if (srcLower) renameLeavingWhiteout(rw, parent.rel, name, newRel, core.options.whiteout);
      else rw.rename(oldRel, newRel);
      removeWhiteout(rw, newParent.rel, newName);
    }
  }
  renamed(core, parent, name, newParent, newName, src, dst, dstUpper, dstCount);
}

/** Bookkeeping after a rename: the replaced node is gone, the source has its new name. */
function renamed(
  core: Core,
  parent: UnionNode,
  name: string,
  newParent: UnionNode,
  newName: string,
  src: UnionNode,
  dst: UnionNode | null,
  dstUpper: Stats | null,
  dstCount: ReturnType<typeof countOf>,
): void {
  const newRel = joinRel(newParent.rel, newName);
  if (dst) {
    nameRemoved(core, dstCount);
    newParent.children.delete(newName);
    dst.removed();
    if (dstUpper && (dstUpper.isDirectory() || dstUpper.nlink <= 1) && dst.openCount === 0) {
      core.xino.delete(dstUpper.dev, dstUpper.ino);
    }
  }
  parent.children.delete(name);
  src.renamed(newParent, newName, newRel);
  newParent.children.set(newName, src);
  core.misses.changed(parent);
  core.misses.changed(newParent);
  core.gen++;
}

/**
 * RENAME_EXCHANGE: both names must exist. Non-directories and directories that live only in the
 * rw branch are swapped there atomically; a directory that also exists below cannot be (EXDEV).
 */
function exchange(core: Core, parent: UnionNode, name: string, newParent: UnionNode, newName: string): void {
  core.requireRw('rename');
  checkNames(core, parent, name, newParent, newName, false);
  const a = core.lookup(parent, name);
  const b = core.lookup(newParent, newName);
  if (a === b) return;
  if ((a.isDir && isAncestor(a, newParent)) || (b.isDir && isAncestor(b, parent))) throw new FsError('EINVAL', 'rename', name, newName);
  for (const n of [a, b]) if (n.isDir && (n.layers.length > 1 || !core.isUpper(n.layers[0]!))) throw new FsError('EXDEV', 'rename', name, newName);
  // several writable branches: only two names on one branch can be swapped there (EXDEV as AUFS)
  if (core.placement.several && !(core.isUpper(a.layers[0]!) && a.layers[0] === b.layers[0])) throw new FsError('EXDEV', 'rename', name, newName);
  const at = core.placement.several ? a.layers[0]! : undefined;
  const rw = at === undefined ? core.rw! : core.branches[at]!;
  const aLower = lowerHas(core.branches, parent, name, core.lowerIndex, at);
  const bLower = lowerHas(core.branches, newParent, newName, core.lowerIndex, at);
  copyUp(core, a, 'rename');
  copyUp(core, b, 'rename');
  const aRel = a.rel;
  const bRel = b.rel;
  rw.rename(aRel, bRel, RENAME_EXCHANGE);
  // A directory arriving where something exists below must hide it.
  if (a.isDir && bLower) setOpaque(rw, bRel, core.options.whiteout, core.markers.opaque);
  if (b.isDir && aLower) setOpaque(rw, aRel, core.options.whiteout, core.markers.opaque);
  parent.children.delete(name);
  newParent.children.delete(newName);
  a.renamed(newParent, newName, bRel);
  b.renamed(parent, name, aRel);
  newParent.children.set(newName, a);
  parent.children.set(name, b);
  core.misses.changed(parent);
  core.misses.changed(newParent);
  core.gen++;
}
