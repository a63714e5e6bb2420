/**
 * Remembered negative lookups: what a lookup that found nothing learned about NAME under a
 * directory (the rw-branch probes of namei's RwProbe: NAME and `.wh.NAME` absent there, or the
 * whiteout seen), kept so that the create-type operation the kernel sends right after its LOOKUP
 * (CREATE, MKDIR, MKNOD, SYMLINK, LINK after a negative LOOKUP) need not probe the branches again.
 *
 * Rules, so that the union's answer never differs from a fresh search:
 * - only create-type operations read it (Core.lookupData's `forCreate`), and each entry serves
 *   once: a LOOKUP always searches the branches, so what a plain lookup answers is unchanged;
 * - an entry counts only for the same parent node, at the same generation of the union (renames,
 *   branch changes, hard-link index moves bump it) and with the same parent layers (a copy-up of
 *   the parent replaces them);
 * - every change of the union's names in a directory forgets that directory's entries
 *   (`changed`: create-type ops, unlink, rmdir, link, rename), and udba forgets them on any change
 *   it notices in a branch (`changed` per directory, `clear` for a subtree or everything).
 * A change made directly in a branch between the LOOKUP and the create that udba has not
 * noticed yet is the race any create has with such a change: the name made in the rw branch is
 * refused there (O_EXCL, mkdir, symlink: EEXIST), and one made below is hidden by the new name
 * as it would be had it come a moment later.
 */
import type { LookupData } from './namei.js';
import type { UnionNode } from './node.js';

/** Entries kept at most (one per request in flight is what serves; more only costs memory). */
export const MISS_MEMORY_SIZE = 64;

interface Miss {
  d: LookupData;
  gen: number;
  layers: readonly number[];
}

export class MissMemory {
  private readonly byDir = new Map<UnionNode, Map<string, Miss>>();
  private count = 0;
  /** Entries served (for tests). */
  hits = 0;

  /** A lookup of NAME under `parent` at generation `gen` found nothing (`d`: what it learned). */
  remember(parent: UnionNode, name: string, d: LookupData, gen: number): void {
    if (this.count >= MISS_MEMORY_SIZE) this.clear();
    let m = this.byDir.get(parent);
    if (m === undefined) {
      m = new Map();
      this.byDir.set(parent, m);
    }
    if (!m.has(name)) this.count++;
    m.set(name, { d, gen, layers: parent.layers });
  }

  /** What the last lookup of NAME under `parent` learned, if it still holds (served once); else null. */
  take(parent: UnionNode, name: string, gen: number): LookupData | null {
    const m = this.byDir.get(parent);
    if (m === undefined) return null;
    const e = m.get(name);
    if (e === undefined) return null;
    m.delete(name);
    this.count--;
    if (m.size === 0) this.byDir.delete(parent);
    if (e.gen !== gen || parent.gen !== gen || e.layers !== parent.layers || parent.unlinked) return null;
    this.hits++;
    return e.d;
  }

  /** The names of directory `dir` changed: forget its entries. */
  changed(dir: UnionNode): void {
    const m = this.byDir.get(dir);
    if (m === undefined) return;
    this.count -= m.size;
    this.byDir.delete(dir);
  }

  /** Forget everything. */
  clear(): void {
    this.byDir.clear();
    this.count = 0;
  }

  /** Entries held (for tests). */
  get size(): number {
    return this.count;
  }
}
