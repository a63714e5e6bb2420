/**
 * The union's rules on parsed options (like overlayfs's params.c checks), asked of the host
 * through the branch layer: every problem is one FsError with a one-line message naming it
 * (these become CLI errors).
 */
import * as path from 'node:path';
import { checkDir } from '../branch/index.js';
import { FsError } from '../errors/index.js';
import type { UnionOptions } from './types.js';

function err(code: string, p: string | undefined, detail: string): FsError {
  return new FsError(code, 'mount', p, undefined, detail);
}

/**
 * The first rw branch that is not among the topmost ones, with the rule it breaks, or null. Several
 * rw branches (AUFS create=/cpup= pooling) are the topmost ones: every lower branch is below every
 * writable one, so a copy-up always goes up (see placement.ts). Asked at mount and by a live change.
 */
export function rwNotTopmost(perms: readonly string[]): { index: number; rule: string } | null {
  const rws = perms.map((p, i) => (p === 'rw' ? i : -1)).filter((i) => i >= 0);
  const k = rws.findIndex((bi, pos) => bi !== pos);
  if (k < 0) return null;
  return { index: rws[k]!, rule: rws.length === 1 ? 'the rw branch must be the topmost' : 'the rw branches must be the topmost ones' };
}

function inside(child: string, parent: string): boolean {
  return child.startsWith(parent.endsWith('/') ? parent : parent + '/');
}

/** Throws on: no branch; missing or non-dir path; same branch twice; nesting; rw not topmost or
 * rw branches not the topmost ones; workdir missing, on another filesystem than the rw branch, or nested with it. */
export function validateOptions(o: UnionOptions): void {
  if (o.branches.length === 0) throw err('EINVAL', undefined, 'no branch specified');
  const reals: string[] = [];
  let upperDev = 0;
  o.branches.forEach((b, i) => {
    const role = `branch ${i}`;
    if (!path.isAbsolute(b.path)) throw err('EINVAL', b.path, `${role} path is not absolute`);
    const d = checkDir(b.path, role);
    const r = d.real;
    for (let j = 0; j < reals.length; j++) {
      const other = reals[j]!;
      if (other === r) throw err('EINVAL', b.path, `branch given twice (same as branch ${j})`);
      if (inside(r, other)) throw err('EINVAL', b.path, `branch ${i} is inside branch ${j} (${o.branches[j]!.path})`);
      if (inside(other, r)) throw err('EINVAL', b.path, `branch ${j} (${o.branches[j]!.path}) is inside branch ${i}`);
    }
    if (i === 0) upperDev = d.dev;
    reals.push(r);
  });
  const misplaced = rwNotTopmost(o.branches.map((b) => b.perm));
  if (misplaced) throw err('EINVAL', o.branches[misplaced.index]!.path, misplaced.rule);
  if (o.workdir !== undefined) {
    if (!o.branches.some((b) => b.perm === 'rw')) throw err('EINVAL', o.workdir, 'workdir given without a writable branch');
    const wd = checkDir(o.workdir, 'workdir');
    const w = wd.real;
    const upper = reals[0]!;
    if (w === upper || inside(w, upper) || inside(upper, w)) {
      throw err('EINVAL', o.workdir, 'workdir and the rw branch must not be inside each other');
    }
    reals.forEach((r, i) => {
      if (i > 0 && (w === r || inside(w, r) || inside(r, w))) throw err('EINVAL', o.workdir, `workdir overlaps branch ${i}`);
    });
    if (wd.dev !== upperDev) {
      throw err('EXDEV', o.workdir, 'workdir is not on the same filesystem as the rw branch');
    }
  }
}
