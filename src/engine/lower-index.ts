/**
 * Listings of directories in the branches the union never writes (every branch but the rw one),
 * each read once with one readdir and kept: a lookup then asks a map whether a lower branch holds
 * NAME or `.wh.NAME`, instead of an lstat per name per layer. The union itself never changes these
 * branches, so a listing stays right for the life of the union; changes made to a lower branch
 * behind the union's back are not seen (overlayfs says the same of its lower layers).
 * The rw branch is never indexed: it changes with every create, unlink, rename and copy-up.
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

export class LowerIndex {
  private readonly dirs: Map<string, Listing>[];
  private count = 0;

  /**
   * @param indexed which branch indices may be indexed (those the union never writes)
   * @param maxDirs listings kept before all are dropped and read again on demand
   */
  constructor(
    private readonly branches: readonly Branch[],
    private readonly indexed: readonly boolean[],
    private readonly maxDirs = 16384,
  ) {
    this.dirs = branches.map(() => new Map<string, Listing>());
  }

  /**
   * The listing of directory `rel` of branch `bi`, or null when that branch is not indexed or
   * its directory cannot be listed (the caller then asks with lstat as before).
   */
  list(bi: number, rel: string): Listing | null {
    if (!this.indexed[bi]) return null;
    const m = this.dirs[bi]!;
    const have = m.get(rel);
    if (have) return have;
    let l: Listing | null;
    try {
      const names = new Map<string, number>();
      for (const d of this.branches[bi]!.readdir(rel)) names.set(d.name, dtOfDirent(d));
      l = names;
    } catch (e) {
      // absent there (or not a directory there): nothing of it in this branch
      l = isCode(e, 'ENOENT', 'ENOTDIR') ? ABSENT : null;
    }
    if (l === null) return null;
    if (this.count >= this.maxDirs) this.clear();
    m.set(rel, l);
    this.count++;
    return l;
  }

  /** Drop every listing (they are read again when next asked). */
  clear(): void {
    for (const m of this.dirs) m.clear();
    this.count = 0;
  }

  /** Listings held now. */
  get size(): number {
    return this.count;
  }
}
