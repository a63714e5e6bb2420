/**
 * What a union's branch list has become through live branch changes (branch-set.ts), in a form a
 * successor process can build the same union from: the daemon's supervisor keeps it for each mount
 * (src/daemon/supervised.ts), so a daemon that takes a mount over from a dead one serves the list
 * the mount had when it died, not the one it was made with.
 *
 * "The same union" means what a process using the mount can see: the same branches in the same
 * order with the same permissions, the same AUFS branch ids (and ids of branches that left are
 * still not reused), and the same inode numbers. Numbers depend on (inode-table.ts, Core):
 * - the order in which the union met each filesystem (its slot): carried as `filesystems`;
 * - which lower branches the union was MOUNTED with (a directory of the rw branch merging one of
 *   theirs reports the lower one's number; one merging a branch added later keeps its own):
 *   carried as `mountRoots`;
 * - the inode table, which stays where the mount had it (the first writable branch it was made
 *   with, a given xino=, or memory) even when that branch is no longer the rw one or left.
 */
import { XINO_OPEN_FLAGS, type Branch } from '../branch/index.js';
import { FsError } from '../errors/index.js';
import { InodeTable } from './inode-table.js';
import type { BranchPerm, BranchState, UnionOptions } from './types.js';

export type { BranchState };

/** What BranchState needs of the engine's Core (kept structural: Core imports this file). */
interface CoreView {
  readonly branches: readonly Branch[];
  readonly lastBranchId: number;
  readonly xino: InodeTable;
  readonly mountBranches: ReadonlySet<string>;
}

/** The branch state of a live union. */
export function branchStateOf(core: CoreView): BranchState {
  return {
    branches: core.branches.map((b) => ({ path: b.root, perm: [b.perm, ...b.attrs].join('+'), brid: b.id })),
    lastBrid: Math.max(core.lastBranchId, ...core.branches.map((b) => b.id)),
    filesystems: core.xino.filesystems(),
    mountRoots: [...core.mountBranches],
    xino: core.xino.path,
  };
}

const PERMS = new Set<string>(['rw', 'ro', 'rr']);

function bad(detail: string): FsError {
  return new FsError('EINVAL', 'mount', undefined, undefined, `branch state: ${detail}`);
}

/**
 * The options of a mount (as parsed from the option string it was made with) with its branch list
 * replaced by `s`. A given workdir= stays only while the rw branch is the one the mount was made
 * with (it serves that branch's filesystem only); otherwise the rw branch's hidden work dir serves.
 */
export function withBranchState(o: UnionOptions, s: BranchState): UnionOptions {
  if (!Array.isArray(s.branches) || s.branches.length === 0) throw bad('no branch');
  const branches = s.branches.map((b) => {
    const [perm, ...attrs] = String(b.perm).split('+');
    if (typeof b.path !== 'string' || !PERMS.has(perm!) || !Number.isInteger(b.brid)) throw bad(`bad branch ${JSON.stringify(b)}`);
    return { path: b.path, perm: perm as BranchPerm, attrs, id: b.brid };
  });
  const out: UnionOptions = { ...o, branches, branchState: s };
  const sameRw = branches[0]!.perm === 'rw' && o.branches[0]?.perm === 'rw' && o.branches[0].path === branches[0]!.path;
  if (out.workdir !== undefined && !sameRw) delete out.workdir;
  return out;
}

/**
 * The inode table a union built from `s` uses: the same file, opened beneath the branch that holds
 * it when one of `branches` does (no path resolved), else by its path (a xino= file, or the table
 * of a writable branch that left the union).
 */
export function stateInodeTable(s: BranchState, branches: readonly Branch[], devs: readonly number[], tableName: string): InodeTable {
  const all = [...(s.filesystems ?? []), ...devs];
  if (s.xino === null) return new InodeTable(null, undefined, all);
  const holder = branches.find((b) => b.hostPath(tableName) === s.xino);
  return new InodeTable(s.xino, holder?.open(tableName, XINO_OPEN_FLAGS, 0o600), all);
}
