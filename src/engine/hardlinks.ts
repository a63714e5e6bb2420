/**
 * Hard links of lower branches across copy-up (like overlayfs's index=on, simplified).
 *
 * When a regular file with several links below is copied up, the copy is also linked into the
 * work dir's `index/<dev>-<ino>` (the lower file's identity). Another name of the same lower file
 * then reads through that index entry (the node's `alias`) and, on its own copy-up, is hard-linked
 * to it instead of copied: all names stay one file. The union-wide link count is kept in a
 * private xattr on the file (`trusted.layerfs.hardlink` = "<nlink> <key>"), root only.
 */
import type { Stats } from 'node:fs';
import type { Branch } from '../branch/index.js';
import type { Core } from './core.js';
import { S_IFREG } from './node.js';

export const INDEX_DIR = 'index';
export const HARDLINK_XATTR = 'trusted.layerfs.hardlink';

const isRoot = typeof process.geteuid === 'function' && process.geteuid() === 0;

export function indexEnabled(core: Core): boolean {
  return isRoot && core.work !== null;
}

export function indexRel(st: Stats): string {
  return `${INDEX_DIR}/${st.dev}-${st.ino}`;
}

/** The index entry a lower file with several links reads through, if one of its names was copied up. */
export function findAlias(core: Core, type: number, topBranch: number, st: Stats): string | null {
  if (type !== S_IFREG || topBranch === 0 || st.nlink < 2 || !indexEnabled(core)) return null;
  const rel = indexRel(st);
  return core.work!.lstat(rel) ? rel : null;
}

/** After copying up a lower file with several links: record it in the index. */
export function indexCopy(core: Core, lowerSt: Stats, rw: Branch, rel: string): void {
  if (lowerSt.nlink < 2 || !indexEnabled(core)) return;
  const work = core.work!;
  const ix = indexRel(lowerSt);
  if (!work.exists(INDEX_DIR)) work.mkdir(INDEX_DIR, 0o700);
  rw.setxattr(rel, HARDLINK_XATTR, Buffer.from(`${lowerSt.nlink} ${lowerSt.dev}-${lowerSt.ino}`), 0);
  if (work.exists(ix)) work.unlink(ix); // stale entry of an earlier copy that was since removed
  work.linkFrom(rw, rel, ix);
  core.gen++; // other names of this file now read through the index
}

/** Union-wide link count recorded on an indexed file, or null. */
export function readCount(b: Branch, rel: string): { n: number; key: string } | null {
  const v = b.tryGetxattr(rel, HARDLINK_XATTR);
  if (!v) return null;
  const [n, key] = v.toString().split(' ');
  const num = Number(n);
  return Number.isInteger(num) && key ? { n: num, key } : null;
}

/** Adjust the recorded count by `delta` (link: +1, unlink: -1); `b`/`rel` is any live name of it. */
export function adjustCount(b: Branch, rel: string, delta: number): void {
  const c = readCount(b, rel);
  if (!c) return;
  b.setxattr(rel, HARDLINK_XATTR, Buffer.from(`${Math.max(0, c.n + delta)} ${c.key}`), 0);
}

/** One name of an indexed file went away (unlink, rename over it): count down, drop the index at 0. */
export function nameRemoved(core: Core, before: { n: number; key: string } | null): void {
  if (!before || !core.work) return;
  const ix = `${INDEX_DIR}/${before.key}`;
  if (!core.work.exists(ix)) return;
  if (before.n <= 1) core.work.unlink(ix);
  else adjustCount(core.work, ix, -1);
}

/** The recorded count of a node's file, if it is an indexed hard link. */
export function countOf(core: Core, b: Branch, rel: string, type: number): { n: number; key: string } | null {
  if (type !== S_IFREG || !indexEnabled(core)) return null;
  const st = b.lstat(rel);
  if (!st || st.nlink < 2) return null;
  return readCount(b, rel);
}
