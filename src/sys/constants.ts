/**
 * Host constants, the one copy: file type and mode bits, open flags, renameat2/setxattr/mount/umount2
 * flags. Pure (loads no addon), so every area may import it. Errno numbers live in src/errors
 * (`errnoOf('ENOENT')`); the FUSE protocol's own numbers in src/fuse/abi.ts.
 */
import { constants as fsc } from 'node:fs';

// ---- st_mode: file type bits (S_IF*) and permission extras, as <sys/stat.h> on Linux ----------------
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;

// ---- open(2) flags: the running platform's values (they differ between architectures) ----------------
/** The access-mode bits of the open flags (O_RDONLY / O_WRONLY / O_RDWR). */
export const O_ACCMODE = 3;
export const O_RDONLY = fsc.O_RDONLY;
export const O_WRONLY = fsc.O_WRONLY;
export const O_RDWR = fsc.O_RDWR;
export const O_CREAT = fsc.O_CREAT;
export const O_EXCL = fsc.O_EXCL;
export const O_NOCTTY = fsc.O_NOCTTY;
export const O_TRUNC = fsc.O_TRUNC;
export const O_APPEND = fsc.O_APPEND;
export const O_NOFOLLOW = fsc.O_NOFOLLOW;
export const O_DIRECTORY = fsc.O_DIRECTORY;
/** open(2) flag node:fs lacks: an unnamed regular file in the given directory (O_DIRECTORY included). */
export const O_TMPFILE = 0o20200000;
/** open(2) flag node:fs lacks: a handle to a place in the tree, not to a file's contents. */
export const O_PATH = 0o10000000;
/**
 * The open(2) flags openat2 accepts (the kernel's VALID_OPEN_FLAGS, x86-64/arm64 values). openat2
 * refuses any other bit with EINVAL where open(2) ignores it; FUSE OPEN passes the opener's flags
 * as they are, __FMODE_EXEC (0o40) set for an execve: without the mask no file of a mount could run.
 */
export const VALID_OPEN_FLAGS = 0o3 | 0o100 | 0o200 | 0o400 | 0o1000 | 0o2000 | 0o4000 | 0o10000 | 0o20000 | 0o40000 | 0o100000 | 0o200000 | 0o400000 | 0o1000000 | 0o2000000 | 0o4000000 | 0o10000000 | 0o20000000;

// ---- *at(2) flags and openat2(2) resolve flags (linux/fcntl.h, linux/openat2.h) ---------------------
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;
export const AT_SYMLINK_FOLLOW = 0x400;
export const AT_FDCWD = -100;
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;

// ---- access(2) mode bits ----------------------------------------------------------------------------
export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;

// ---- renameat2(2) flags -----------------------------------------------------------------------------
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const RENAME_WHITEOUT = 4;

// ---- setxattr(2) flags ------------------------------------------------------------------------------
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

// ---- mount(2) flags ---------------------------------------------------------------------------------
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_SYNCHRONOUS = 16;
export const MS_REMOUNT = 32;
export const MS_DIRSYNC = 128;
export const MS_NOATIME = 1024;
export const MS_NODIRATIME = 2048;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_RELATIME = 1 << 21;
export const MS_STRICTATIME = 1 << 24;

// ---- umount2(2) flags -------------------------------------------------------------------------------
export const MNT_FORCE = 1;
export const MNT_DETACH = 2;
export const MNT_EXPIRE = 4;
export const UMOUNT_NOFOLLOW = 8;
