/**
 * One branch: a host directory with a permission. Every access to a branch's files goes through
 * its Branch object, with paths relative to the branch root made of validated names ('' is the
 * root).
 *
 * The root is held as an O_PATH directory fd, opened once when the Branch is made (before a mount
 * goes live), and every access resolves beneath that fd, never by absolute path: a mount over the
 * branch itself (`layerfs mount -o dirs=/srv/x /srv/x`) then cannot lead the daemon into its own
 * mount, and no symlink, `..` or concurrent rename inside the branch can lead it outside:
 * - opens (file data, directories to list), readlink and every change (setxattr and removexattr
 *   too) resolve with openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: the entry itself (open) or its
 *   parent directory, then one *at call on the last name, which never follows a symlink there
 *   (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW; unlinkat/renameat/linkat/mknodat/mkdirat/symlinkat never
 *   follow it); xattr changes go through `/proc/self/fd/<parent fd>/<name>` with the l* calls (a
 *   magic link to the held directory, then one name, not followed: a symlink's own xattrs);
 * - metadata reads, the hottest calls (lstat for lookup and getattr; getxattr/listxattr, which `ls -l`
 *   asks of every file), take one syscall from the root fd: fstatat(root fd, rel,
 *   AT_SYMLINK_NOFOLLOW), l*xattr(`/proc/self/fd/<root fd>/<rel>`). The last name is never followed,
 *   but a symlink swapped in for a directory on the way while the call runs would be: at worst a
 *   racing writer of the branch makes one call report the attributes or xattrs of an entry outside
 *   it, never its data, never a change. Measured: the beneath form (openat2 + the call + close)
 *   costs two more syscalls, about twice the time of a lookup's lstat.
 *
 * Methods throw node:fs or FsError errors (errno-coded); the engine maps them once at its boundary.
 */
import * as fs from 'node:fs';
import { FsError, codeOf, isCode } from '../errors/index.js';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_REMOVEDIR,
  AT_SYMLINK_FOLLOW,
  AT_SYMLINK_NOFOLLOW,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_TMPFILE,
  O_WRONLY,
  RESOLVE_BENEATH,
  RESOLVE_NO_SYMLINKS,
  VALID_OPEN_FLAGS,
} from '../sys/constants.js';
import * as native from '../sys/native.js';
import { getxattrAt, listDirAt, listxattrAt, xattrAtWorks } from '../sys/meta-at.js';
import type { CopyCaps } from './copy-data.js';


/** How every open in a branch resolves: beneath the root fd, through no symlink at all. */
const BENEATH = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;

/** A `/proc/self/fd/N/...` path longer than this goes through the parent directory's fd. */
const PROC_PATH_MAX = 4000;

/** Longest `rel` (UTF-16 units, so under 3,000 bytes) read with the *xattrat calls from the root fd. */
const AT_REL_MAX = 1000;

/** Errors of an xattr read that mean "no such value here" (tryGetxattr answers undefined). */
const XATTR_ABSENT = new Set(['ENODATA', 'EOPNOTSUPP', 'ENOTSUP', 'ENOENT', 'ENOTDIR', 'EPERM', 'ELOOP', 'EXDEV']);

/** `/proc/self/fd/N`: a magic link to the open file N (for node:fs calls that want a path). */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** Split nanoseconds since the epoch into [sec, nsec] with 0 <= nsec < 1e9 (times before 1970 too). */
export function nsParts(ns: bigint): [number, number] {
  let sec = ns / 1000000000n;
  let nsec = ns % 1000000000n;
  if (nsec < 0n) {
    nsec += 1000000000n;
    sec -= 1n;
  }
  return [Number(sec), Number(nsec)];
}

/**
 * Whether linkat(fd, "", ..., AT_EMPTY_PATH) works in this process (tmpfile copy-ups): assumed
 * until it fails with ENOENT, which it does without CAP_DAC_READ_SEARCH on older kernels (6.18
 * allows it for a file the caller opened): then the /proc way for good. Tests turn it off.
 */
export const linkByFd = { ok: true };

/**
 * Whether utimensat(dirfd, "", ..., AT_EMPTY_PATH) works on an O_PATH directory fd (utimensHeld):
 * assumed until refused (EINVAL, or ENOENT where the path way then works: kernels without it);
 * then by path for good. Tests turn it off.
 */
export const utimensByFd = { ok: true };

/** rw: the union writes here; ro: read only; rr: read only, never changes (AUFS `rr`). */
export type BranchPerm = 'rw' | 'ro' | 'rr';

