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
import { S_IFCHR, S_IFDIR, S_IFMT, type UnionNode } from './node.js';
import { OPQ, OVL_OPAQUE, WH, WH_META, isOverlayWhiteout } from '../format/index.js';
import { hasOpaqueXattr, isOpaque } from './whiteout.js';

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

/**
 * Everything one lookup of NAME under a directory learned (as overlayfs's ovl_lookup_data): the
 * node, the branches holding NAME, the lstat of the topmost entry, why the search stopped, and
 * what it saw of NAME in the rw branch (RwProbe). `resolveChild` fills the branch facts; the
 * union's Core sets `node`. One object per lookup, no other state.
 */
export interface LookupData extends RwProbe {
  /** The union's node for NAME; null when the union has no such name. */
  node: UnionNode | null;
  /** Whether this lookup searched the branches (false: the node was cached and current: the facts below are not filled). */
  searched: boolean;
  /** S_IF* type of the topmost entry; 0 when NAME was not found. */
  type: number;
  /** Branch indices holding NAME, topmost first (a directory: merged down to an opaque one). */
  layers: readonly number[];
  /**
   * lstat numbers (sys ST slots) of the topmost entry when this lookup took them, else null. The
   * union's scratch array (LookupScratch.top): read it before the next lookup on the same union.
   */
  nums: Float64Array | null;
  /** The search stopped at a whiteout of NAME (an entry below it is hidden). */
  whiteout: boolean;
  /** The search stopped at an opaque directory (a directory below it is hidden). */
  opaque: boolean;
}

/** The stat arrays a union's lookups fill (the engine is synchronous: one lookup at a time). */
export interface LookupScratch {
  /** lstat of the topmost entry found (LookupData.nums). */
  readonly top: Float64Array;
  /** lstat of the entries below it. */
  readonly below: Float64Array;
}

export function lookupScratch(): LookupScratch {
  return { top: statArray(), below: statArray() };
}

/** A lookup answered from the node cache: nothing searched. */
export function cachedLookup(node: UnionNode): LookupData {
  return {
    node, searched: false, type: node.type, layers: node.layers, nums: null, whiteout: false, opaque: false,
    nameSeen: false, overlayWh: false, whSeen: false, aufsWh: false,
  };
}

const NOT_FOUND: readonly number[] = [];

/** A lookup under a directory that was removed: nothing there, nothing searched. Shared: never written. */
export const GONE: LookupData = {
  node: null, searched: false, type: 0, layers: NOT_FOUND, nums: null, whiteout: false, opaque: false,
  nameSeen: false, overlayWh: false, whSeen: false, aufsWh: false,
};

/** A search that found nothing and learned nothing else (the common miss: no allocation). Shared: never written. */
const NOTHING: LookupData = { ...GONE, searched: true };

/** S_IF* type of `rel` in `b` lstat'ed into `out`; 0 when absent. */
function lstatType(b: Branch, rel: string, out: Float64Array): number {
  return b.lstatInto(rel, out) ? out[ST.mode]! & S_IFMT : 0;
}

/** Whether the numbers are those of an overlay whiteout (char device 0/0). */
function overlayWhiteout(type: number, nums: Float64Array): boolean {
  return type === S_IFCHR && nums[ST.rdev] === 0;
}

function whitedOut(b: Branch, list: Listing | null, dirRel: string, whName: string): boolean {
  return list ? list.has(whName) : b.exists(joinRel(dirRel, whName));
}

function opaque(b: Branch, bi: number, rel: string, index: LowerIndex | null | undefined, opaqueXattr: string): boolean {
  const list = index ? index.list(bi, rel) : null;
  if (!list) return isOpaque(b, rel, opaqueXattr);
  return list.has(OPQ) || hasOpaqueXattr(b, rel, opaqueXattr);
}

/** Lower layers under a directory from which a lookup reads a merged name map instead of walking them. */
export const MENTION_MIN_LAYERS = 4;

