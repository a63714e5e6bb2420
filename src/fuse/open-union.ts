/**
 * Opening the union a session serves: the mount options the engine and transport share are parsed
 * once here, where the session is made (session-worker.ts), into the engine's Union.
 */
import type { DirHandleLike, FileHandleLike, UnionNodeLike } from '../engine/types.js';
import { Union, parseOptions, withBranchState, type BranchState } from '../engine/index.js';
import { MountError } from './mount-error.js';
import { changeBranches } from '../engine/branch-set.js';
import type { ChangeBranches } from './branch-change.js';
import type { ServedUnion } from './ops.js';

/** A union ready to serve, with what introspection shows about it. */
export interface OpenedUnion {
  union: ServedUnion<UnionNodeLike & object, FileHandleLike, DirHandleLike>;
  branches: { path: string; perm: string }[];
  xiPath: string;
  /** passthrough=on|off (default on): the transport's option, carried with the union's. */
  passthrough?: boolean;
  /** POSIX ACLs may be negotiated (not `noacl`, no ownership translation: posix-acl.ts). */
  posixAcl?: boolean;
  /** The union writes its markers as user.* xattrs (userxattr). */
  userxattr?: boolean;
  /** The engine's union, for udba (reval/notify need its BranchChanges); absent for test unions. */
  engine?: Union;
  /** Lower listings this union read itself (the rest came from unions sharing its layers). */
  indexReads?: () => number;
  /** Change the branches of the live union (remount add:/del:/mod:...; fuse/branch-change.ts). */
  changeBranches?: ChangeBranches;
  /** The branch list as changes left it, for a daemon taking the mount over (engine/branch-state.ts). */
  branchState?: () => BranchState;
  close(): void;
}

/** passthrough=on|off; undefined when absent. */
function passthroughOption(extra: Record<string, unknown>): boolean | undefined {
  if (!('passthrough' in extra)) return undefined;
  const v = extra.passthrough;
  delete extra.passthrough;
  if (v === 'on' || v === true) return true;
  if (v === 'off') return false;
  throw new MountError('EINVAL', `passthrough must be 'on' or 'off', got '${String(v)}'`);
}

/**
 * Build the engine's union from a mount option string (relative paths against `cwd`); `state`:
 * the branch list live changes had left it with in a daemon that died (the supervisor's blob).
 */
export function openUnion(options: string, cwd: string, state?: BranchState): OpenedUnion {
  const given = parseOptions(options, { cwd });
  const passthrough = passthroughOption(given.extra);
  const parsed = state ? withBranchState(given, state) : given;
  // options nobody understands were warned about by the mounting command (option-warnings.ts)
  // and are ignored, as fuse-overlayfs does
  const union = new Union(parsed);
  const info = union.info();
  return {
    union,
    branches: info.branches.map((b) => ({ path: b.path, perm: b.perm })),
    xiPath: info.xinoPath ?? '',
    ...(passthrough !== undefined ? { passthrough } : {}),
    ...(parsed.userxattr ? { userxattr: true } : {}),
    engine: union,
    posixAcl: !parsed.noacl && parsed.ownership === undefined,
    indexReads: () => union.core.lowerIndex.reads,
    changeBranches: (changes, reals, fds) => changeBranches(union.core, changes, { reals, fds }),
    branchState: () => union.branchState(),
    close: () => union.close(),
  };
}
