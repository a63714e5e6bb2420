/**
 * Metadata reads relative to a directory fd (native/meta-at.c): xattrs of an entry named from a
 * held directory (getxattrat/listxattrat, Linux 6.13) and a directory's names and d_types from one
 * open beneath it (openat2 + getdents64). They answer what a branch otherwise asks through
 * `/proc/self/fd/N/<rel>` (a magic-link walk and a path string per call) and through libuv's
 * scandir (a reopen through /proc, a malloc and a sort per entry).
 *
 * Results, as the rest of the addon: the value, or a NEGATIVE ERRNO (no exception: the caller
 * decides). `xattrAtWorks()` says whether the kernel has the *xattrat calls (checked on first use:
 * an older kernel answers ENOSYS once and the caller keeps its path through /proc).
 */
import { createRequire } from 'node:module';
import { errnoOf } from '../errors/index.js';

interface MetaAtBinding {
  getxattrAt(dirfd: number, path: string, name: string): Buffer | number;
  listxattrAt(dirfd: number, path: string): string[] | number;
  listDirAt(dirfd: number, path: string, resolve: number): [string[], Uint8Array] | number;
}

// the addon native.ts loads (require caches it: one copy)
const b = createRequire(import.meta.url)('../../../build/Release/layerfs.node') as MetaAtBinding;

const ENOSYS = -errnoOf('ENOSYS');

let xattrAt: boolean | undefined;

/** Whether getxattrat/listxattrat work here (false after the kernel answered ENOSYS). */
export function xattrAtWorks(): boolean {
  if (xattrAt === undefined) xattrAt = b.listxattrAt(-100 /* AT_FDCWD */, '/') !== ENOSYS;
  return xattrAt;
}

/** X: the value or -errno. */
export function getxattrAt(dirfd: number, path: string, name: string): Buffer | number {
  return b.getxattrAt(dirfd, path, name);
}

/** listxattrat(dirfd, path, AT_SYMLINK_NOFOLLOW; '' is the directory itself): the names or -errno. */
export function listxattrAt(dirfd: number, path: string): string[] | number {
  return b.listxattrAt(dirfd, path);
}

/**
 * The entries of directory `path` ('' : `dirfd` itself) opened beneath `dirfd` with openat2's
 * `resolve` (O_NOFOLLOW: a symlink there is ELOOP): names and d_types (DT_*, 0 when the filesystem
 * does not say), `.` and `..` left out, in directory order; or -errno.
 */
export function listDirAt(dirfd: number, path: string, resolve: number): [string[], Uint8Array] | number {
  return b.listDirAt(dirfd, path, resolve);
}
