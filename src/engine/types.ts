/**
 * The engine's contract: what the FUSE transport, the in-process API, the store and
 * the CLI may rely on. The engine implements it in `union.ts` (class `Union`).
 *
 * Conventions
 * - Every method is synchronous and throws `FsError` (src/errors) with a Linux errno code.
 * - Names are single path components (no `/`, not `.` or `..`); a name over 255 bytes is
 *   ENAMETOOLONG; a name starting with `.wh.` is refused (EINVAL for create-type ops,
 *   ENOENT for lookup).
 * - Nodes are identities, not paths: a `UnionNode` survives rename, hard links and unlink.
 * - Open flags and modes are Linux numbers (`fs.constants.O_*`, `S_IF*`).
 */
import type { BranchPerm } from '../branch/index.js';
import type { CpupKind, CreatePolicy } from './placement-policy.js';

/** Who is asking: owner of new files, subject of permission checks. */
export interface Ctx {
  uid: number;
  gid: number;
  pid?: number;
  /**
   * The caller's umask, for a transport that leaves it to the filesystem (FUSE with POSIX ACLs and
   * DONT_MASK): the engine then applies the parent's default ACL, or this umask where it has none
   * (engine/acl.ts). Absent: the mode of a new file/dir/node is final, the engine uses it as given.
   */
  umask?: number;
}

/** Stat of a merged node. Times are split into seconds and nanoseconds (no precision lost). */
export interface Attr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blocks: number;
  blksize: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
}

/** A time to set: seconds + nanoseconds, or the special values. */
export type TimeSpec = { sec: number; nsec: number } | 'now' | 'omit';

/** What setattr changes; absent fields are left alone. */
export interface SetAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: TimeSpec;
  mtime?: TimeSpec;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namelen: number;
}

/** dirent type codes (DT_*). */
export const DT = {
  UNKNOWN: 0,
  FIFO: 1,
  CHR: 2,
  DIR: 4,
  BLK: 6,
  REG: 8,
  LNK: 10,
  SOCK: 12,
} as const;

export interface DirEntry {
  name: string;
  /** DT_* */
  type: number;
  ino: number;
}

/** renameat2 flags (for callers of the engine's rename). */
export { RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT } from '../sys/constants.js';

/** How whiteouts/opaque markers are written (both are always read). */
export type WhiteoutFormat = 'aufs' | 'overlay';

/** How a rename of a directory that also exists in a lower branch is handled. */
export type DirRenameMode = 'redirect' | 'exdev';

/** A branch's permission (defined with the branch, which applies it). */
export type { BranchPerm };

/** One parsed branch, before validation. */
export interface BranchSpec {
  path: string;
  perm: BranchPerm;
  /** Attributes after `+`, e.g. `wh` in `ro+wh`. */
  attrs: string[];
  /** AUFS branch id; default 64 + position (a union rebuilt from a BranchState keeps its ids). */
  id?: number;
}

/**
 * One id range of fuse-overlayfs's `uidmapping=`/`gidmapping=` triple `A:B:N`: ids A..A+N-1 as
 * stored in the branches are shown through the mount as B..B+N-1 (and ids given to chown/create
 * through the mount map back). containers/storage writes `container:host:count`, so unshifted image
 * layers show as the host ids of a user-namespaced container.
 */
export interface IdRange {
  /** First id as stored in the branches. */
  stored: number;
  /** First id as shown through the mount. */
  shown: number;
  count: number;
}

/** How ownership is translated between the branches and the mount. */
export interface OwnershipOptions {
  uidMap?: IdRange[];
  gidMap?: IdRange[];
  /** Every node shows this owner (squash_to_uid=, squash_to_root); chown through the mount never fails. */
  squashUid?: number;
  squashGid?: number;
  /**
   * xattr_permissions=1|2: owner and mode live in the xattr `security.containers.override_stat` (1)
   * or `user.containers.override_stat` (2) as `uid:gid:mode`, written by chown/chmod instead of the
   * real ones and read over the real ones.
   */
  xattrPermissions?: 1 | 2;
}

/** Options of a union, as parsed by engine/params.ts from a mount option string. */
export interface UnionOptions {
  /** Topmost first. The `rw` branches (any number) must be the topmost ones. */
  branches: BranchSpec[];
  /** With several rw branches: where a new name goes (AUFS create=; default tdp). */
  create?: CreatePolicy;
  /** With several rw branches: where a copy-up goes (AUFS cpup=; default tdp). */
  cpup?: CpupKind;
  /** Work directory for atomic copy-up; default: a private dir inside the rw branch. */
  workdir?: string;
  whiteout: WhiteoutFormat;
  dirRename: DirRenameMode;
  /** Path of the persistent inode table; default: a private file in the rw branch. */
  xino?: string;
  /** Skip the fsync of copied-up data before it gets its real name (overlayfs `volatile`): faster, not crash-safe. */
  volatile?: boolean;
  /** Ownership as shown through the mount (fuse-overlayfs uidmapping=, squash_to_*, xattr_permissions=); absent: as stored. */
  ownership?: OwnershipOptions;
  /** Directories report st_nlink 1 (fuse-overlayfs static_nlink). */
  staticNlink?: boolean;
  /**
   * Write (and read) the private markers as `user.*` xattrs (`user.overlay.opaque`,
   * `user.layerfs.*`) instead of `trusted.*`, as kernel overlayfs's `userxattr` option does: what a
   * normal user or a user namespace's root can write. parseOptions turns it on unless we are real root.
   */
  userxattr?: boolean;
  /** Changes made directly in a branch: ignored (none, default), re-checked on access (reval), watched (notify). See udba.ts. */
  udba?: 'reval' | 'notify';
  /** noacl: the transport must not ask the kernel to enforce and cache POSIX ACLs (as fuse-overlayfs). */
  noacl?: boolean;
  /** Options we do not interpret (rw, dev, suid, allow_other, ...), kept for the transport. */
  extra: Record<string, string | true>;
  /**
   * Not an option: the union is the one a dead process served after live branch changes, rebuilt
   * (engine/branch-state.ts withBranchState; `branches` hold its list).
   */
  branchState?: BranchState;
}

