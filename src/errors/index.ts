export { FsError, fsErr, toFsError, isCode, errnoCode } from './fs-error.js';
export { constants as errnoConstants, codeOf, errnoOf, strerror } from './errno.js';
