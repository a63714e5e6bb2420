/**
 * The engine's side of Placement (placement.ts): which writable branches can hold a name, and the
 * fall-over loop. With one writable branch every answer is branch 0 and nothing here costs a syscall.
 *
 * Whiteouts with several writable branches (AUFS's rules, which layerfs follows):
 * - unlink/rmdir/rename of a name whose topmost copy is on writable branch K remove it there, and when
 *   the name also exists on any branch below K (writable or not) the whiteout is made on K, next to
 *   where the name was: copies on lower writable branches stay, hidden (AUFS does not delete them).
 * - removing a name held only by read-only branches makes the whiteout where a copy-up of it would
 *   go (the cpup= policy), its parent directory copied there first.
 * - a new name whose whiteout is on writable branch W can only go to W or above (below W it would
 *   stay hidden); on W the whiteout is removed, above W it is left (it still hides what is below).
 * - a name is never placed on a branch its parent directory's lookup does not reach (below an
 *   opaque directory, a whiteout of a parent, or a non-directory in the way).
 */
import { FsError, isCode } from '../errors/index.js';
import type { Core } from './core.js';
import type { UnionNode } from './node.js';
import { hasWhiteout, isOpaque } from './whiteout.js';

/** Errors that make a writable branch give way to the next one (when the policy falls over). */
export function isSpaceError(e: unknown): boolean {
  return isCode(e, 'ENOSPC', 'EDQUOT', 'EROFS');
}

/**
 * Whether an entry NAME (null: the directory itself needs only to be reachable) made on writable
 * branch `t` under `parent` would be seen through the union.
 */
export function canPlace(core: Core, parent: UnionNode, name: string | null, t: number): boolean {
  if (!core.placement.several) return true;
  if (name !== null) {
    for (const j of core.placement.writable) {
      if (j >= t) break;
      if (hasWhiteout(core.branches[j]!, parent.rel, name)) return false;
    }
  }
  return reaches(core, parent, t);
}

/** Whether directory `d`'s lookup passes branch `t` (so an entry of `d` made there is visible). */
function reaches(core: Core, d: UnionNode, t: number): boolean {
  const layers = d.layers;
  const last = layers[layers.length - 1]!;
  // d exists on `last`: its lookup passed every branch down to there
  if (t <= last) return true;
  const p = d.parent;
  if (!p) return false; // an opaque root stops at `last`
  if (isOpaque(core.branches[last]!, d.rel, core.markers.opaque)) return false;
  for (let j = last + 1; j <= t; j++) {
    const b = core.branches[j]!;
    const st = b.lstat(d.rel);
    if (st && !st.isDirectory()) return false;
    if (hasWhiteout(b, p.rel, d.name, st)) return false;
  }
  return reaches(core, p, t);
}

/**
 * Run `fn` on the first branch of `order`; when the policy falls over, on the next one after
 * ENOSPC/EDQUOT/EROFS (that branch noted full). `fn` cleans up what it made before it throws.
 */
export function placeEach<T>(core: Core, order: readonly number[], fallover: boolean, syscall: string, fn: (t: number) => T): T {
  if (order.length === 0) throw new FsError('EROFS', syscall, undefined, undefined, 'no writable branch can hold this name');
  const tries = fallover ? order : order.slice(0, 1);
  let last: unknown;
  for (const t of tries) {
    try {
      return fn(t);
    } catch (e) {
      if (!isSpaceError(e)) throw e;
      core.placement.noteFull(t);
      last = e;
    }
  }
  throw last;
}

/** create= candidates for a new NAME under `parent`, in policy order, that can hold it. */
export function createTargets(core: Core, parent: UnionNode, name: string): number[] {
  const order = core.placement.createOrder(parent.layers);
  if (!core.placement.several) return order;
  const ok = order.filter((t) => canPlace(core, parent, name, t));
  if (ok.length > 0 || core.placement.fallsOver('create')) return ok;
  // tdp's one answer cannot hold it (a whiteout above it): the lowest writable branch that can
  const all = core.placement.writable.filter((t) => canPlace(core, parent, name, t));
  return all.length ? [all[all.length - 1]!] : [];
}

/** cpup= candidates for node (topmost copy on a read-only branch), in policy order, that can hold it. */
export function cpupTargets(core: Core, node: UnionNode): number[] {
  const parent = node.parent;
  const order = core.placement.cpupOrder(node.layers[0]!, parent ? parent.layers : []);
  if (!core.placement.several || !parent) return order;
  const ok = order.filter((t) => canPlace(core, parent, null, t));
  if (ok.length > 0) return ok;
  const all = core.placement.writable.filter((t) => canPlace(core, parent, null, t));
  return all.length ? [all[all.length - 1]!] : [];
}
