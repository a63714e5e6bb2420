/**
 * rename with several writable branches (AUFS's rules): the entry is renamed on the branch that
 * holds it, never moved between branches (that would be a copy across filesystems).
 * - a non-directory on a read-only branch is copied up first (cpup= policy), then renamed there;
 * - a directory only on one writable branch is renamed there; a directory merged from several
 *   branches answers EXDEV, as AUFS without dirren does (mv then copies and deletes);
 * - EXDEV too when the new name cannot be seen from that branch (its parent's lookup stops above
 *   it, a whiteout of the new name above it) or the replaced name lives on a branch above it;
 * - a replaced name on a lower writable branch is removed there; whiteouts go to the source's
 *   branch, as for unlink (place-ops.ts).
 */
import type { Stats } from 'node:fs';
import { joinRel } from '../branch/index.js';
import { FsError } from '../errors/index.js';
import type { Core } from './core.js';
import { copyUp, ensureDirOn } from './copy-up.js';
import { countOf } from './hardlinks.js';
import { lowerHas } from './namei.js';
import type { UnionNode } from './node.js';
import { canPlace } from './place-ops.js';
import { emptyTarget, renameLeavingWhiteout, renameOverDirWhiteout } from './rename-whiteout.js';
import { clearMarkers, removeWhiteout, setOpaque } from './whiteout.js';

/** Rename src (NAME in parent) to NEWNAME in newParent replacing dst; POSIX checks are done. */
export function renameOnBranch(
  core: Core,
  parent: UnionNode,
  name: string,
  newParent: UnionNode,
  newName: string,
  src: UnionNode,
  dst: UnionNode | null,
): { dstUpper: Stats | null; dstCount: ReturnType<typeof countOf> } {
  const exdev = (): FsError => new FsError('EXDEV', 'rename', name, newName);
  if (src.isDir && (src.layers.length > 1 || !core.isUpper(src.layers[0]!))) throw exdev();
  copyUp(core, src, 'rename');
  const t = src.layers[0]!;
  if (!canPlace(core, newParent, newName, t)) throw exdev();
  if (dst && dst.layers[0]! < t) throw exdev();
  const b = core.branches[t]!;
  const oldRel = src.rel;
  const newRel = joinRel(newParent.rel, newName);
  const srcLower = lowerHas(core.branches, parent, name, core.lowerIndex, t);
  const dstLower = lowerHas(core.branches, newParent, newName, core.lowerIndex, t);
  ensureDirOn(core, newParent, t, 'rename');
  let dstUpper: Stats | null = null;
  let dstCount: ReturnType<typeof countOf> = null;
  if (dst) {
    const r = core.real(dst);
    dstCount = countOf(core, r.b, r.rel, dst.type);
    const d = dst.layers[0]!;
    if (d === t) dstUpper = b.lstat(newRel);
    else if (core.isUpper(d)) {
      // on a writable branch below: removed there, the renamed entry hides what is below it
      const db = core.branches[d]!;
      const st = db.lstat(newRel);
      if (dst.isDir) {
        clearMarkers(db, newRel);
        db.rmdir(newRel);
      } else db.unlink(newRel);
      if (st && (st.isDirectory() || st.nlink <= 1) && dst.openCount === 0) core.xino.delete(st.dev, st.ino);
    }
  }
  // As with one rw branch (rename.ts), no step leaves a moment a crash would show a lower entry
  // at either name: an empty target emptied with no moment showing its lower names, a dir
  // arriving over a lower name opaque before it arrives (it is only on this branch), a whiteout
  // of the new name replaced by the rename itself (a dir: exchanged with it) or removed after it
  // (AUFS: the entry wins over `.wh.NAME`), and the old name's whiteout left by the rename.
  if (dstUpper && dstUpper.isDirectory()) emptyTarget(core, newParent.rel, newName, newRel, b);
  if (src.isDir && dstLower) setOpaque(b, oldRel, core.options.whiteout, core.markers.opaque);
  if (!(src.isDir && !dst && renameOverDirWhiteout(core, oldRel, newRel, srcLower, b))) {
    // (a dir cannot replace an overlay whiteout: that one goes first)
    if (src.isDir && core.options.whiteout === 'overlay') removeWhiteout(b, newParent.rel, newName);
    if (srcLower) renameLeavingWhiteout(b, parent.rel, name, newRel, core.options.whiteout);
    else b.rename(oldRel, newRel);
    removeWhiteout(b, newParent.rel, newName);
  }
  return { dstUpper, dstCount };
}
