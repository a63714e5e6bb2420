/**
 * One branch: a host directory with a permission. Every access to a branch's files goes through
 * its Branch object, with paths relative to the branch root made of validated names ('' is the
 * root). Callers only descend into entries they lstat'ed as directories, and files are opened with
 * O_NOFOLLOW, so no symlink inside a branch leads outside it.
 *
 * Methods throw node:fs or FsError errors (errno-coded); the engine maps them once at its boundary.
 */
import * as fs from 'node:fs';
import { FsError, codeOf, isCode } from '../errors/index.js';
import * as native from '../sys/native.js';
import type { CopyCaps } from './copy-data.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = fs.constants;

/** Host paths at least this long (bytes) go through a directory fd (PATH_MAX is 4096). */
const DEEP = 4000;

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

/** rw: the union writes here; ro: read only; rr: read only, never changes (AUFS `rr`). */
export type BranchPerm = 'rw' | 'ro' | 'rr';

export class Branch {
  /** Absolute path of the branch root, as given (resolved). */
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

  constructor(root: string, perm: BranchPerm, attrs: readonly string[], index: number, id = 64 + index) {
    this.root = root;
    this.perm = perm;
    this.attrs = attrs;
    this.index = index;
    this.id = id;
    const st = fs.statSync(root);
    this.dev = st.dev;
    this.rootIno = st.ino;
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

  /**
   * Host path of `rel` (relative path made of validated names). A union path may be up to
   * PATH_MAX long, so root + rel may not fit: then a directory fd of a prefix is opened (cached)
   * and the path goes through `/proc/self/fd/N/`, openat-style.
   */
  abs(rel: string): string {
    const p = rel === '' ? this.root : this.root + '/' + rel;
    if (p.length < DEEP / 4 || Buffer.byteLength(p) < DEEP) return p;
    return this.deepPath(rel);
  }

  private readonly dirFds = new Map<string, number>();

  private deepPath(rel: string): string {
    const parts = rel.split('/');
    let base = this.root;
    let i = 0;
    for (;;) {
      const rest = parts.slice(i).join('/');
      const cand = base + '/' + rest;
      if (Buffer.byteLength(cand) < DEEP) return cand;
      let j = i;
      let s = base;
      while (j < parts.length - 1 && Buffer.byteLength(s + '/' + parts[j]!) < DEEP - 64) s += '/' + parts[j++]!;
      if (j === i) throw new FsError('ENAMETOOLONG', 'open', rel);
      const key = parts.slice(0, j).join('/');
      let fd = this.dirFds.get(key);
      if (fd === undefined) {
        if (this.dirFds.size >= 64) this.dropDirFds();
        fd = fs.openSync(s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        this.dirFds.set(key, fd);
      }
      base = `/proc/self/fd/${fd}`;
      i = j;
    }
  }

  /** Close the cached deep-directory fds (after anything that moves or removes directories). */
  dropDirFds(): void {
    if (this.dirFds.size === 0) return;
    for (const fd of this.dirFds.values()) fs.closeSync(fd);
    this.dirFds.clear();
  }

  /** Release host resources (cached fds). */
  close(): void {
    this.dropDirFds();
  }

  /** lstat, or null when the entry (or a parent) does not exist. */
  lstat(rel: string): fs.Stats | null {
    try {
      // throwIfNoEntry: a missing entry is the common case of a lookup; building an Error is slow.
      return fs.lstatSync(this.abs(rel), { throwIfNoEntry: false }) ?? null;
    } catch (e) {
      // ENAMETOOLONG: `.wh.` + a 252..255-byte name cannot exist.
      if (isCode(e, 'ENOENT', 'ENOTDIR', 'ENAMETOOLONG')) return null;
      throw e;
    }
  }

  lstatBig(rel: string): fs.BigIntStats | null {
    try {
      return fs.lstatSync(this.abs(rel), { bigint: true, throwIfNoEntry: false }) ?? null;
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
    const abs = this.abs(rel);
    const r = native.lstatInto(abs, out);
    if (r === 0) return true;
    const code = codeOf(-r);
    // ENAMETOOLONG: `.wh.` + a 252..255-byte name cannot exist.
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') return false;
    throw new FsError(code, 'lstat', abs);
  }

  exists(rel: string): boolean {
    return this.lstat(rel) !== null;
  }

  readdir(rel: string): fs.Dirent[] {
    return fs.readdirSync(this.abs(rel), { withFileTypes: true });
  }

  readdirNames(rel: string): string[] {
    return fs.readdirSync(this.abs(rel));
  }

  readlink(rel: string): string {
    return fs.readlinkSync(this.abs(rel));
  }

  /** open(2) with O_NOFOLLOW added. */
  open(rel: string, flags: number, mode = 0o666): number {
    return fs.openSync(this.abs(rel), flags | O_NOFOLLOW, mode);
  }

  /** Open a directory for reading (fsync of a dir, fd-based xattrs). */
  openDir(rel: string): number {
    return fs.openSync(this.abs(rel), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  }

  /** Create an empty regular file exclusively (whiteouts, markers). */
  createEmpty(rel: string, mode: number): void {
    fs.closeSync(fs.openSync(this.abs(rel), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode));
  }

  mkdir(rel: string, mode: number): void {
    fs.mkdirSync(this.abs(rel), { mode });
  }

  rmdir(rel: string): void {
    fs.rmdirSync(this.abs(rel));
    this.dropDirFds();
  }

  unlink(rel: string): void {
    fs.unlinkSync(this.abs(rel));
  }

  /** Remove a whole subtree of this branch (our own state only). */
  removeTree(rel: string): void {
    fs.rmSync(this.abs(rel), { recursive: true, force: true });
    this.dropDirFds();
  }

  symlink(target: string, rel: string): void {
    fs.symlinkSync(target, this.abs(rel));
  }

  link(existingRel: string, newRel: string): void {
    fs.linkSync(this.abs(existingRel), this.abs(newRel));
  }

  /** Hard-link an entry of another branch object on the same filesystem (work dir <-> rw branch). */
  linkFrom(src: Branch, srcRel: string, newRel: string): void {
    fs.linkSync(src.abs(srcRel), this.abs(newRel));
  }

  mknod(rel: string, mode: number, rdev: number): void {
    native.mknod(this.abs(rel), mode, rdev);
  }

  /** rename within this branch; flags are renameat2 flags. */
  rename(fromRel: string, toRel: string, flags = 0): void {
    if (flags) native.renameat2(this.abs(fromRel), this.abs(toRel), flags);
    else fs.renameSync(this.abs(fromRel), this.abs(toRel));
    this.dropDirFds();
  }

  /** rename from another branch object on the same filesystem (the work dir) into this one. */
  renameFrom(src: Branch, srcRel: string, toRel: string, flags = 0): void {
    if (flags) native.renameat2(src.abs(srcRel), this.abs(toRel), flags);
    else fs.renameSync(src.abs(srcRel), this.abs(toRel));
    this.dropDirFds();
    src.dropDirFds();
  }

  chmod(rel: string, mode: number): void {
    fs.chmodSync(this.abs(rel), mode);
  }

  lchown(rel: string, uid: number, gid: number): void {
    fs.lchownSync(this.abs(rel), uid, gid);
  }

  /** Set atime/mtime to those of `st` (a bigint lstat), to the nanosecond. Never follows symlinks. */
  setTimes(rel: string, st: { atimeNs: bigint; mtimeNs: bigint }): void {
    const [as, an] = nsParts(st.atimeNs);
    const [ms, mn] = nsParts(st.mtimeNs);
    this.utimens(rel, as, an, ms, mn);
  }

  /** utimensat with nanoseconds; nsec may be native.UTIME_NOW / UTIME_OMIT. Never follows symlinks. */
  utimens(rel: string, aSec: number, aNsec: number, mSec: number, mNsec: number): void {
    native.utimensat(this.abs(rel), aSec, aNsec, mSec, mNsec, true);
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
    return native.lgetxattr(this.abs(rel), name);
  }

  /** Value of an xattr or undefined when absent/unsupported. */
  tryGetxattr(rel: string, name: string): Buffer | undefined {
    try {
      // ENODATA (the common miss: lookups ask every lower dir for its opaque xattr) without an exception
      return native.tryLgetxattr(this.abs(rel), name);
    } catch (e) {
      if (isCode(e, 'ENODATA', 'EOPNOTSUPP', 'ENOTSUP', 'ENOENT', 'EPERM')) return undefined;
      throw e;
    }
  }

  setxattr(rel: string, name: string, value: Buffer, flags = 0): void {
    native.lsetxattr(this.abs(rel), name, value, flags);
  }

  listxattr(rel: string): string[] {
    try {
      return native.llistxattr(this.abs(rel));
    } catch (e) {
      if (isCode(e, 'EOPNOTSUPP', 'ENOTSUP')) return [];
      throw e;
    }
  }

  /** The entry's xattr names, with no exception: null when the host cannot say (any error). */
  tryListxattr(rel: string): string[] | null {
    const names = native.tryLlistxattr(this.abs(rel));
    return typeof names === 'number' ? null : names;
  }

  removexattr(rel: string, name: string): void {
    native.lremovexattr(this.abs(rel), name);
  }

  statfs(): fs.StatsFs {
    return fs.statfsSync(this.root);
  }

  /** Whether the host lets us write in the branch root (AUFS default permission). */
  rootWritable(): boolean {
    return isWritableDir(this.root);
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