export class Branch {
  /** Absolute path of the branch root, as given (resolved): for display only, never opened again. */
  readonly root: string;
  readonly perm: BranchPerm;
  readonly attrs: readonly string[];
  /** Position in the union, 0 = topmost. */
  readonly index: number;
  /** st_dev of the root. */
  readonly dev: number;
  /** st_ino of the root (with `dev`, the directory's identity: unions of the same layer share its listings). */
  readonly rootIno: number;
  /** AUFS-style branch id (stable for the life of the union). */
  readonly id: number;
  /** The root directory, O_PATH: every access resolves beneath it. */
  readonly fd: number;
  /** `/proc/self/fd/<fd>`. */
  private readonly proc: string;
  private closed = false;

  /**
   * Opens `root` (absolute; a symlink there is followed once, now) as the branch's root fd, or
   * takes `fd` (an O_PATH directory fd, owned from now on) with `root` as its display path.
   */
  constructor(root: string, perm: BranchPerm, attrs: readonly string[], index: number, id = 64 + index, fd?: number) {
    this.root = root;
    this.perm = perm;
    this.attrs = attrs;
    this.index = index;
    this.id = id;
    this.fd = fd ?? fs.openSync(root, O_PATH | O_DIRECTORY);
    this.proc = fdPath(this.fd);
    try {
      const st = fs.fstatSync(this.fd);
      this.dev = st.dev;
      this.rootIno = st.ino;
    } catch (e) {
      fs.closeSync(this.fd);
      throw e;
    }
  }

  /** A directory inside this branch as a branch of its own (the work dir inside the rw branch). */
  sub(rel: string, perm: BranchPerm, index: number): Branch {
    const fd = native.openat2(this.fd, rel, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH);
    return new Branch(this.root + '/' + rel, perm, [], index, 64 + index, fd);
  }

  private readonly caps = new Map<number, CopyCaps>();

  /**
   * What copying a file of source device `srcDev` into this branch was found unable to do
   * (reflink, copy_file_range), remembered for the life of the union so ext4 is not asked again.
   */
  copyCaps(srcDev: number): CopyCaps {
    let c = this.caps.get(srcDev);
    if (c === undefined) this.caps.set(srcDev, (c = {}));
    return c;
  }

  get writable(): boolean {
    return this.perm === 'rw';
  }

  /** Host path of `rel` for display (error messages, introspection); never opened. */
  hostPath(rel: string): string {
    return rel === '' ? this.root : this.root + '/' + rel;
  }

  /**
   * fn(dirfd, name) for `rel`: the root fd and the name for an entry at the top, else its parent
   * directory opened beneath the root (closed after). `name` is '.' for the root itself.
   */
  private at<T>(rel: string, fn: (dirfd: number, name: string) => T): T {
    const i = rel.lastIndexOf('/');
    if (i < 0) return fn(this.fd, rel === '' ? '.' : rel);
    const pfd = native.openat2(this.fd, rel.slice(0, i), O_PATH | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH);
    try {
      return fn(pfd, rel.slice(i + 1));
    } finally {
      fs.closeSync(pfd);
    }
  }

  /**
   * fn(path) with a `/proc/self/fd/...` path of `rel` whose last name is not followed (for the
   * l* xattr calls): through the parent directory's fd, so only that one name is looked up.
   */
  private atPath<T>(rel: string, fn: (path: string) => T): T {
    return this.at(rel, (d, name) => fn(fdPath(d) + '/' + name));
  }

  /**
   * A path for node:fs calls that do not follow the last name (lstat): the root's magic link and
   * `rel` (as fstatat from the root fd; see the class comment), or through the parent's fd when long.
   */
  private statPath<T>(rel: string, fn: (path: string) => T): T {
    if (rel === '') return fn(this.proc + '/.');
    if (this.proc.length + 1 + rel.length < PROC_PATH_MAX / 4 || this.proc.length + 1 + Buffer.byteLength(rel) < PROC_PATH_MAX) {
      return fn(this.proc + '/' + rel);
    }
    return this.atPath(rel, fn);
  }

  /** Release the root fd. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }

  /** lstat, or null when the entry (or a parent) does not exist. */
  lstat(rel: string): fs.Stats | null {
    try {
      // throwIfNoEntry: a missing entry is the common case of a lookup; building an Error is slow.
      return this.statPath(rel, (p) => fs.lstatSync(p, { throwIfNoEntry: false }) ?? null);
    } catch (e) {
      // ENAMETOOLONG: `.wh.` + a 252..255-byte name cannot exist.
      if (isCode(e, 'ENOENT', 'ENOTDIR', 'ENAMETOOLONG')) return null;
      throw e;
    }
  }

