/**
 * Lookup (like overlayfs namei.c): find which branches hold NAME under a merged directory.
 * Stop rules, top-down over the parent's layers:
 * - a whiteout for NAME in a branch (`.wh.NAME` or char 0/0 NAME) hides it there and below;
 * - the first entry found decides the type; a non-directory stops the search;
 * - a directory merges with directories below until one is opaque (or whited out in its branch);
 * - a non-directory below a directory is hidden.
 */
import type { Stats } from 'node:fs';
import type { Branch } from '../branch/index.js';
import { joinRel } from '../branch/index.js';
import { S_IFDIR, S_IFMT, type UnionNode } from './node.js';
import { WH, isOpaque, isOverlayWhiteout } from './whiteout.js';

export interface Found {
  type: number;
  layers: number[];
  /** lstat of the topmost real entry. */
  st: Stats;
}

export function resolveChild(branches: readonly Branch[], parent: UnionNode, name: string): Found | null {
  let found: Found | null = null;
  const rel = joinRel(parent.rel, name);
  const pl = parent.layers;
  for (let k = 0; k < pl.length; k++) {
    const bi = pl[k]!;
    const b = branches[bi]!;
    const st = b.lstat(rel);
    if (st) {
      if (isOverlayWhiteout(st)) break;
      const type = st.mode & S_IFMT;
      if (!found) {
        found = { type, layers: [bi], st };
        if (type !== S_IFDIR) break;
      } else {
        if (type !== S_IFDIR) break;
        found.layers.push(bi);
      }
      if (k === pl.length - 1) break;
      if (isOpaque(b, rel) || b.lstat(joinRel(parent.rel, WH + name)) !== null) break;
    } else if (b.lstat(joinRel(parent.rel, WH + name)) !== null) {
      break;
    }
  }
  return found;
}

/** Layers of the union root: every branch until an opaque root. */
export function resolveRoot(branches: readonly Branch[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < branches.length; i++) {
    out.push(i);
    if (i < branches.length - 1 && isOpaque(branches[i]!, '')) break;
  }
  return out;
}

/** Does any branch below the rw branch (within the parent's layers) hold NAME, whited out or not? */
export function lowerHas(branches: readonly Branch[], parent: UnionNode, name: string): boolean {
  const rel = joinRel(parent.rel, name);
  for (const bi of parent.layers) {
    if (bi === 0 && branches[0]!.writable) continue;
    const st = branches[bi]!.lstat(rel);
    if (st && !isOverlayWhiteout(st)) return true;
  }
  return false;
}
