/**
 * Lookup (like overlayfs namei.c): find which branches hold NAME under a merged directory.
 * Stop rules, top-down over the parent's layers:
 * - a whiteout for NAME in a branch (`.wh.NAME` or char 0/0 NAME) hides it there and below;
 * - the first entry found decides the type; a non-directory stops the search;
 * - a directory merges with directories below until one is opaque (or whited out in its branch);
 * - a non-directory below a directory is hidden.
 * In the branches the union never writes, "is NAME / `.wh.NAME` there" is a map lookup in the
 * directory's listing (lower-index.ts); only the entry found is lstat'ed (and a lower directory
 * merged below another is not even that: its listing says it is a directory).
 */
import type { Branch } from '../branch/index.js';
import { ST, joinRel, statArray } from '../branch/index.js';
import { DT_CHR, DT_DIR, type LowerIndex, type Listing } from './lower-index.js';
import { S_IFDIR, S_IFMT, type UnionNode } from './node.js';
import { OPQ, OVL_OPAQUE, WH, WH_META, isOverlayWhiteout } from '../format/index.js';
import { hasOpaqueXattr, isOpaque } from './whiteout.js';

/** What lookup needs of an lstat. */
export interface EntryStat {
  dev: number;
  ino: number;
  mode: number;
  rdev: number;
  nlink: number;
}

export interface Found {
  type: number;
  layers: number[];
  /** lstat of the topmost real entry. */
  st: EntryStat;
  /**
   * The same lstat, every field (see sys ST), so a LOOKUP can answer the entry's attributes
   * without a second lstat. A shared array: valid only until the next resolveChild call.
   */
  nums: Float64Array;
}

// The engine is synchronous: one array for the topmost entry, one for the entries below it.
const topNums = statArray();
const belowNums = statArray();

/** lstat of `rel` in `b` into `out`; null when absent (as Branch.lstat). */
function lstatEntry(b: Branch, rel: string, out: Float64Array): EntryStat | null {
  if (!b.lstatInto(rel, out)) return null;
  return { dev: out[ST.dev]!, ino: out[ST.ino]!, mode: out[ST.mode]!, rdev: out[ST.rdev]!, nlink: out[ST.nlink]! };
}

function whitedOut(b: Branch, list: Listing | null, dirRel: string, whName: string): boolean {
  return list ? list.has(whName) : b.exists(joinRel(dirRel, whName));
}

function opaque(b: Branch, bi: number, rel: string, index: LowerIndex | null | undefined, opaqueXattr: string): boolean {
  const list = index ? index.list(bi, rel) : null;
  if (!list) return isOpaque(b, rel, opaqueXattr);
  return list.has(OPQ) || hasOpaqueXattr(b, rel, opaqueXattr);
}

/**
 * What a lookup learned about NAME in the rw branch, so a create right after it need not ask
 * again (whiteout.removeWhiteout): whether NAME itself was lstat'ed there (and was an overlay
 * whiteout), whether `.wh.NAME` was looked for (and found).
 */
export interface RwProbe {
  nameSeen: boolean;
  overlayWh: boolean;
  whSeen: boolean;
  aufsWh: boolean;
}

export function newRwProbe(): RwProbe {
  return { nameSeen: false, overlayWh: false, whSeen: false, aufsWh: false };
}

/** Lower layers under a directory from which a lookup reads a merged name map instead of walking them. */
export const MENTION_MIN_LAYERS = 4;

const NO_MENTIONS: Map<string, number> = new Map();

/**
 * For a directory whose layers from position `k0` down are all indexed lower layers (at least
 * MENTION_MIN_LAYERS of them): NAME -> position of the first of them whose listing holds NAME or
 * `.wh.NAME`, built once from the listings (kept on the node until its layers change). A lookup
 * then jumps straight to that layer: the ones above it hold nothing of NAME, so walking them
 * would find nothing either. Null when the layers do not qualify.
 */