/**
 * For a directory whose layers from position `k0` down are all indexed lower layers (at least
 * MENTION_MIN_LAYERS of them): NAME -> position of the first of them whose listing holds NAME or
 * `.wh.NAME`, built once from the listings (kept on the node until its layers change). A lookup
 * then jumps straight to that layer: the ones above it hold nothing of NAME, so walking them
 * would find nothing either. Null when the layers do not qualify.
 */
function lowerMentions(parent: UnionNode, index: LowerIndex, k0: number): Map<string, number> | null {
  const pl = parent.layers;
  const kept = parent.mentions;
  if (kept !== undefined) return kept;
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
  parent.keepMentions(m);
  return m;
}

/**
 * Look NAME up under `parent` in the branches (the stop rules above). Always answers a LookupData
 * (`type` 0: not found) with `node` null for the caller to fill.
 */
export function resolveChild(
  branches: readonly Branch[],
  parent: UnionNode,
  name: string,
  index: LowerIndex | null,
  scratch: LookupScratch,
  opaqueXattr: string = OVL_OPAQUE,
): LookupData {
  const rel = joinRel(parent.rel, name);
  const whName = WH + name; // built once: every layer asks for it
  const pl = parent.layers;
  let found = 0; // S_IF* type of the topmost entry
  let layers: number[] | null = null;
  let whiteout = false;
  let opaqueStop = false;
  let nameSeen = false;
  let overlayWh = false;
  let whSeen = false;
  let aufsWh = false;
  let jumped = false;
  for (let k = 0; k < pl.length; k++) {
    let bi = pl[k]!;
    let list = index ? index.list(bi, parent.rel) : null;
    if (list && !jumped && found === 0 && index) {
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
    // the topmost entry's numbers are the answer's; those of entries below only decide the merge
    const nums = found === 0 ? scratch.top : scratch.below;
    let type = 0;
    let statted = false;
    if (list) {
      const dt = list.get(name);
      if (dt === DT_DIR && found !== 0) type = S_IFDIR;
      else if (dt !== undefined) {
        type = lstatType(b, rel, nums);
        statted = true;
      }
    } else {
      type = lstatType(b, rel, nums);
      statted = true;
      if (bi === 0 && b.writable) {
        nameSeen = true;
        overlayWh = overlayWhiteout(type, nums);
      }
    }
    if (type !== 0) {
      if (statted && overlayWhiteout(type, nums)) {
        whiteout = true;
        break;
      }
      if (found === 0) {
        if (!statted) break; // cannot happen: the first entry found is always lstat'ed
        found = type;
        layers = [bi];
        if (type !== S_IFDIR) break;
      } else {
        if (type !== S_IFDIR) break;
        layers!.push(bi);
      }
      if (k === pl.length - 1) break;
      if (opaque(b, bi, rel, index, opaqueXattr)) {
        opaqueStop = true;
        break;
      }
      if (whitedOut(b, list, parent.rel, whName)) {
        whiteout = true;
        break;
      }
    } else {
      // a whiteout in the parent's last layer hides nothing: no need to look for one
      if (k === pl.length - 1) break;
      const wh = whitedOut(b, list, parent.rel, whName);
      if (bi === 0 && b.writable && !list) {
        whSeen = true;
        aufsWh = wh;
      }
      if (wh) {
        whiteout = true;
        break;
      }
    }
  }
  if (found === 0 && !whiteout && !nameSeen && !whSeen) return NOTHING;
  return {
    node: null, searched: true, type: found, layers: layers ?? NOT_FOUND, nums: found !== 0 ? scratch.top : null,
    whiteout, opaque: opaqueStop, nameSeen, overlayWh, whSeen, aufsWh,
  };
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

/**
 * Does any branch below branch `below` (default: the rw branch 0; within the parent's layers) hold
 * NAME, whited out or not?
 */
export function lowerHas(branches: readonly Branch[], parent: UnionNode, name: string, index?: LowerIndex | null, below?: number): boolean {
  const rel = joinRel(parent.rel, name);
  const skip = below ?? (branches[0]!.writable ? 0 : -1);
  for (const bi of parent.layers) {
    if (bi <= skip) continue;
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
