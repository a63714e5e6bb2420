/**
 * The FUSE kernel ABI: opcodes, flag bits and struct sizes/offsets (little-endian, 64-bit aligned).
 * Source of truth: linux/fuse.h (7.38 installed here; the kernel speaks 7.45; we answer 7.40). Fields and flags newer
 * than 7.38 are defined by hand below and marked with the minor version that added them.
 */

export const KERNEL_VERSION = 7;
/** The minor we implement and answer with (the kernel uses min(ours, its own)). */
export const KERNEL_MINOR_VERSION = 40;
export const ROOT_ID = 1;

export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  /** 7.39 */
  STATX: 52,
  /** 7.45 */
  COPY_FILE_RANGE_64: 53,
} as const;

const opNames = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v, k]));
/** Opcode name for traces ("LOOKUP"), or "OP<n>" when unknown. */
export function opName(opcode: number): string {
  return opNames.get(opcode) ?? `OP${opcode}`;
}

/** Requests the kernel never expects an answer to. */
export function isNoReply(opcode: number): boolean {
  return opcode === Op.FORGET || opcode === Op.BATCH_FORGET || opcode === Op.INTERRUPT;
}

/** INIT flags, low 32 bits (fuse_init_in.flags / fuse_init_out.flags). */
export const Init = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  FILE_OPS: 1 << 2,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5,
  DONT_MASK: 1 << 6,
  SPLICE_WRITE: 1 << 7,
  SPLICE_MOVE: 1 << 8,
  SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10,
  HAS_IOCTL_DIR: 1 << 11,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  HANDLE_KILLPRIV: 1 << 19,
  POSIX_ACL: 1 << 20,
  ABORT_ERROR: 1 << 21,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  EXPLICIT_INVAL_DATA: 1 << 25,
  MAP_ALIGNMENT: 1 << 26,
  SUBMOUNTS: 1 << 27,
  HANDLE_KILLPRIV_V2: 1 << 28,
  SETXATTR_EXT: 1 << 29,
  INIT_EXT: 1 << 30,
  INIT_RESERVED: 2 ** 31,
} as const;

/**
 * INIT flags, high 32 bits: bit N here is bit (32 + N) of the 64-bit flags. They travel in
 * fuse_init_in.flags2 / fuse_init_out.flags2 and count only when INIT_EXT is set in the low flags.
 */
export const Init2 = {
  SECURITY_CTX: 1 << 0,
  HAS_INODE_DAX: 1 << 1,
  /** 7.38 */
  CREATE_SUPP_GROUP: 1 << 2,
  HAS_EXPIRE_ONLY: 1 << 3,
  /** 7.39 */
  DIRECT_IO_ALLOW_MMAP: 1 << 4,
  /** 7.40 */
  PASSTHROUGH: 1 << 5,
  /** 7.40 */
  NO_EXPORT_SUPPORT: 1 << 6,
  /** 7.40 */
  HAS_RESEND: 1 << 7,
  /** 7.41 */
  ALLOW_IDMAP: 1 << 8,
  /** 7.42 */
  OVER_IO_URING: 1 << 9,
  /** 7.43 */
  REQUEST_TIMEOUT: 1 << 10,
} as const;

/** fuse_setattr_in.valid bits. */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

/** fuse_open_out.open_flags bits. */
export const Fopen = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
  PARALLEL_DIRECT_WRITES: 1 << 6,
  /** 7.40: reads and writes go straight to the backing file named by backing_id. */
  PASSTHROUGH: 1 << 7,
} as const;

/**
 * ioctls on /dev/fuse (7.40): register an open file as a backing file (returns its id) and drop
 * that registration. _IOW(229, 1, struct fuse_backing_map{ i32 fd; u32 flags; u64 padding }) and
 * _IOW(229, 2, u32).
 */
export const FUSE_DEV_IOC_BACKING_OPEN = 0x4010e501;
export const FUSE_DEV_IOC_BACKING_CLOSE = 0x4004e502;

export const GETATTR_FH = 1 << 0;
export const FSYNC_FDATASYNC = 1 << 0;
export const RELEASE_FLUSH = 1 << 0;

export const NotifyCode = {
  POLL: 1,
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  STORE: 4,
  RETRIEVE: 5,
  DELETE: 6,
  RESEND: 7,
  /** Protocol 7.44 (Linux 6.16): every cached dentry is revalidated (LOOKUP) on its next use. */
  INC_EPOCH: 8,
} as const;

