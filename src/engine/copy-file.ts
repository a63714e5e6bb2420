/**
 * The copy-up of one regular file (copy-up.ts decides what to copy and where): built on the
 * writable branch's filesystem where no one can see it, made durable, then given its name.
 *
 * As overlayfs does (ovl_copy_up_tmpfile), the copy is an unnamed O_TMPFILE file of the work dir's
 * filesystem, linked into place (linkat) once complete: no temporary name is made in the work dir
 * (a create there, a rename out, and on ext4 the fsync of a new name also writes its directory) and
 * a crash half way leaves nothing. Where the filesystem has no O_TMPFILE, or the name is taken
 * (a racing writer of the branch: the old rename replaced it), a named file in the work dir is
 * renamed into place as before. Everything after the open is done on the open fds: data, owner,
 * mode, xattrs (flistxattr/fgetxattr on the source fd), times, and the final stat.
 */
import type { Branch } from '../branch/index.js';
import { ST, fdops, statArray } from '../branch/index.js';
import { isCode } from '../errors/index.js';
import { isPrivateXattr } from '../format/index.js';
import { O_CREAT, O_EXCL, O_RDONLY, O_WRONLY } from '../sys/constants.js';

/** A time to set: [sec, nsec], nsec possibly UTIME_NOW / UTIME_OMIT (futimens). */
export type TimePair = [number, number];

/**
 * Attributes the copy gets instead of the source's: a setattr (chmod, utimes) that caused the
 * copy-up, folded into it (the file shows them from the moment it has its name, as if set after).
 */
export interface CopyAttrs {
  mode?: number;
  atime?: TimePair;
  mtime?: TimePair;
}

/** A regular file to copy (copyFile). */
export interface FileCopy {
  from: Branch;
  fromRel: string;
  /** The work dir (same filesystem as `to`). */
  work: Branch;
  to: Branch;
  toRel: string;
  /** The directory of `toRel` held open in `to` (Branch.holdDir) and the name in it: linked there without walking its path. */
  toDir?: { fd: number; name: string };
  /** The source's lstat (slots in ST, from lstatInto: times exact as seconds + nanoseconds). */
  st: Float64Array;
  /** Copy the contents (else an empty file). */
  data: boolean;
  /**
   * 'fsync': start writing big data out while copying and fsync last, so that once it has its name
   * a crash cannot show it half copied (delayed allocation would otherwise commit the name before
   * the data); 'writeback': only start writing out (the caller syncs the filesystem later); 'none'.
   */
  flush: 'none' | 'fsync' | 'writeback';
  attrs?: CopyAttrs;
  /** With `userxattr`, user.overlay.* are ours too (not copied). */
  userxattr: boolean;
  /** A fresh name in the work dir (the named fallback). */
  tmpName: () => string;
}

/** Tests turn `tmpfile` off to take the named way where O_TMPFILE works. */
export const copyFileWays = { tmpfile: true };

/** Work dirs whose filesystem refused O_TMPFILE (asked once per work dir). */
const noTmpfile = new WeakSet<Branch>();

/** O_TMPFILE refusals that mean "this filesystem cannot". */
const TMPFILE_NEVER = ['EOPNOTSUPP', 'ENOTSUP', 'EISDIR', 'EINVAL', 'ENOSYS'] as const;

/** The placed copy's fstat (copyFile's answer; one array for all: read it before the next copy). */
const copyNums = statArray();

/** Copy the file as `c` says and give it its name; returns the stat of the placed copy (ST slots, scratch). */
export function copyFile(c: FileCopy): Float64Array {
  const sfd = c.data ? c.from.open(c.fromRel, O_RDONLY) : -1;
  try {
    const dfd = openTmpfile(c.work);
    if (dfd >= 0) {
      try {
        build(c, sfd, dfd);
        linkIntoPlace(c, dfd);
        return fdops.fstatInto(dfd, copyNums);
      } finally {
        fdops.close(dfd);
      }
    }
    return named(c, sfd);
  } finally {
    if (sfd >= 0) fdops.close(sfd);
  }
}

/** An O_TMPFILE file in the work dir, or -1 when its filesystem has none. */
function openTmpfile(work: Branch): number {
  if (!copyFileWays.tmpfile || noTmpfile.has(work)) return -1;
  try {
    return work.openTmpfile('', 0o600);
  } catch (e) {
    if (!isCode(e, ...TMPFILE_NEVER)) throw e;
    noTmpfile.add(work);
    return -1;
  }
}