/** A live union's branch list as changed by remounts, for a successor process (engine/branch-state.ts). */
export interface BranchState {
  /** Topmost first: root path, permission with its attributes (`ro+wh`), AUFS branch id. */
  branches: Array<{ path: string; perm: string; brid: number }>;
  /** The highest branch id given so far. */
  lastBrid: number;
  /** st_dev of the filesystems the union met, in inode-number slot order. */
  filesystems: number[];
  /** `dev:ino` of the root directories of the branches the union was mounted with. */
  mountRoots: string[];
  /** The inode table's file; null: in memory. */
  xino: string | null;
}

/** An open file. `fd` is a host fd on the branch file (for passthrough/splice). */
export interface FileHandleLike {
  readonly fd: number;
  readonly flags: number;
}

/** An open directory: a snapshot of the merged entries taken at opendir. */
export interface DirHandleLike {
  readonly entries: readonly DirEntry[];
}

/** A merged node; opaque to callers apart from these fields. */
export interface UnionNodeLike {
  /** Stable inode number (same across copy-up and remount, shared by hard links). */
  readonly ino: number;
}

/** The operations a union serves. Names follow the syscalls/FUSE opcodes. */
export interface UnionOps<N extends UnionNodeLike, F extends FileHandleLike, D extends DirHandleLike> {
  readonly root: N;
  /** ENOENT when absent or whited out, ENOTDIR when parent is not a dir. */
  lookup(parent: N, name: string): N;
  /**
   * lookup + getattr of the result, with one lstat when the node was not cached (the stat the
   * lookup took, in this same call; never an older one). The FUSE LOOKUP/READDIRPLUS path.
   * null when absent or whited out (a negative LOOKUP builds no error); ENOTDIR as lookup.
   */
  lookupAttr(parent: N, name: string): { node: N; attr: Attr } | null;
  /** The transport dropped its last reference; the engine may free caches. */
  forget(node: N): void;
  getattr(node: N): Attr;
  /** `fh` when the kernel gave a handle (ftruncate/futimens on an unlinked file). */
  setattr(node: N, set: SetAttr, ctx: Ctx, fh?: F): Attr;
  readlink(node: N): string;
  mknod(parent: N, name: string, mode: number, rdev: number, ctx: Ctx): N;
  mkdir(parent: N, name: string, mode: number, ctx: Ctx): N;
  symlink(parent: N, name: string, target: string, ctx: Ctx): N;
  link(node: N, newParent: N, newName: string): N;
  unlink(parent: N, name: string): void;
  rmdir(parent: N, name: string): void;
  /** flags: RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT */
  rename(parent: N, name: string, newParent: N, newName: string, flags: number): void;
  /** Opening for write (or O_TRUNC) copies the file up first. */
  open(node: N, flags: number, ctx: Ctx): F;
  create(parent: N, name: string, mode: number, flags: number, ctx: Ctx): { node: N; fh: F };
  /**
   * The attributes of the entry the create-type op just before made (mknod, mkdir, symlink,
   * create), as that op took them after its last change, so a transport's reply needs no getattr;
   * null when it has none or `node` is not that entry. Read once, right after the op (optional).
   */
  takeMadeAttr?(node: N): Attr | null;
  read(fh: F, buf: Buffer, offset: number, length: number, position: number): number;
  write(fh: F, buf: Buffer, offset: number, length: number, position: number): number;
  flush(fh: F): void;
  fsync(fh: F, datasync: boolean): void;
  release(fh: F): void;
  fallocate(fh: F, mode: number, offset: number, length: number): void;
  lseek(fh: F, offset: number, whence: number): number;
  opendir(node: N, ctx: Ctx): D;
  releasedir(dh: D): void;
  statfs(node: N): StatFs;
  /** mask: F_OK/R_OK/W_OK/X_OK. EACCES, or EROFS for W_OK on a read-only union. */
  access(node: N, mask: number, ctx: Ctx): void;
  getxattr(node: N, name: string): Buffer;
  /**
   * Every xattr name `getxattr` would find on the node, from one listing, without an exception;
   * null when the listing cannot tell (no xattr support there, unlinked node): then ask getxattr.
   * Lets a transport answer the absent names `ls -l` asks for without a syscall each.
   */
  xattrNames(node: N): readonly string[] | null;
  /** flags: XATTR_CREATE=1, XATTR_REPLACE=2 */
  setxattr(node: N, name: string, value: Buffer, flags: number): void;
  listxattr(node: N): string[];
  removexattr(node: N, name: string): void;
  /** Flush persistent state (inode table); the union is unusable afterwards. */
  close(): void;
  /**
   * Be told when a node's attributes changed as a side effect of another operation
   * (a directory copied up as a parent turns into a merged dir: its nlink becomes 1), so that a
   * transport caching attributes (FUSE attr timeout) can invalidate them. One listener; null removes it.
   */
  setInvalidator(fn: ((node: N) => void) | null): void;
  /**
   * Whether `node` was replaced by a branch change (its name now leads to another file) and nothing
   * holds it open: a transport answers ESTALE, so the kernel looks the name up again (optional:
   * unions without live branch changes have none).
   */
  isStale?(node: N): boolean;
}
