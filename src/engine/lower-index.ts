/**
 * Listings of directories in the branches the union never writes (every branch but the rw one),
 * each read once with one readdir and kept: a lookup then asks a map whether a lower branch holds
 * NAME or `.wh.NAME`, instead of an lstat per name per layer. The union itself never changes these
 * branches, so a listing stays right for the life of the union; changes made to a lower branch
 * behind the union's back are not seen (overlayfs says the same of its lower layers).
 * The rw branch is never indexed: it changes with every create, unlink, rename and copy-up.
 *
 * Shared between unions: a lower directory (known by the st_dev and st_ino of its root) that
 * several unions of this thread hold read-only (100 containers of one image) has one set of
 * listings, read once and kept while any of those unions lives (a refcounted store per layer).
 * Since no union writes such a layer, what one union read is right for all of them. The store is
 * per JavaScript realm (a worker thread has its own): the daemon puts mounts of the same lower
 * layers on the same serving thread so that they meet here (fuse/session.ts).
 */
import type { Dirent } from 'node:fs';
import type { Branch } from '../branch/index.js';
import { isCode } from '../errors/index.js';

export const DT_UNKNOWN = 0;
export const DT_CHR = 2;
export const DT_DIR = 4;

/** name -> DT_* type of one directory of one branch (empty: the directory is absent there). */
export type Listing = ReadonlyMap<string, number>;

const ABSENT: Listing = new Map();

/** d_type of a node:fs Dirent. */
export function dtOfDirent(d: Dirent): number {
  if (d.isFile()) return 8;
  if (d.isDirectory()) return DT_DIR;
  if (d.isSymbolicLink()) return 10;
  if (d.isCharacterDevice()) return DT_CHR;
  if (d.isBlockDevice()) return 6;
  if (d.isFIFO()) return 1;
  if (d.isSocket()) return 12;
  return DT_UNKNOWN;
}

/** The listings of one lower directory tree, shared by every union of this realm that reads it. */
interface Store {
  readonly key: string;
  readonly dirs: Map<string, Listing>;
  /** Unions holding it. */
  users: number;
}

const stores = new Map<string, Store>();

function storeKey(b: Branch): string {
  return `${b.dev}:${b.rootIno}`;
}

function acquire(key: string): Store {
  let s = stores.get(key);
  if (!s) stores.set(key, (s = { key, dirs: new Map(), users: 0 }));
  s.users++;
  return s;
}

/** What the shared stores hold now in this realm (for `layerfs info` and tests). */
export function sharedIndexStats(): { layers: number; listings: number; users: number } {
  let listings = 0;
  let users = 0;
  for (const s of stores.values()) {
    listings += s.dirs.size;
    users += s.users;
  }
  return { layers: stores.size, listings, users };
}

export class LowerIndex {
  /** Per branch: its shared store (null: not indexed). */
  private readonly dirs: (Store | null)[];
  private closed = false;
  /** Listings this union read from disk itself (the others came from a union sharing the layer). */
  reads = 0;

  /**
   * @param indexed which branch indices may be indexed (those the union never writes)
   * @param maxDirs listings kept before all are dropped and read again on demand
   */
  constructor(
    private readonly branches: readonly Branch[],
    indexed: readonly boolean[],
    private readonly maxDirs = 16384,
  ) {
    this.dirs = branches.map((b, i) => (indexed[i] ? acquire(storeKey(b)) : null));
  }

  /**
   * The listing of directory `rel` of branch `bi`, or null when that branch is not indexed or
   * its directory cannot be listed (the caller then asks with lstat as before).
   */
  list(bi: number, rel: string): Listing | null {
    const store = this.dirs[bi];
    if (!store) return null;
    const m = store.dirs;
    const have = m.get(rel);
    if (have) return have;
    let l: Listing | null;
    try {
      // one openat2 + getdents64 beneath the branch root: names and d_types, no Dirent objects
      l = this.branches[bi]!.readdirTypes(rel);
    } catch (e) {
      // absent there (or not a directory there): nothing of it in this branch
      l = isCode(e, 'ENOENT', 'ENOTDIR') ? ABSENT : null;
    }
    if (l === null) return null;
    this.reads++;
    if (m.size >= this.maxDirs) m.clear();
    m.set(rel, l);
    return l;
  }

  /** Drop the listing of `rel` in branch `bi` (changed behind the union's back: udba). */
  forget(bi: number, rel: string): void {
    this.dirs[bi]?.dirs.delete(rel);
  }

  /** Drop the listings of `rel` and everything below it, in every indexed branch (udba). */
  forgetUnder(rel: string): void {
    const prefix = rel + '/';
    for (const s of this.dirs) {
      if (!s) continue;
      s.dirs.delete(rel);
      for (const k of s.dirs.keys()) if (k.startsWith(prefix)) s.dirs.delete(k);
    }
  }

  /** Drop every listing of this union's layers, for every union sharing them (read again when next asked). */
  clear(): void {
    for (const s of this.dirs) s?.dirs.clear();
  }

  /** Listings held now for this union's layers (shared ones included). */
  get size(): number {
    let n = 0;
    for (const s of this.dirs) n += s?.dirs.size ?? 0;
    return n;
  }

  /** Let go of the shared stores (the last union of a layer frees its listings). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.dirs) {
      if (!s) continue;
      if (--s.users <= 0) stores.delete(s.key);
    }
  }
}
