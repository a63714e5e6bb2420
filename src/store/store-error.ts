/**
 * Store errors: an errno code plus a one-line reason, as an `FsError` (errors are errno codes end to
 * end). `storeErr('EINVAL', 'tar entry escapes the layer', 'import', '../x')` reads
 * `EINVAL: tar entry escapes the layer, import '../x'`.
 */
import { FsError } from '../errors/index.js';

export function storeErr(code: string, detail: string, syscall?: string, path?: string): FsError {
  return new FsError(code, syscall, path, undefined, detail);
}
