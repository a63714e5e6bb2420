/**
 * Merged readdir (like overlayfs readdir.c): the union of names over the directory's layers,
 * topmost wins (its type and inode), minus names whited out above, minus `.wh.*` names and
 * overlay whiteouts; sorted by name.
 */
import { joinRel } from '../branch/index.js';
import type { Core } from './core.js';
import { dtOf, S_IFMT, type UnionNode } from './node.js';
import type { DirEntry } from './types.js';
import { WH, isOverlayWhiteout } from './whiteout.js';

/** Visit the merged entries of `dir` (unsorted). Return `false` from `fn` to stop early. */
export function forEachMerged(core: Core, dir: UnionNode, fn: (name: string, bi: number) => boolean | void): void {
  core.ensure(dir);
  const seen = new Set<string>();
  const hidden = new Set<string>();
  for (const bi of dir.layers) {
    const b = core.branches[bi]!;
    const whHere: string[] = [];
    for (const d of b.readdir(dir.rel)) {
      const name = d.name;
      if (name.startsWith(WH)) {
        if (!name.startsWith(WH + WH)) whHere.push(name.slice(WH.length));
        continue;
      }
      if (d.isCharacterDevice()) {
        const st = b.lstat(joinRel(dir.rel, name));
        if (st && isOverlayWhiteout(st)) {
          whHere.push(name);
          continue;
        }
      }
      if (seen.has(name) || hidden.has(name)) continue;
      seen.add(name);
      if (fn(name, bi) === false) return;
    }
    for (const n of whHere) hidden.add(n);
  }
}

/** The merged entries with stable inode numbers, sorted by name (no `.`/`..`). */
export function mergedEntries(core: Core, dir: UnionNode): DirEntry[] {
  const out: DirEntry[] = [];
  forEachMerged(core, dir, (name, bi) => {
    const cached = dir.children.get(name);
    if (cached && cached.gen === core.gen && !cached.unlinked) {
      out.push({ name, type: dtOf(cached.type), ino: cached.ino });
      return;
    }
    const st = core.branches[bi]!.lstat(joinRel(dir.rel, name));
    if (!st) return; // vanished meanwhile
    out.push({ name, type: dtOf(st.mode & S_IFMT), ino: core.inoOf(bi, st) });
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