  lstatBig(rel: string): fs.BigIntStats | null {
    try {
      return this.statPath(rel, (p) => fs.lstatSync(p, { bigint: true, throwIfNoEntry: false }) ?? null);
    } catch (e) {
      // ENAMETOOLONG: `.wh.` + a 252..255-byte name cannot exist.
      if (isCode(e, 'ENOENT', 'ENOTDIR', 'ENAMETOOLONG')) return null;
      throw e;
    }
  }

  /**
   * lstat into `out` (slots of sys ST) without a Stats object (lookups and getattr, the hottest
   * calls, take no allocation); false when the entry (or a parent) does not exist, as lstat.
   */
  lstatInto(rel: string, out: Float64Array): boolean {
    const r = rel === '' ? native.fstatatInto(this.fd, '', out, AT_EMPTY_PATH) : native.fstatatInto(this.fd, rel, out, AT_SYMLINK_NOFOLLOW);
    if (r === 0) return true;
    const code = codeOf(-r);
    // ENAMETOOLONG: `.wh.` + a 252..255-byte name cannot exist.
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') return false;
    throw new FsError(code, 'lstat', this.hostPath(rel));
  }

  private readonly scratch = new Float64Array(16);

  /** Whether the entry exists (an lstat without any allocation). */
  exists(rel: string): boolean {
    return this.lstatInto(rel, this.scratch);
  }

  /** fn(path of the directory `rel`, opened beneath the root) for node:fs calls that list it. */
  private withDir<T>(rel: string, fn: (path: string) => T): T {
    if (rel === '') return fn(this.proc);
    const fd = native.openat2(this.fd, rel, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH);
    try {
      return fn(fdPath(fd));
    } finally {
      fs.closeSync(fd);
    }
  }

  readdir(rel: string): fs.Dirent[] {
    return this.withDir(rel, (p) => fs.readdirSync(p, { withFileTypes: true }));
  }

  /**
   * The entries of directory `rel` (opened beneath the root, as readdir) as name -> d_type (DT_*,
   * 0 when the filesystem does not say), in directory order: one openat2 and getdents64 on that
   * fd, no Dirent objects (lower-index listings and merged readdir).
   */
  readdirTypes(rel: string): Map<string, number> {
    const r = listDirAt(this.fd, rel, BENEATH);
    if (typeof r === 'number') throw new FsError(codeOf(-r), 'scandir', this.hostPath(rel));
    const [names, types] = r;
    const m = new Map<string, number>();
    for (let i = 0; i < names.length; i++) m.set(names[i]!, types[i]!);
    return m;
  }

  readdirNames(rel: string): string[] {
    return this.withDir(rel, (p) => fs.readdirSync(p));
  }

  readlink(rel: string): string {
    return this.at(rel, (d, n) => native.readlinkat(d, n));
  }

  /** open beneath the root, O_NOFOLLOW added (a symlink as the last name: ELOOP); bits open(2)
   *  would ignore (such as __FMODE_EXEC from a FUSE OPEN) are dropped. */
  open(rel: string, flags: number, mode = 0o666): number {
    return native.openat2(this.fd, rel === '' ? '.' : rel, (flags & VALID_OPEN_FLAGS) | O_NOFOLLOW, mode, BENEATH);
  }

  /** Open a directory for reading (fsync of a dir, fd-based xattrs). */
  openDir(rel: string): number {
    return this.open(rel, O_RDONLY | O_DIRECTORY);
  }

  /** Create an empty regular file exclusively (whiteouts, markers). */
  createEmpty(rel: string, mode: number): void {
    fs.closeSync(this.open(rel, O_WRONLY | O_CREAT | O_EXCL, mode));
  }

  /**
   * An unnamed regular file (O_TMPFILE, open for writing) on the filesystem of directory `dirRel`:
   * it has no name until linkTmpfile gives it one, and vanishes when closed before that (a crash
   * leaves nothing behind). Throws EOPNOTSUPP (or EISDIR, EINVAL on old kernels) where the
   * filesystem cannot.
   */
  openTmpfile(dirRel: string, mode: number): number {
    return native.openat2(this.fd, dirRel === '' ? '.' : dirRel, O_TMPFILE | O_WRONLY, mode, BENEATH);
  }

  /**
   * Give the file of `fd` (from openTmpfile on this filesystem) the name `rel`; EEXIST when the
   * name is taken (nothing is replaced). By the fd itself (AT_EMPTY_PATH) where the kernel lets
   * the process (CAP_DAC_READ_SEARCH; newer kernels also for a file it opened itself), else through
   * its /proc/self/fd link, followed (the way open(2) documents), which walks /proc every time.
   */
  linkTmpfile(fd: number, rel: string): void {
    this.at(rel, (d, n) => this.linkTmpfileIn(fd, d, n));
  }

