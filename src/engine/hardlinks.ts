/**
 * Hard links of lower branches across copy-up (like overlayfs's index=on, simplified).
 *
 * When a regular file with several links below is copied up, the copy is also linked as
 * `<rw>/.wh..wh.layerfs.index/<dev>-<ino>` (the lower file's identity; private, never visible,
 * and wiped together with the rw branch). Another name of the same lower file then reads through
 * that index entry (the node's `alias`) and, on its own copy-up, is hard-linked to it instead of
 * copied: all names stay one file. A private xattr on the file (`trusted.layerfs.hardlink` =
 * "<union nlink> <key> <stamp>") keeps the union-wide link count and the lower file's birth time,
 * so an entry left from an earlier, different lower file with a reused inode is not trusted.
 * Real root only (trusted.* xattrs: a user namespace's root may not write them either).
 */
import type { Stats } from 'node:fs';
import { ST, type Branch } from '../branch/index.js';
import type { Core } from './core.js';
import { S_IFREG } from './node.js';
import { PRIVATE } from '../format/index.js';
import { isRealRoot } from '../sys/privilege.js';

export const INDEX_DIR = PRIVATE + '.index';
export const HARDLINK_XATTR = 'trusted.layerfs.hardlink';


interface Count {
  n: number;
  key: string;
  stamp: string;
}

/**
 * What a union knows of its index, asked on every lookup of a multiply linked file: kept per Core
 * and made again when its rw branch or work dir changes (a live branch change), so that a lookup
 * neither asks the process's euid (isRealRoot) nor probes the rw branch for an index that is not there.
 */
interface IndexState {
  readonly rw: Branch | null;
  readonly work: Branch | null;
  /** indexEnabled's answer. */
  readonly on: boolean;
  /** The rw branch holds INDEX_DIR (set when indexCopy makes it). */
  rwIndexed: boolean;
}

const states = new WeakMap<Core, IndexState>();

function stateOf(core: Core): IndexState {
  let s = states.get(core);
  if (s === undefined || s.rw !== core.rw || s.work !== core.work) {
    const on = !core.options.userxattr && core.rw !== null && core.work !== null && isRealRoot();
    s = { rw: core.rw, work: core.work, on, rwIndexed: on && core.rw!.exists(INDEX_DIR) };
    states.set(core, s);
  }
  return s;
}

export function indexEnabled(core: Core): boolean {
  return stateOf(core).on;
}

/**
 * Whether the rw branch may hold index entries: it has INDEX_DIR (known since the union was made,
 * or since indexCopy made it); with udba (changes behind the union's back are looked for) a
 * missing INDEX_DIR is asked again each time.
 */
function rwIndexed(core: Core, s: IndexState): boolean {
  if (s.rwIndexed) return true;
  if (core.udbaCheck === null) return false;
  return (s.rwIndexed = core.rw!.exists(INDEX_DIR));
}

/**
 * Whether a multiply linked regular file of branch `b` may carry a recorded union-wide count
 * (HARDLINK_XATTR): the index is on, and `b` is a branch where the index was kept: the rw branch
 * once it holds INDEX_DIR, another writable branch, or a read-only one whose root lists INDEX_DIR
 * (a former rw branch). A count is only ever written next to an index (indexCopy makes INDEX_DIR
 * before it sets the first one), so a branch without one has none to read: no lgetxattr per lookup.
 */
export function mayHaveCount(core: Core, b: Branch): boolean {
  const s = stateOf(core);
  if (!s.on) return false;
  if (b === core.rw) return rwIndexed(core, s);
  if (b.writable) return true;
  const bi = core.branches.indexOf(b);
  const root = bi >= 0 ? core.lowerIndex.list(bi, '') : null;
  return root === null || root.has(INDEX_DIR);
}

function keyOf(st: Stats): string {
  return `${st.dev}-${st.ino}`;
}

