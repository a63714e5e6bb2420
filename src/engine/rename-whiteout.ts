/**
 * The last step of renaming a name that also exists below: move the rw copy and leave a whiteout
 * at the old name, with no moment at which a crash (a killed daemon) leaves the lower file showing
 * at the old name beside the renamed copy (the rename, sent again after the crash, would then copy
 * the lower file up once more and rename it over the renamed copy, losing its changes).
 * - overlay format: renameat2(RENAME_WHITEOUT) does both at once (as kernel overlayfs does);
 *   where it is refused, rename then whiteout.
 * - AUFS format: `.wh.NAME` first (beside the rw NAME, which still wins over it), then the rename.
 */
import { joinRel, type Branch } from '../branch/index.js';
import { isCode } from '../errors/index.js';
import { isOverlayWhiteout } from '../format/index.js';
import { RENAME_EXCHANGE, RENAME_WHITEOUT } from '../sys/constants.js';
import type { Core } from './core.js';
import type { WhiteoutFormat } from './types.js';
import { clearMarkers, setOpaque, writeWhiteout } from './whiteout.js';

/** Longest name whose AUFS whiteout `.wh.NAME` fits in NAME_MAX. */
const AUFS_NAME_MAX = 255 - 4;

export function renameLeavingWhiteout(rw: Branch, dirRel: string, name: string, newRel: string, format: WhiteoutFormat): void {
  const oldRel = joinRel(dirRel, name);
  if (format === 'overlay') {
    try {
      rw.rename(oldRel, newRel, RENAME_WHITEOUT);
      return;
    } catch (e) {
      if (!isCode(e, 'EINVAL', 'EPERM', 'EOPNOTSUPP', 'ENOTSUP')) throw e;
    }
  } else if (Buffer.byteLength(name) <= AUFS_NAME_MAX) {
    writeWhiteout(rw, dirRel, name, format);
    rw.rename(oldRel, newRel);
    return;
  }
  rw.rename(oldRel, newRel);
  writeWhiteout(rw, dirRel, name, format);
}

/**
 * Make way for a rename over an empty (merged) target dir that has a copy in writable branch `rw`
 * (the first by default), with no moment showing anything in it (else a crash there shows the
 * lower names its whiteouts hid: the resent rename finds it not empty).
 * - overlay format: made opaque first (an xattr, kept while its whiteouts go), left empty on disk
 *   for the rename to replace;
 * - AUFS format: `.wh.NAME` first (the rw dir still wins over it), then the rw dir moved out to
 *   the work dir (a crash here shows no target: the resent rename makes it); the caller removes
 *   `.wh.NAME` after the rename.
 */
export function emptyTarget(core: Core, parentRel: string, name: string, rel: string, rw: Branch = core.rw!): void {
  if (core.options.whiteout === 'overlay') {
    setOpaque(rw, rel, 'overlay', core.markers.opaque);
    clearMarkers(rw, rel);
    return;
  }
  const work = core.work === null || core.work === undefined ? null : core.workFor(rw);
  if (!work || work.dev !== rw.dev) {
    clearMarkers(rw, rel);
    rw.rmdir(rel);
    return;
  }
  writeWhiteout(rw, parentRel, name, core.options.whiteout);
  const t = core.tmpName();
  work.renameFrom(rw, rel, t);
  work.removeTree(t);
}

/**
 * A directory renamed onto an overlay whiteout (a name removed that exists below): swapped with it
 * in one step (renameat2 RENAME_EXCHANGE, as kernel overlayfs does), the whiteout landing at the
 * old name (kept where the old name exists below, else removed). The whiteout removed first, a
 * crash would show the lower dir at the new name. False when there is no such whiteout or the
 * swap is refused: the caller removes it first.
 */
export function renameOverDirWhiteout(core: Core, oldRel: string, newRel: string, srcLower: boolean, rw: Branch = core.rw!): boolean {
  if (core.options.whiteout !== 'overlay') return false;
  const st = rw.lstat(newRel);
  if (!st || !isOverlayWhiteout(st)) return false;
  try {
    rw.rename(oldRel, newRel, RENAME_EXCHANGE);
  } catch (e) {
    if (isCode(e, 'EINVAL', 'EPERM', 'EOPNOTSUPP', 'ENOTSUP')) return false;
    throw e;
  }
  if (!srcLower) rw.unlink(oldRel);
  return true;
}