  /** linkTmpfile into the directory `dirfd` (holdDir) as `name`. */
  linkTmpfileIn(fd: number, dirfd: number, name: string): void {
    if (linkByFd.ok) {
      try {
        native.linkat(fd, '', dirfd, name, AT_EMPTY_PATH);
        return;
      } catch (e) {
        // ENOENT without the capability (linkat(2)); anything else is the link's own error
        if (!isCode(e, 'ENOENT')) throw e;
      }
    }
    native.linkat(AT_FDCWD, fdPath(fd), dirfd, name, AT_SYMLINK_FOLLOW);
    linkByFd.ok = false; // the /proc way took it (where the fd way did not: no capability)
  }

  /**
   * Directory `rel` held open (O_PATH, beneath the root) for several calls on it and in it without
   * walking its path again (a copy-up: its times, the link into it, its times put back). The
   * root's own fd for ''. Give it back with releaseDir.
   */
  holdDir(rel: string): number {
    return rel === '' ? this.fd : native.openat2(this.fd, rel, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH);
  }

  releaseDir(dirfd: number): void {
    if (dirfd !== this.fd) fs.closeSync(dirfd);
  }

  /** utimens of the held directory `dirfd` (holdDir of `rel`): by the fd where the kernel takes an empty path, else by `rel`. */
  utimensHeld(dirfd: number, rel: string, aSec: number, aNsec: number, mSec: number, mNsec: number): void {
    if (utimensByFd.ok) {
      try {
        native.utimensatAt(dirfd, '', aSec, aNsec, mSec, mNsec, AT_EMPTY_PATH);
        return;
      } catch (e) {
        // a kernel without it: EINVAL (unknown flag) or ENOENT (empty path; unless the dir is gone)
        if (!isCode(e, 'EINVAL', 'ENOENT')) throw e;
      }
    }
    this.utimens(rel, aSec, aNsec, mSec, mNsec);
    utimensByFd.ok = false; // the path way took it (where the fd way did not)
  }

  mkdir(rel: string, mode: number): void {
    this.at(rel, (d, n) => native.mkdirat(d, n, mode));
  }

  rmdir(rel: string): void {
    this.at(rel, (d, n) => native.unlinkat(d, n, AT_REMOVEDIR));
  }

  unlink(rel: string): void {
    this.at(rel, (d, n) => native.unlinkat(d, n, 0));
  }

  /** Remove a whole subtree of this branch (our own state only); absent is fine. */
  removeTree(rel: string): void {
    const st = this.lstat(rel);
    if (!st) return;
    if (st.isDirectory()) {
      for (const n of this.readdirNames(rel)) this.removeTree(rel === '' ? n : rel + '/' + n);
      try {
        this.rmdir(rel);
      } catch (e) {
        if (!isCode(e, 'ENOENT')) throw e;
      }
    } else {
      try {
        this.unlink(rel);
      } catch (e) {
        if (!isCode(e, 'ENOENT')) throw e;
      }
    }
  }

  symlink(target: string, rel: string): void {
    this.at(rel, (d, n) => native.symlinkat(target, d, n));
  }

  link(existingRel: string, newRel: string): void {
    this.linkFrom(this, existingRel, newRel);
  }

  /** Hard-link an entry of another branch object on the same filesystem (work dir <-> rw branch). */
  linkFrom(src: Branch, srcRel: string, newRel: string): void {
    src.at(srcRel, (sd, sn) => this.at(newRel, (d, n) => native.linkat(sd, sn, d, n, 0)));
  }

  mknod(rel: string, mode: number, rdev: number): void {
    this.at(rel, (d, n) => native.mknodat(d, n, mode, rdev));
  }

  /** rename within this branch; flags are renameat2 flags. */
  rename(fromRel: string, toRel: string, flags = 0): void {
    this.renameFrom(this, fromRel, toRel, flags);
  }

  /** rename from another branch object on the same filesystem (the work dir) into this one. */
  renameFrom(src: Branch, srcRel: string, toRel: string, flags = 0): void {
    src.at(srcRel, (sd, sn) => this.at(toRel, (d, n) => native.renameat2At(sd, sn, d, n, flags)));
  }

  /** chmod, never following a symlink (a symlink answers EOPNOTSUPP). */
  chmod(rel: string, mode: number): void {
    this.at(rel, (d, n) => native.fchmodat(d, n, mode, AT_SYMLINK_NOFOLLOW));
  }