/**
 * Name the finished copy. Taken (EEXIST: only a writer racing us in the branch): a named link in
 * the work dir renamed over it, which is what the named way always did.
 */
function linkIntoPlace(c: FileCopy, dfd: number): void {
  try {
    if (c.toDir) c.to.linkTmpfileIn(dfd, c.toDir.fd, c.toDir.name);
    else c.to.linkTmpfile(dfd, c.toRel);
    return;
  } catch (e) {
    if (!isCode(e, 'EEXIST')) throw e;
  }
  const tmp = c.tmpName();
  c.work.linkTmpfile(dfd, tmp);
  try {
    c.to.renameFrom(c.work, tmp, c.toRel);
  } catch (e) {
    removeQuietly(c.work, tmp);
    throw e;
  }
}

/** The named way: a new file in the work dir, renamed into place. */
function named(c: FileCopy, sfd: number): Float64Array {
  const tmp = c.tmpName();
  const dfd = c.work.open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o600);
  try {
    build(c, sfd, dfd);
    c.to.renameFrom(c.work, tmp, c.toRel);
    return fdops.fstatInto(dfd, copyNums);
  } catch (e) {
    removeQuietly(c.work, tmp);
    throw e;
  } finally {
    fdops.close(dfd);
  }
}

function removeQuietly(work: Branch, tmp: string): void {
  try {
    work.unlink(tmp);
  } catch {
    /* best effort (already renamed, or gone) */
  }
}

/** Data (reflink / copy_file_range / read-write, holes kept), owner, mode, xattrs, ns times; fsync last. */
function build(c: FileCopy, sfd: number, dfd: number): void {
  const { st } = c;
  const size = st[ST.size]!;
  if (sfd >= 0) {
    fdops.copyData(sfd, dfd, size, {
      caps: c.work.copyCaps(st[ST.dev]!),
      sparse: st[ST.blocks]! * 512 < size,
      writeback: c.flush !== 'none',
    });
  }
  fdops.fchown(dfd, st[ST.uid]!, st[ST.gid]!);
  fdops.fchmod(dfd, c.attrs?.mode ?? st[ST.mode]! & 0o7777);
  copyXattrsTo(c, sfd, dfd);
  const [as, an] = c.attrs?.atime ?? [st[ST.atimeSec]!, st[ST.atimeNsec]!];
  const [ms, mn] = c.attrs?.mtime ?? [st[ST.mtimeSec]!, st[ST.mtimeNsec]!];
  fdops.futimens(dfd, as, an, ms, mn);
  if (c.flush === 'fsync') fdops.copySys.fsync(dfd);
}

/**
 * Copy the xattrs `names` (ours left out; with `userxattr` also user.overlay.*: a copied opaque
 * mark would hide a directory's own lower entries) through `get`/`set`. Names gone meanwhile
 * (`get` undefined) and ones the copy cannot take are skipped.
 */
export function copyXattrList(
  names: readonly string[],
  get: (name: string) => Buffer | undefined,
  set: (name: string, value: Buffer) => void,
  userxattr: boolean,
): void {
  for (const name of names) {
    if (isPrivateXattr(name, userxattr)) continue;
    const v = get(name);
    if (v === undefined) continue;
    try {
      set(name, v);
    } catch (e) {
      if (!isCode(e, 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EACCES')) throw e;
    }
  }
}

/**
 * The source's xattrs onto the copy: names listed once, on the source fd when it is open (else by
 * path).
 */
function copyXattrsTo(c: FileCopy, sfd: number, dfd: number): void {
  let names: string[];
  try {
    names = sfd >= 0 ? fdops.flistxattr(sfd) : c.from.listxattr(c.fromRel);
  } catch (e) {
    if (isCode(e, 'EOPNOTSUPP', 'ENOTSUP')) return;
    throw e;
  }
  const get = sfd >= 0 ? (n: string) => tryFgetxattrQuiet(sfd, n) : (n: string) => c.from.tryGetxattr(c.fromRel, n);
  copyXattrList(names, get, (n, v) => fdops.fsetxattr(dfd, n, v, 0), c.userxattr);
}

/** fgetxattr, undefined where Branch.tryGetxattr would answer undefined (absent, refused). */
function tryFgetxattrQuiet(fd: number, name: string): Buffer | undefined {
  try {
    return fdops.tryFgetxattr(fd, name);
  } catch (e) {
    if (isCode(e, 'ENODATA', 'EOPNOTSUPP', 'ENOTSUP', 'EPERM')) return undefined;
    throw e;
  }
}
