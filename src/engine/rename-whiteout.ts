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
import { RENAME_WHITEOUT } from '../sys/constants.js';
import type { WhiteoutFormat } from './types.js';
import { writeWhiteout } from './whiteout.js';

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