function lowerMentions(parent: UnionNode, index: LowerIndex, k0: number): Map<string, number> | null {
  const pl = parent.layers;
  if (parent.mentionsFor === pl && parent.mentionsRel === parent.rel) return parent.mentions === NO_MENTIONS ? null : parent.mentions;
  let m: Map<string, number> | null = null;
  if (pl.length - k0 >= MENTION_MIN_LAYERS) {
    m = new Map();
    for (let k = k0; k < pl.length && m !== null; k++) {
      const list = index.list(pl[k]!, parent.rel);
      if (!list) {
        m = null;
        break;
      }
      for (const n of list.keys()) {
        let key = n;
        if (n.startsWith(WH)) {
          if (n.startsWith(WH_META)) continue;
          key = n.slice(WH.length);
        }
        if (!m.has(key)) m.set(key, k);
      }
    }
  }
  parent.mentions = m ?? NO_MENTIONS;
  parent.mentionsFor = pl;
  parent.mentionsRel = parent.rel;
  return m;
}

export function resolveChild(
  branches: readonly Branch[],
  parent: UnionNode,
  name: string,
  index?: LowerIndex | null,
  probe?: RwProbe,
  opaqueXattr: string = OVL_OPAQUE,
): Found | null {
  let found: Found | null = null;
  const rel = joinRel(parent.rel, name);
  const whName = WH + name; // built once: every layer asks for it
  const pl = parent.layers;
  let jumped = false;
  for (let k = 0; k < pl.length; k++) {
    let bi = pl[k]!;
    let list = index ? index.list(bi, parent.rel) : null;
    if (list && !jumped && found === null && index) {
      // the first lower layer: with many of them, go straight to the first that mentions NAME
      jumped = true;
      const mm = lowerMentions(parent, index, k);
      if (mm) {
        const j = mm.get(name);
        if (j === undefined) break;
        const jl = j !== k ? index.list(pl[j]!, parent.rel) : null;
        if (jl) {
          k = j;
          bi = pl[k]!;
          list = jl;
        }
      }
    }
    const b = branches[bi]!;
    let st: EntryStat | null = null;
    let type = 0;
    const nums = found ? belowNums : topNums;
    if (list) {
      const dt = list.get(name);
      if (dt === DT_DIR && found) type = S_IFDIR;
      else if (dt !== undefined) {
        st = lstatEntry(b, rel, nums);
        if (st) type = st.mode & S_IFMT;
      }
    } else {
      st = lstatEntry(b, rel, nums);
      if (st) type = st.mode & S_IFMT;
      if (probe && bi === 0 && b.writable) {
        probe.nameSeen = true;
        probe.overlayWh = st !== null && isOverlayWhiteout(st);
      }
    }
    if (type !== 0) {
      if (st && isOverlayWhiteout(st)) break;
      if (!found) {
        if (!st) break; // cannot happen: the first entry found is always lstat'ed
        found = { type, layers: [bi], st, nums: topNums };
        if (type !== S_IFDIR) break;
      } else {
        if (type !== S_IFDIR) break;
        found.layers.push(bi);
      }
      if (k === pl.length - 1) break;
      if (opaque(b, bi, rel, index, opaqueXattr) || whitedOut(b, list, parent.rel, whName)) break;
    } else {
      // a whiteout in the parent's last layer hides nothing: no need to look for one
      if (k === pl.length - 1) break;
      const wh = whitedOut(b, list, parent.rel, whName);
      if (probe && bi === 0 && b.writable && !list) {
        probe.whSeen = true;
        probe.aufsWh = wh;
      }
      if (wh) break;
    }
  }
  return found;
}

/** Layers of the union root: every branch until an opaque root. */
export function resolveRoot(branches: readonly Branch[], opaqueXattr: string = OVL_OPAQUE): number[] {
  const out: number[] = [];
  for (let i = 0; i < branches.length; i++) {
    out.push(i);
    if (i < branches.length - 1 && isOpaque(branches[i]!, '', opaqueXattr)) break;
  }
  return out;
}

/** Does any branch below the rw branch (within the parent's layers) hold NAME, whited out or not? */
export function lowerHas(branches: readonly Branch[], parent: UnionNode, name: string, index?: LowerIndex | null): boolean {
  const rel = joinRel(parent.rel, name);
  for (const bi of parent.layers) {
    if (bi === 0 && branches[0]!.writable) continue;
    const list = index ? index.list(bi, parent.rel) : null;
    if (list) {
      const dt = list.get(name);
      if (dt === undefined) continue;
      if (dt !== DT_CHR) return true;
    }
    const st = branches[bi]!.lstat(rel);
    if (st && !isOverlayWhiteout(st)) return true;
  }
  return false;
}
