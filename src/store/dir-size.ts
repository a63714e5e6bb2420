/**
 * Size of a layer directory as Docker's drivers report it: bytes of regular file content, hard links
 * counted once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { WH_META } from '../format/index.js';

/** Bytes of regular file content under `dir`, hard links once; `skipPrivate`: not `.wh..wh.*` at the top. */
export function dirSize(dir: string, skipPrivate = false): number {
  const seen = new Set<number>();
  let size = 0;
  const walk = (d: string): void => {
    for (const n of fs.readdirSync(d)) {
      if (skipPrivate && d === dir && n.startsWith(WH_META)) continue;
      const st = fs.lstatSync(path.join(d, n));
      if (st.isDirectory()) walk(path.join(d, n));
      else if (st.isFile() && !seen.has(st.ino)) {
        seen.add(st.ino);
        size += st.size;
      }
    }
  };
  walk(dir);
  return size;
}
