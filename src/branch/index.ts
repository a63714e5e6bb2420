export { Branch, isWritableDir, joinRel, parentRel } from './branch.js';
export { validateOptions, checkDir } from './validate.js';
export * as fdops from './fd.js';
