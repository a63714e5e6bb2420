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
 * `trusted.overlay.opaque=y`).
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { lgetxattr } from '../sys/index.js';

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  kind: ChangeKind;
  /** Union-absolute path, `/a/b`. */
  path: string;
}

const WH = '.wh.';
const PRIVATE = '.wh..wh.';
const OPAQUE = '.wh..wh..opq';

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/** Does directory `dir` hide the branches below it (either opaque format)? */
function isOpaque(dir: string): boolean {
  if (lstatOrNull(join(dir, OPAQUE))) return true;
  try {
    return lgetxattr(dir, 'trusted.overlay.opaque').toString() === 'y';
  } catch {
    return false; // ENODATA, or xattrs unsupported/unreadable
  }
}

function isOverlayWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/**
 * Is relative path `rel` (components) visible in the stack of lower dirs (topmost first)?
 * Honours whiteouts (both formats) and AUFS opaque markers between the lower branches.
 */
function visibleBelow(lowerDirs: readonly string[], rel: readonly string[]): boolean {
  // For each component, find the branches where the parent chain is still visible.
  let live = lowerDirs.map((d) => ({ dir: d }));
  for (let i = 0; i < rel.length; i++) {
    const name = rel[i]!;
    const last = i === rel.length - 1;
    const next: { dir: string }[] = [];
    for (const b of live) {
      if (lstatOrNull(join(b.dir, WH + name))) break; // whited out here: nothing below counts
      const st = lstatOrNull(join(b.dir, name));
      if (st) {
        if (isOverlayWhiteout(st)) break;
        if (last) return true;
        if (!st.isDirectory()) break; // a non-dir hides everything of this name below
        next.push({ dir: join(b.dir, name) });
        if (isOpaque(join(b.dir, name))) break; // opaque dir: lower ones hidden
      }
    }
    if (next.length === 0) return false;
    live = next;
  }
  return rel.length === 0;
}

/** The changes of `rwDir` over `lowerDirs` (topmost first), sorted by path. */
export function changes(rwDir: string, lowerDirs: readonly string[]): Change[] {
  const out: Change[] = [];
  const walk = (dir: string, rel: string[], hiddenBelow: boolean): void => {
    const names = readdirSync(dir);
    for (const name of names) {
      if (name.startsWith(PRIVATE)) continue;
      if (name.startsWith(WH)) {
        out.push({ kind: 'D', path: '/' + [...rel, name.slice(WH.length)].join('/') });
        continue;
      }
      const p = join(dir, name);
      const st = lstatOrNull(p);
      if (!st) continue;
      const r = [...rel, name];
      const path = '/' + r.join('/');
      if (isOverlayWhiteout(st)) {
        out.push({ kind: 'D', path });
        continue;
      }
      const below = !hiddenBelow && visibleBelow(lowerDirs, r);
      out.push({ kind: below ? 'C' : 'A', path });
      if (st.isDirectory()) {
        const opaque = isOpaque(p);
        walk(p, r, hiddenBelow || !below || opaque);
      }
    }
  };
  walk(rwDir, [], false);
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

/** `docker diff` lines: `A /path`. */
export function formatChanges(list: readonly Change[]): string {
  return list.map((c) => `${c.kind} ${c.path}\n`).join('');
}
