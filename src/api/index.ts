export { UnionFS, RmDirError, type UnionFSOptions } from './union-fs.js';
export { FileHandle } from './file-handle.js';
export { Stats, BigIntStats, Dirent } from './stats.js';
export type { PathLike, Data, OpenFlags, TimeLike, ReadFileOptions, WriteFileOptions } from './data.js';