/** Identity stamp of a lower file beyond (dev, ino): its birth time, else its ctime. */
function stampOf(st: Stats): string {
  return String(st.birthtimeMs > 0 ? st.birthtimeMs : st.ctimeMs);
}

function entryRel(key: string): string {
  return `${INDEX_DIR}/${key}`;
}

/**
 * The index entry (rw-relative) a lower file with several links reads through, if its twin was
 * copied up. `nums` are the lookup's lstat numbers (sys ST slots): its (dev, ino) name the entry,
 * probed with one fstatat beneath the rw root; `full` gives the file's Stats for the birth-time
 * stamp, asked only when an entry is there (most multiply linked lower files have none).
 */
export function findAlias(core: Core, type: number, topBranch: number, nums: Float64Array, full: () => Stats | null): string | null {
  if (type !== S_IFREG || core.isUpper(topBranch) || nums[ST.nlink]! < 2) return null;
  const s = stateOf(core);
  // no index in the rw branch: no entry to probe
  if (!s.on || !rwIndexed(core, s)) return null;
  const rel = entryRel(`${nums[ST.dev]!}-${nums[ST.ino]!}`);
  const rw = core.rw!;
  if (!rw.exists(rel)) return null;
  const c = readCount(rw, rel);
  if (!c) return null;
  const st = full();
  return st && c.stamp === stampOf(st) ? rel : null;
}

/** After copying up a lower file with several links: record it in the index. */
export function indexCopy(core: Core, lowerSt: Stats, rw: Branch, rel: string): void {
  if (lowerSt.nlink < 2 || !indexEnabled(core)) return;
  const key = keyOf(lowerSt);
  const ix = entryRel(key);
  if (!rw.exists(INDEX_DIR)) {
    // the index is private: making it must not change the times of the merged root (as a copy-up's parent)
    const rootTimes = rw.lstatBig('');
    rw.mkdir(INDEX_DIR, 0o700);
    if (rootTimes) rw.setTimes('', rootTimes);
  }
  if (rw === core.rw) stateOf(core).rwIndexed = true;
  rw.setxattr(rel, HARDLINK_XATTR, Buffer.from(`${lowerSt.nlink} ${key} ${stampOf(lowerSt)}`), 0);
  if (rw.exists(ix)) rw.unlink(ix); // a stale entry of an earlier copy
  rw.link(rel, ix);
  core.gen++; // other names of this file now read through the index
}

/** The count recorded on an indexed file, or null. */
export function readCount(b: Branch, rel: string): Count | null {
  const v = b.tryGetxattr(rel, HARDLINK_XATTR);
  if (!v) return null;
  const [n, key, stamp] = v.toString().split(' ');
  const num = Number(n);
  return Number.isInteger(num) && key && stamp ? { n: num, key, stamp } : null;
}

/** Adjust the recorded count by `delta` (link: +1, unlink: -1); `b`/`rel` is any live name of it. */
export function adjustCount(b: Branch, rel: string, delta: number): void {
  const c = readCount(b, rel);
  if (!c) return;
  b.setxattr(rel, HARDLINK_XATTR, Buffer.from(`${Math.max(0, c.n + delta)} ${c.key} ${c.stamp}`), 0);
}

/** One name of an indexed file went away (unlink, rename over it): count down, drop the entry at 0. */
export function nameRemoved(core: Core, before: Count | null): void {
  if (!before || !core.rw) return;
  const ix = entryRel(before.key);
  if (!core.rw.exists(ix)) return;
  if (before.n <= 1) core.rw.unlink(ix);
  else adjustCount(core.rw, ix, -1);
}

/** The recorded count of a node's file, if it is an indexed hard link. */
export function countOf(core: Core, b: Branch, rel: string, type: number): Count | null {
  if (type !== S_IFREG || !indexEnabled(core)) return null;
  const st = b.lstat(rel);
  if (!st || st.nlink < 2) return null;
  return readCount(b, rel);
}
