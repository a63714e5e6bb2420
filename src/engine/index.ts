export * from './types.js';
export { parseOptions, formatOptions, parseBranchElement, splitEscaped } from './params.js';
export type { ParseContext } from './params.js';
