/**
 * Merged readdir (like overlayfs readdir.c): the union of names over the directory's layers,
 * topmost wins (its type and inode), minus names whited out above, minus `.wh.*` names and
 * overlay whiteouts; sorted by name.
 *
 * The branches the union never writes are read through the lower index (one readdir per
 * directory for the life of the union, shared with lookups); only the rw branch is read each time.
 * Types come from d_type; an entry's inode number needs an lstat and is taken only when someone
 * reads it (FUSE READDIRPLUS answers each entry from its lookup instead, so `ls -l` never pays it).
 */
import { ST, joinRel, statArray } from '../branch/index.js';
import type { Core } from './core.js';
import { GONE_INO } from './inode-table.js';
import { DT_CHR, DT_UNKNOWN } from './lower-index.js';
import { dtOf, S_IFCHR, S_IFMT, type UnionNode } from './node.js';
import type { DirEntry } from './types.js';
import { WH } from '../format/index.js';

const WH_LEN = WH.length;

/** lstat numbers of a listed entry that may be an overlay whiteout (the engine is synchronous: one user at a time). */
const whScratch = statArray();

/**
 * Visit the merged entries of `dir` (unsorted) with the branch index and d_type (DT_UNKNOWN when
 * the filesystem does not say) of the topmost one. Return `false` from `fn` to stop early.
 */
export function forEachMerged(core: Core, dir: UnionNode, fn: (name: string, bi: number, dt: number) => boolean | void): void {
  core.ensure(dir);
  if (core.udbaCheck !== null) core.udbaCheck(dir);
  const seen = new Set<string>();
  let hidden: Set<string> | null = null;
  const layers = dir.layers;
  for (let k = 0; k < layers.length; k++) {
    const bi = layers[k]!;
    const b = core.branches[bi]!;
    let whHere: string[] | null = null;
    const visit = (name: string, dt: number): boolean => {
      if (name.startsWith(WH)) {
        if (!name.startsWith(WH, WH_LEN)) (whHere ??= []).push(name.slice(WH_LEN));
        return true;
      }
      if (dt === DT_CHR || dt === DT_UNKNOWN) {
        // into a scratch array from the root fd: no Stats object, no /proc path per whiteout
        const st = whScratch;
        if (b.lstatInto(joinRel(dir.rel, name), st) && (st[ST.mode]! & S_IFMT) === S_IFCHR && st[ST.rdev] === 0) {
          (whHere ??= []).push(name);
          return true;
        }
      }
      if (seen.has(name) || (hidden !== null && hidden.has(name))) return true;
      seen.add(name);
      return fn(name, bi, dt) !== false;
    };
    const list = core.lowerIndex.list(bi, dir.rel);
    if (list) {
      for (const [name, dt] of list) if (!visit(name, dt)) return;
    } else {
      for (const [name, dt] of b.readdirTypes(dir.rel)) if (!visit(name, dt)) return;
    }
    if (whHere !== null) {
      hidden ??= new Set();
      for (const n of whHere as string[]) hidden.add(n);
    }
  }
}

/** An entry whose inode number is read (one lstat) on first use. */
class MergedEntry implements DirEntry {
  constructor(
    readonly name: string,
    readonly type: number,
    private inoV: number,
    private readonly core: Core | null,
    private readonly bi: number,
    private readonly rel: string,
    private readonly dir: UnionNode | null = null,
  ) {}

  get ino(): number {
    if (this.inoV === 0 && this.core) {
      const core = this.core;
      const st = core.branches[this.bi]!.lstat(this.rel);
      // Gone since the listing: a number no file has.
      this.inoV = st ? core.entryIno(this.dir!, this.name, this.bi, st) : GONE_INO;
    }
    return this.inoV;
  }
}

/** The merged entries with stable inode numbers, sorted by name (no `.`/`..`). */
export function mergedEntries(core: Core, dir: UnionNode): DirEntry[] {
  const out: DirEntry[] = [];
  forEachMerged(core, dir, (name, bi, dt) => {
    const cached = dir.children.get(name);
    // a cached node keeps its number when names move or branches change (gen bumped): listing and stat agree
    if (cached && cached.gen !== core.gen && !cached.unlinked) core.ensure(cached);
    if (cached && cached.gen === core.gen && !cached.unlinked) {
      out.push(new MergedEntry(name, dtOf(cached.type), cached.ino, null, bi, ''));
      return;
    }
    const rel = joinRel(dir.rel, name);
    if (dt === DT_UNKNOWN) {
      const st = core.branches[bi]!.lstat(rel);
      if (!st) return; // vanished meanwhile
      out.push(new MergedEntry(name, dtOf(st.mode & S_IFMT), core.entryIno(dir, name, bi, st), null, bi, rel));
      return;
    }
    out.push(new MergedEntry(name, dt, 0, core, bi, rel, dir));
  });
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out;
}

/** Whether the merged directory has no visible entry. */
export function isMergedEmpty(core: Core, dir: UnionNode): boolean {
  let empty = true;
  forEachMerged(core, dir, () => {
    empty = false;
    return false;
  });
  return empty;
}

/** Names of the merged entries. */
export function mergedNames(core: Core, dir: UnionNode): string[] {
  const out: string[] = [];
  forEachMerged(core, dir, (name) => {
    out.push(name);
  });
  return out.sort();
}
