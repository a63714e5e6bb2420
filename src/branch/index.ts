export { Branch, isWritableDir, joinRel, nsParts, parentRel } from './branch.js';
export { validateOptions, checkDir } from './validate.js';
export * as fdops from './fd.js';
export { openXinoFile, appendXinoRecord, rewriteXinoFile, closeXinoFile } from './xino-file.js';
export type { XinoFile } from './xino-file.js';
