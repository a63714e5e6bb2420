/**
 * layerfs package entry: the in-process API, the errors, the mount option parser and the
 * engine contract types.
 *
 *   import { UnionFS } from 'layerfs';
 *   const fs = new UnionFS('dirs=./container-layer=rw:./image-layer1=ro');
 *   await fs.appendFile('/image-layer1.txt', 'more\n');
 */
export { UnionFS, RmDirError, FileHandle, Stats, BigIntStats, Dirent } from './api/index.js';
export type { UnionFSOptions, PathLike, Data, OpenFlags, TimeLike, ReadFileOptions, WriteFileOptions } from './api/index.js';
export { FsError, fsErr, toFsError, isCode, errnoCode, errnoConstants, codeOf, errnoOf, strerror } from './errors/index.js';
export { parseOptions, formatOptions } from './engine/index.js';
export type { UnionOptions, BranchSpec, BranchPerm, WhiteoutFormat, DirRenameMode, Attr, Ctx } from './engine/index.js';
export { changes, type Change, type ChangeKind } from './store/changes.js';
