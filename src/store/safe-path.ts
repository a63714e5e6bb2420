/**
 * Path handling for extraction: archive names are cleaned and checked, and every directory on the
 * way to an entry is lstat'ed so nothing is ever written through a symlink or outside the root.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isCode } from '../errors/index.js';
import { storeErr } from './store-error.js';

/**
 * An archive member name as a clean relative path ('' for the root): `./` and empty components
 * dropped; absolute names and `..` components refused.
 */
export function cleanMemberName(name: string): string {
  if (name.includes('\0')) throw storeErr('EINVAL', 'tar entry name contains NUL', 'import');
  if (name.startsWith('/')) throw storeErr('EINVAL', 'tar entry has an absolute path', 'import', name);
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw storeErr('EINVAL', 'tar entry escapes the layer (..)', 'import', name);
  return parts.join('/');
}

/**
 * Resolves `rel` beneath `root`, checking every parent component with lstat: a symlink or a
 * non-directory on the way is an error. With `create`, missing parents are made (0755).
 * Returns the absolute path of `rel` (whose last component is not checked).
 */
export function resolveBeneath(root: string, rel: string, create: boolean, known?: Set<string>): string {
  const parts = rel === '' ? [] : rel.split('/');
  let cur = root;
  let curRel = '';
  for (let i = 0; i < parts.length - 1; i++) {
    curRel = curRel === '' ? parts[i]! : `${curRel}/${parts[i]}`;
    cur = path.join(cur, parts[i]!);
    if (known?.has(curRel)) continue;
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(cur);
    } catch (e) {
      if (!isCode(e, 'ENOENT')) throw e;
    }
    if (st === undefined) {
      if (!create) throw storeErr('ENOENT', 'no such entry in the layer', 'import', curRel);
      fs.mkdirSync(cur, 0o755);
    } else if (st.isSymbolicLink()) {
      throw storeErr('ELOOP', 'tar entry would be written through a symlink', 'import', rel);
    } else if (!st.isDirectory()) {
      throw storeErr('ENOTDIR', 'tar entry below a non-directory', 'import', rel);
    }
    known?.add(curRel);
  }
  return path.join(root, ...parts);
}
