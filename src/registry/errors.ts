/** Registry errors: an errno code and a one-line reason, as the one `FsError` class. */
import { FsError } from '../errors/index.js';

export function regErr(code: string, detail: string): FsError {
  return new FsError(code, undefined, undefined, undefined, detail);
}
