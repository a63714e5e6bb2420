export * from './types.js';
export { parseOptions, formatOptions, parseBranchElement, splitEscaped } from './params.js';
export type { ParseContext } from './params.js';
export { validateOptions } from './validate.js';
export { withBranchState } from './branch-state.js';
export { Union } from './union.js';
export type { UnionInfo } from './union.js';
export { UnionNode, FileHandle, DirHandle } from './node.js';
