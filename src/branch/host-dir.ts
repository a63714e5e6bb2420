/**
 * A host directory named in the options (a branch root, the work dir), checked before the union
 * uses it: every problem is one FsError with a one-line message naming its role.
 */
import * as fs from 'node:fs';
import { FsError, isCode } from '../errors/index.js';

function err(code: string, p: string, detail: string): FsError {
  return new FsError(code, 'mount', p, undefined, detail);
}

/** An existing directory: its real path and st_dev. */
export interface HostDir {
  real: string;
  dev: number;
}

/** realpath and st_dev of an existing directory; ENOENT/ENOTDIR naming the role. */
export function checkDir(p: string, role: string): HostDir {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    if (isCode(e, 'ENOENT')) throw err('ENOENT', p, `${role} does not exist`);
    if (isCode(e, 'ENOTDIR')) throw err('ENOTDIR', p, `${role} is not a directory`);
    throw e;
  }
  if (!st.isDirectory()) throw err('ENOTDIR', p, `${role} is not a directory`);
  return { real: fs.realpathSync(p), dev: st.dev };
}
