/**
 * What a writable branch changed relative to the branches below it, listed as `docker diff`
 * does: `A` added, `C` changed, `D` deleted, sorted by path.
 *
 * Pure function over host directories (no union mounted):
 * - an AUFS whiteout `.wh.NAME` or an overlay whiteout (char device 0/0) -> `D /dir/NAME`;
 * - any other entry -> `C` when the same path is visible in the lower branches (a lower lookup
 *   that honours whiteouts and opaque markers between lower branches), else `A`;
 * - children of an opaque directory (`.wh..wh..opq`) in the writable branch hide everything below
 *   them, so they are `A`; like docker's aufs driver, the entries an opaque directory hides are
 *   not listed as `D`;
 * - a directory of the writable branch (copied up because something inside changed) is `C` when it
 *   exists below, else `A`;
 * - our private names (`.wh..wh.*`: opaque marker, work dir, inode table) are skipped.
 * Opaque directories are recognised in both formats (AUFS `.wh..wh..opq`, overlay
 * `trusted.overlay.opaque=y`): whiteouts and opaque markers are read by the engine's own functions
 * (`engine/whiteout.ts`), through a read-only Branch per directory, so both agree by construction.
 */
import { existsSync } from 'node:fs';
import { Branch, joinRel } from '../branch/index.js';
import { WH_META, isOverlayWhiteout, whiteoutTarget } from '../format/index.js';
import { hasWhiteout, isOpaque } from '../engine/whiteout.js';

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  kind: ChangeKind;
  /** Union-absolute path, `/a/b`. */
  path: string;
}

/**
 * Is relative path `rel` (components) visible in the stack of lower branches (topmost first)?
 * Honours whiteouts and opaque markers (both formats) between the lower branches, as the engine's
 * lookup does.
 */
function visibleBelow(lowers: readonly Branch[], rel: readonly string[]): boolean {
  // For each component, the branches where the parent chain is still visible.
  let live: { b: Branch; dir: string }[] = lowers.map((b) => ({ b, dir: '' }));
  for (let i = 0; i < rel.length; i++) {
    const name = rel[i]!;
    const last = i === rel.length - 1;
    const next: { b: Branch; dir: string }[] = [];
    for (const { b, dir } of live) {
      const p = joinRel(dir, name);
      const st = b.lstat(p);
      if (hasWhiteout(b, dir, name, st)) break; // whited out here: nothing below counts
      if (st) {
        if (last) return true;
        if (!st.isDirectory()) break; // a non-dir hides everything of this name below
        next.push({ b, dir: p });
        if (isOpaque(b, p)) break; // opaque dir: lower ones hidden
      }
    }
    if (next.length === 0) return false;
    live = next;
  }
  return rel.length === 0;
}

/** The changes of `rwDir` over `lowerDirs` (topmost first), sorted by path. */
export function changes(rwDir: string, lowerDirs: readonly string[]): Change[] {
  const rw = new Branch(rwDir, 'ro', [], 0);
  // a lower dir that is gone hides nothing (as before: it is no branch)
  const lowers = lowerDirs.filter((d) => existsSync(d)).map((d, i) => new Branch(d, 'ro', [], i + 1));
  try {
    return collect(rw, lowers);
  } finally {
    for (const b of [rw, ...lowers]) b.close();
  }
}

function collect(rw: Branch, lowers: readonly Branch[]): Change[] {
  const out: Change[] = [];
  const walk = (rel: string, parts: string[], hiddenBelow: boolean): void => {
    for (const name of rw.readdirNames(rel)) {
      if (name.startsWith(WH_META)) continue; // opaque marker, our private state
      const target = whiteoutTarget(name);
      if (target !== undefined) {
        out.push({ kind: 'D', path: '/' + [...parts, target].join('/') });
        continue;
      }
      const p = joinRel(rel, name);
      const st = rw.lstat(p);
      if (!st) continue;
      const r = [...parts, name];
      const path = '/' + r.join('/');
      if (isOverlayWhiteout(st)) {
        out.push({ kind: 'D', path });
        continue;
      }
      const below = !hiddenBelow && visibleBelow(lowers, r);
      out.push({ kind: below ? 'C' : 'A', path });
      if (st.isDirectory()) walk(p, r, hiddenBelow || !below || isOpaque(rw, p));
    }
  };
  walk('', [], false);
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}
