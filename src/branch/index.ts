export { Branch, fdPath, isWritableDir, joinRel, linkByFd, nsParts, parentRel, utimensByFd } from './branch.js';
export type { BranchPerm } from './branch.js';
export { checkDir } from './host-dir.js';
export type { HostDir } from './host-dir.js';
export * as fdops from './fd.js';
export { XINO_OPEN_FLAGS, openXinoFile, appendXinoRecord, rewriteXinoFile, closeXinoFile } from './xino-file.js';
export type { XinoFile } from './xino-file.js';
/** The array Branch.lstatInto fills and its slots. */
export { ST, statArray } from '../sys/index.js';
export { branchWithPerm, newBranch } from './reopen.js';