/** Struct sizes in bytes. */
export const Size = {
  IN_HEADER: 40,
  OUT_HEADER: 16,
  ATTR: 88,
  ENTRY_OUT: 128,
  ATTR_OUT: 104,
  KSTATFS: 80,
  FORGET_IN: 8,
  FORGET_ONE: 16,
  BATCH_FORGET_IN: 8,
  GETATTR_IN: 16,
  MKNOD_IN: 16,
  MKDIR_IN: 8,
  RENAME_IN: 8,
  RENAME2_IN: 16,
  LINK_IN: 8,
  SETATTR_IN: 88,
  OPEN_IN: 8,
  CREATE_IN: 16,
  OPEN_OUT: 16,
  RELEASE_IN: 24,
  FLUSH_IN: 24,
  READ_IN: 40,
  WRITE_IN: 40,
  WRITE_OUT: 8,
  FSYNC_IN: 16,
  /** without SETXATTR_EXT; 16 with it */
  SETXATTR_IN: 8,
  SETXATTR_IN_EXT: 16,
  GETXATTR_IN: 8,
  GETXATTR_OUT: 8,
  ACCESS_IN: 8,
  INIT_IN: 64,
  INIT_OUT: 64,
  INTERRUPT_IN: 8,
  FALLOCATE_IN: 32,
  LSEEK_IN: 24,
  LSEEK_OUT: 8,
  DIRENT_HEADER: 24,
  NOTIFY_INVAL_INODE_OUT: 24,
  NOTIFY_INVAL_ENTRY_OUT: 16,
} as const;

/** Round up to the 8-byte record alignment used by dirents. */
export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Pages the kernel allows per request at most (FUSE_MAX_MAX_PAGES). */
export const MAX_MAX_PAGES = 256;
export const PAGE_SIZE = 4096;

/**
 * Field offsets, in bytes from the start of each struct, named as in linux/fuse.h (camelCase).
 * Decoders and encoders (requests.ts, codec.ts, dirent-codec.ts) read and write fields only through
 * these names.
 */
export const Off = {
  inHeader: { len: 0, opcode: 4, unique: 8, nodeid: 16, uid: 24, gid: 28, pid: 32, totalExtlen: 36, padding: 38 },
  outHeader: { len: 0, error: 4, unique: 8 },
  forgetIn: { nlookup: 0 },
  forgetOne: { nodeid: 0, nlookup: 8 },
  batchForgetIn: { count: 0, dummy: 4 },
  setattrIn: {
    valid: 0,
    fh: 8,
    size: 16,
    lockOwner: 24,
    atime: 32,
    mtime: 40,
    ctime: 48,
    atimensec: 56,
    mtimensec: 60,
    ctimensec: 64,
    mode: 68,
    uid: 76,
    gid: 80,
  },
  mknodIn: { mode: 0, rdev: 4, umask: 8 },
  mkdirIn: { mode: 0, umask: 4 },
  renameIn: { newdir: 0 },
  rename2In: { newdir: 0, flags: 8 },
  linkIn: { oldnodeid: 0 },
  openIn: { flags: 0, openFlags: 4 },
  createIn: { flags: 0, mode: 4, umask: 8, openFlags: 12 },
  releaseIn: { fh: 0, flags: 8, releaseFlags: 12, lockOwner: 16 },
  flushIn: { fh: 0, lockOwner: 16 },
  /** fuse_read_in and fuse_write_in (read_flags / write_flags at 20). */
  readIn: { fh: 0, offset: 8, size: 16, ioFlags: 20, lockOwner: 24, flags: 32 },
  fsyncIn: { fh: 0, fsyncFlags: 8 },
  /** setxattrFlags only with SETXATTR_EXT. */
  setxattrIn: { size: 0, flags: 4, setxattrFlags: 8 },
  /** fuse_getxattr_in, also the LISTXATTR body. */
  getxattrIn: { size: 0, padding: 4 },
  accessIn: { mask: 0 },
  fallocateIn: { fh: 0, offset: 8, length: 16, mode: 24 },
  lseekIn: { fh: 0, offset: 8, whence: 16 },
  initIn: { major: 0, minor: 4, maxReadahead: 8, flags: 12, flags2: 16 },
  initOut: {
    major: 0,
    minor: 4,
    maxReadahead: 8,
    flags: 12,
    maxBackground: 16,
    congestionThreshold: 18,
    maxWrite: 20,
    timeGran: 24,
    maxPages: 28,
    mapAlignment: 30,
    flags2: 32,
    maxStackDepth: 36,
  },
  attr: {
    ino: 0,
    size: 8,
    blocks: 16,
    atime: 24,
    mtime: 32,
    ctime: 40,
    atimensec: 48,
    mtimensec: 52,
    ctimensec: 56,
    mode: 60,
    nlink: 64,
    uid: 68,
    gid: 72,
    rdev: 76,
    blksize: 80,
    flags: 84,
  },
  entryOut: { nodeid: 0, generation: 8, entryValid: 16, attrValid: 24, entryValidNsec: 32, attrValidNsec: 36, attr: 40 },
  attrOut: { attrValid: 0, attrValidNsec: 8, dummy: 12, attr: 16 },
  openOut: { fh: 0, openFlags: 8, backingId: 12 },
  /** fuse_write_out, fuse_getxattr_out: a u32 and padding. */
  u32Out: { value: 0, padding: 4 },
  lseekOut: { offset: 0 },
  kstatfs: { blocks: 0, bfree: 8, bavail: 16, files: 24, ffree: 32, bsize: 40, namelen: 44, frsize: 48 },
  dirent: { ino: 0, off: 8, namelen: 16, type: 20, name: 24 },
  /** fuse_direntplus: an entry_out, then the dirent. */
  direntplus: { entryOut: 0, dirent: 128 },
  notifyInvalInodeOut: { ino: 0, off: 8, len: 16 },
  notifyInvalEntryOut: { parent: 0, namelen: 8, flags: 12 },
} as const;