  lchown(rel: string, uid: number, gid: number): void {
    this.at(rel, (d, n) => native.fchownat(d, n, uid, gid, AT_SYMLINK_NOFOLLOW));
  }

  /** Set atime/mtime to those of `st` (a bigint lstat), to the nanosecond. Never follows symlinks. */
  setTimes(rel: string, st: { atimeNs: bigint; mtimeNs: bigint }): void {
    const [as, an] = nsParts(st.atimeNs);
    const [ms, mn] = nsParts(st.mtimeNs);
    this.utimens(rel, as, an, ms, mn);
  }

  /** utimensat with nanoseconds; nsec may be native.UTIME_NOW / UTIME_OMIT. Never follows symlinks. */
  utimens(rel: string, aSec: number, aNsec: number, mSec: number, mNsec: number): void {
    this.at(rel, (d, n) => native.utimensatAt(d, n, aSec, aNsec, mSec, mNsec, AT_SYMLINK_NOFOLLOW));
  }

  truncate(rel: string, size: number): void {
    const fd = this.open(rel, O_WRONLY);
    try {
      fs.ftruncateSync(fd, size);
    } finally {
      fs.closeSync(fd);
    }
  }

  getxattr(rel: string, name: string): Buffer {
    if (rel.length < AT_REL_MAX && xattrAtWorks()) {
      const r = getxattrAt(this.fd, rel, name);
      if (typeof r === 'number') throw new FsError(codeOf(-r), 'lgetxattr', this.hostPath(rel));
      return r;
    }
    return this.statPath(rel, (p) => native.lgetxattr(p, name));
  }

  /** Value of an xattr or undefined when absent/unsupported. */
  tryGetxattr(rel: string, name: string): Buffer | undefined {
    if (rel.length < AT_REL_MAX && xattrAtWorks()) {
      // from the root fd, as lstatInto: no /proc path built or walked
      const r = getxattrAt(this.fd, rel, name);
      if (typeof r !== 'number') return r;
      const code = codeOf(-r);
      if (XATTR_ABSENT.has(code)) return undefined;
      throw new FsError(code, 'lgetxattr', this.hostPath(rel));
    }
    try {
      // ENODATA (the common miss: lookups ask every lower dir for its opaque xattr) without an exception
      return this.statPath(rel, (p) => native.tryLgetxattr(p, name));
    } catch (e) {
      if (isCode(e, 'ENODATA', 'EOPNOTSUPP', 'ENOTSUP', 'ENOENT', 'ENOTDIR', 'EPERM', 'ELOOP', 'EXDEV')) return undefined;
      throw e;
    }
  }

  setxattr(rel: string, name: string, value: Buffer, flags = 0): void {
    this.atPath(rel, (p) => native.lsetxattr(p, name, value, flags));
  }

  listxattr(rel: string): string[] {
    if (rel.length < AT_REL_MAX && xattrAtWorks()) {
      const r = listxattrAt(this.fd, rel);
      if (typeof r !== 'number') return r;
      const code = codeOf(-r);
      if (code === 'EOPNOTSUPP' || code === 'ENOTSUP') return [];
      throw new FsError(code, 'llistxattr', this.hostPath(rel));
    }
    try {
      return this.statPath(rel, (p) => native.llistxattr(p));
    } catch (e) {
      if (isCode(e, 'EOPNOTSUPP', 'ENOTSUP')) return [];
      throw e;
    }
  }

  /** The entry's xattr names, with no exception: null when the host cannot say (any error). */
  tryListxattr(rel: string): string[] | null {
    if (rel.length < AT_REL_MAX && xattrAtWorks()) {
      const r = listxattrAt(this.fd, rel);
      return typeof r === 'number' ? null : r;
    }
    try {
      const names = this.statPath(rel, (p) => native.tryLlistxattr(p));
      return typeof names === 'number' ? null : names;
    } catch {
      return null;
    }
  }

  removexattr(rel: string, name: string): void {
    this.atPath(rel, (p) => native.lremovexattr(p, name));
  }

  statfs(): fs.StatsFs {
    return fs.statfsSync(this.proc + '/.');
  }

  /** Whether the host lets us write in the branch root (AUFS default permission). */
  rootWritable(): boolean {
    return isWritableDir(this.proc + '/.');
  }
}

/** access(W_OK) on a directory, false on any error. */
export function isWritableDir(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Join a relative path and a name ('' is the root). */
export function joinRel(dirRel: string, name: string): string {
  return dirRel === '' ? name : dirRel + '/' + name;
}

/** Parent rel of a rel path. */
export function parentRel(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

