/**
 * Applying a checked branch plan (engine/branch-changes.ts) to a live union: all or nothing.
 * First what can fail without touching the union: a branch that leaves (or turns read-only) while
 * files are open on it answers EBUSY, as AUFS does; the new branches are opened (from the O_PATH
 * fds the caller opened, or by path for in-process use) and permission changes get their Branch
 * objects. Then the one switch, Core.setBranches; then the branches that left are closed.
 */
import { branchWithPerm, checkDir, fdops, newBranch, type Branch } from '../branch/index.js';
import { FsError, isCode } from '../errors/index.js';
import { parseBranchChanges, planBranchChanges, type BranchPlan, type ResolvedChange } from './branch-changes.js';
import type { Core } from './core.js';
import { O_ACCMODE, O_RDONLY } from '../sys/constants.js';

export interface AppliedBranch {
  path: string;
  perm: string;
  id: number;
}

/**
 * Change the branches of `core` as `changes` say (all or nothing). `reals`: realpath of each current
 * branch root (default: asked here, by path); `fds`: realpath of a new branch -> an O_PATH fd of it
 * its caller opened (owned from now on, closed on failure too).
 */
export function changeBranches(
  core: Core,
  changes: readonly ResolvedChange[],
  o: { reals?: readonly string[]; fds?: ReadonlyMap<string, number> } = {},
): AppliedBranch[] {
  let plan: BranchPlan;
  try {
    const reals = o.reals ?? core.branches.map((b) => checkDir(b.root, 'branch').real);
    const current = core.branches.map((b, i) => ({ path: b.root, perm: b.perm, attrs: b.attrs, real: reals[i]! }));
    plan = planBranchChanges(current, changes, core.options.extra.ro === undefined);
  } catch (e) {
    for (const fd of o.fds?.values() ?? []) closeQuietly(fd);
    throw e;
  }
  return applyBranchPlan(core, plan, o.fds);
}

/** In-process form: a remount option string (`add:1:/x,del:/y`), paths relative to `cwd`. */
export function changeBranchesByOptions(core: Core, options: string, cwd: string): AppliedBranch[] {
  const { changes } = parseBranchChanges(options, cwd);
  const resolved: ResolvedChange[] = changes.map((c) => ({ ...c, real: realDir(c.path) }));
  return changeBranches(core, resolved);
}

/** realpath of a directory, null when missing or not a directory. */
export function realDir(p: string): string | null {
  try {
    return checkDir(p, 'branch').real;
  } catch (e) {
    if (e instanceof FsError && isCode(e, 'ENOENT', 'ENOTDIR')) return null;
    throw e;
  }
}

/**
 * Switch `core` to `plan`. `fds`: realpath of a new branch -> its O_PATH directory fd (owned from
 * now on: closed on failure too); absent: the branch is opened by its path here.
 */
export function applyBranchPlan(core: Core, plan: BranchPlan, fds: ReadonlyMap<string, number> = new Map()): AppliedBranch[] {
  const unused = new Set(fds.values());
  const made: Branch[] = [];
  let old: Branch[];
  let next: Branch[];
  try {
    const leaving = new Set(plan.removed);
    const toRo = new Set(plan.branches.filter((b) => b.from >= 0 && core.branches[b.from]!.writable && b.perm !== 'rw').map((b) => b.from));
    const busy = new Map<number, number>();
    for (const fh of core.openFiles) {
      if (fh.closed) continue;
      const writing = (fh.flags & O_ACCMODE) !== O_RDONLY;
      if (leaving.has(fh.branch) || (writing && toRo.has(fh.branch))) busy.set(fh.branch, (busy.get(fh.branch) ?? 0) + 1);
    }
    for (const [bi, n] of busy) {
      const what = leaving.has(bi) ? 'open' : 'open for writing';
      throw new FsError('EBUSY', 'remount', undefined, undefined, `branch ${bi} (${core.branches[bi]!.root}) has ${n} file${n === 1 ? '' : 's'} ${what} through the mount`);
    }
    let id = core.nextBranchId();
    next = plan.branches.map((p, i) => {
      if (p.from >= 0) {
        const b = core.branches[p.from]!;
        if (b.perm === p.perm && b.attrs.join('+') === p.attrs.join('+')) return b;
        const nb = branchWithPerm(b, p.perm, p.attrs, i);
        made.push(nb);
        return nb;
      }
      const fd = fds.get(p.real);
      if (fd !== undefined) unused.delete(fd);
      const nb = newBranch(p.path, p.perm, p.attrs, i, id++, fd);
      made.push(nb);
      return nb;
    });
    old = core.branches;
    core.setBranches(
      next,
      plan.branches.map((p) => p.from),
    );
    core.lastBranchId = id - 1;
  } catch (e) {
    for (const b of made) b.close();
    for (const fd of unused) closeQuietly(fd);
    throw e;
  }
  // switched: what left the list goes (branches removed, Branch objects replaced by a permission change)
  for (const b of old) {
    if (next.includes(b)) continue;
    try {
      b.close();
    } catch {
      /* closed already */
    }
  }
  return next.map((b) => ({ path: b.root, perm: [b.perm, ...b.attrs].join('+'), id: b.id }));
}

function closeQuietly(fd: number): void {
  try {
    fdops.close(fd);
  } catch {
    /* closed already */
  }
}
