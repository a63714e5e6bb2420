/**
 * FUSE request bodies: one typed struct per request shape, decoded from the bytes after the
 * 40-byte in header (`at`) up to the end of the body (`end`), and encoded for the requests this
 * process makes itself (the warm-up) and for tests. Pure, like codec.ts; fields are addressed by
 * their names in abi.ts's `Off`. Names that follow a struct are NUL-terminated and end at `end`
 * at the latest.
 */
import { Init, Off, Size } from './abi.js';
import { readCString, readS64, readTwoCStrings, readU64, writeU64 } from './codec.js';

// ---- names ----

/** LOOKUP, UNLINK, RMDIR, REMOVEXATTR: the body is one name. */
export function decodeName(b: Buffer, at: number, end: number): string {
  return readCString(b, at, end).value;
}

/** Write `name` and its NUL at `at`; returns the end. */
export function encodeName(b: Buffer, at: number, name: string): number {
  const n = b.write(name, at, 'utf8');
  b[at + n] = 0;
  return at + n + 1;
}

// ---- INIT ----

export interface InitIn {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  /** High 32 flag bits; 0 unless the kernel set INIT_EXT. */
  flags2: number;
}

const II = Off.initIn;

/** Older kernels send a shorter fuse_init_in: fields past the body read as 0. */
export function decodeInitIn(b: Buffer, at: number, end: number): InitIn {
  const bodyLen = end - at;
  const flags = bodyLen >= II.flags + 4 ? b.readUInt32LE(at + II.flags) : 0;
  const flags2 = bodyLen >= II.flags2 + 4 && (flags & Init.INIT_EXT) !== 0 ? b.readUInt32LE(at + II.flags2) : 0;
  return {
    major: b.readUInt32LE(at + II.major),
    minor: b.readUInt32LE(at + II.minor),
    maxReadahead: bodyLen >= II.maxReadahead + 4 ? b.readUInt32LE(at + II.maxReadahead) : 0,
    flags: flags >>> 0,
    flags2: flags2 >>> 0,
  };
}

export function encodeInitIn(b: Buffer, at: number, i: InitIn): number {
  b.fill(0, at, at + Size.INIT_IN);
  b.writeUInt32LE(i.major, at + II.major);
  b.writeUInt32LE(i.minor, at + II.minor);
  b.writeUInt32LE(i.maxReadahead, at + II.maxReadahead);
  b.writeUInt32LE(i.flags >>> 0, at + II.flags);
  b.writeUInt32LE(i.flags2 >>> 0, at + II.flags2);
  return at + Size.INIT_IN;
}

// ---- FORGET ----

export function decodeForgetIn(b: Buffer, at: number): number {
  return readU64(b, at + Off.forgetIn.nlookup);
}

export function encodeForgetIn(b: Buffer, at: number, nlookup: number): number {
  writeU64(b, at + Off.forgetIn.nlookup, nlookup);
  return at + Size.FORGET_IN;
}

export interface ForgetOne {
  nodeid: number;
  nlookup: number;
}

const FO = Off.forgetOne;

/** BATCH_FORGET body: count, then count fuse_forget_one records. */
export function decodeBatchForget(b: Buffer, at: number, end: number): ForgetOne[] {
  const count = b.readUInt32LE(at + Off.batchForgetIn.count);
  const out: ForgetOne[] = [];
  let p = at + Size.BATCH_FORGET_IN;
  for (let i = 0; i < count && p + Size.FORGET_ONE <= end; i++, p += Size.FORGET_ONE) {
    out.push({ nodeid: readU64(b, p + FO.nodeid), nlookup: readU64(b, p + FO.nlookup) });
  }
  return out;
}

export function encodeBatchForget(b: Buffer, at: number, items: ForgetOne[]): number {
  b.writeUInt32LE(items.length, at + Off.batchForgetIn.count);
  b.writeUInt32LE(0, at + Off.batchForgetIn.dummy);
  let p = at + Size.BATCH_FORGET_IN;
  for (const it of items) {
    writeU64(b, p + FO.nodeid, it.nodeid);
    writeU64(b, p + FO.nlookup, it.nlookup);
    p += Size.FORGET_ONE;
  }
  return p;
}

// ---- SETATTR ----

export interface SetattrIn {
  valid: number;
  fh: number;
  size: number;
  atime: number;
  mtime: number;
  atimensec: number;
  mtimensec: number;
  mode: number;
  uid: number;
  gid: number;
}

const SA = Off.setattrIn;

export function decodeSetattrIn(b: Buffer, at: number): SetattrIn {
  return {
    valid: b.readUInt32LE(at + SA.valid),
    fh: readU64(b, at + SA.fh),
    size: readU64(b, at + SA.size),
    atime: readS64(b, at + SA.atime),
    mtime: readS64(b, at + SA.mtime),
    atimensec: b.readUInt32LE(at + SA.atimensec),
    mtimensec: b.readUInt32LE(at + SA.mtimensec),
    mode: b.readUInt32LE(at + SA.mode),
    uid: b.readUInt32LE(at + SA.uid),
    gid: b.readUInt32LE(at + SA.gid),
  };
}

export function encodeSetattrIn(b: Buffer, at: number, s: SetattrIn): number {
  b.fill(0, at, at + Size.SETATTR_IN);
  b.writeUInt32LE(s.valid, at + SA.valid);
  writeU64(b, at + SA.fh, s.fh);
  writeU64(b, at + SA.size, s.size);
  writeU64(b, at + SA.atime, s.atime);
  writeU64(b, at + SA.mtime, s.mtime);
  b.writeUInt32LE(s.atimensec, at + SA.atimensec);
  b.writeUInt32LE(s.mtimensec, at + SA.mtimensec);
  b.writeUInt32LE(s.mode, at + SA.mode);
  b.writeUInt32LE(s.uid, at + SA.uid);
  b.writeUInt32LE(s.gid, at + SA.gid);
  return at + Size.SETATTR_IN;
}

// ---- making names ----

export interface SymlinkIn {
  name: string;
  target: string;
}

/** SYMLINK: the new name, then the link's target. */
export function decodeSymlinkIn(b: Buffer, at: number, end: number): SymlinkIn {
  const [name, target] = readTwoCStrings(b, at, end);
  return { name, target };
}

export interface MknodIn {
  mode: number;
  rdev: number;
  umask: number;
  name: string;
}

export function decodeMknodIn(b: Buffer, at: number, end: number): MknodIn {
  return {
    mode: b.readUInt32LE(at + Off.mknodIn.mode),
    rdev: b.readUInt32LE(at + Off.mknodIn.rdev),
    umask: b.readUInt32LE(at + Off.mknodIn.umask),
    name: decodeName(b, at + Size.MKNOD_IN, end),
  };
}

export interface MkdirIn {
  mode: number;
  umask: number;
  name: string;
}

export function decodeMkdirIn(b: Buffer, at: number, end: number): MkdirIn {
  return {
    mode: b.readUInt32LE(at + Off.mkdirIn.mode),
    umask: b.readUInt32LE(at + Off.mkdirIn.umask),
    name: decodeName(b, at + Size.MKDIR_IN, end),
  };
}

export interface RenameIn {
  newdir: number;
  /** RENAME_* (0 for RENAME). */
  flags: number;
  oldName: string;
  newName: string;
}

/** RENAME (`v2` false: no flags) and RENAME2: the new parent, flags, then the old and new names. */
export function decodeRenameIn(b: Buffer, at: number, end: number, v2: boolean): RenameIn {
  const [oldName, newName] = readTwoCStrings(b, at + (v2 ? Size.RENAME2_IN : Size.RENAME_IN), end);
  return {
    newdir: readU64(b, at + (v2 ? Off.rename2In.newdir : Off.renameIn.newdir)),
    flags: v2 ? b.readUInt32LE(at + Off.rename2In.flags) : 0,
    oldName,
    newName,
  };
}

export interface LinkIn {
  oldnodeid: number;
  name: string;
}

export function decodeLinkIn(b: Buffer, at: number, end: number): LinkIn {
  return { oldnodeid: readU64(b, at + Off.linkIn.oldnodeid), name: decodeName(b, at + Size.LINK_IN, end) };
}

// ---- files ----

export interface OpenIn {
  flags: number;
  openFlags: number;
}

export function decodeOpenIn(b: Buffer, at: number): OpenIn {
  return { flags: b.readUInt32LE(at + Off.openIn.flags), openFlags: b.readUInt32LE(at + Off.openIn.openFlags) };
}

export function encodeOpenIn(b: Buffer, at: number, o: OpenIn): number {
  b.writeUInt32LE(o.flags >>> 0, at + Off.openIn.flags);
  b.writeUInt32LE(o.openFlags >>> 0, at + Off.openIn.openFlags);
  return at + Size.OPEN_IN;
}

export interface CreateIn {
  flags: number;
  mode: number;
  umask: number;
  openFlags: number;
  name: string;
}

export function decodeCreateIn(b: Buffer, at: number, end: number): CreateIn {
  const C = Off.createIn;
  return {
    flags: b.readUInt32LE(at + C.flags),
    mode: b.readUInt32LE(at + C.mode),
    umask: b.readUInt32LE(at + C.umask),
    openFlags: b.readUInt32LE(at + C.openFlags),
    name: decodeName(b, at + Size.CREATE_IN, end),
  };
}

export interface ReadWriteIn {
  fh: number;
  offset: number;
  size: number;
  flags: number;
}

const RW = Off.readIn;

/** fuse_read_in and fuse_write_in share their layout (READ, WRITE, READDIR, READDIRPLUS). */
export function decodeReadWriteIn(b: Buffer, at: number): ReadWriteIn {
  return {
    fh: readU64(b, at + RW.fh),
    offset: readU64(b, at + RW.offset),
    size: b.readUInt32LE(at + RW.size),
    flags: b.readUInt32LE(at + RW.flags),
  };
}

export function encodeReadWriteIn(b: Buffer, at: number, r: ReadWriteIn): number {
  b.fill(0, at, at + Size.READ_IN);
  writeU64(b, at + RW.fh, r.fh);
  writeU64(b, at + RW.offset, r.offset);
  b.writeUInt32LE(r.size, at + RW.size);
  b.writeUInt32LE(r.flags, at + RW.flags);
  return at + Size.READ_IN;
}

/** Where a WRITE's data starts, after its fuse_write_in. */
export function writeDataAt(at: number): number {
  return at + Size.WRITE_IN;
}

/** RELEASE, RELEASEDIR, FLUSH, FSYNCDIR: the handle (the first field of each body). */
export function decodeFh(b: Buffer, at: number): number {
  return readU64(b, at + Off.releaseIn.fh);
}

/** RELEASE/RELEASEDIR body with just the handle set (warm-up, tests). */
export function encodeReleaseIn(b: Buffer, at: number, fh: number): number {
  b.fill(0, at, at + Size.RELEASE_IN);
  writeU64(b, at + Off.releaseIn.fh, fh);
  return at + Size.RELEASE_IN;
}

export interface FsyncIn {
  fh: number;
  fsyncFlags: number;
}

export function decodeFsyncIn(b: Buffer, at: number): FsyncIn {
  return { fh: readU64(b, at + Off.fsyncIn.fh), fsyncFlags: b.readUInt32LE(at + Off.fsyncIn.fsyncFlags) };
}

export interface FallocateIn {
  fh: number;
  offset: number;
  length: number;
  mode: number;
}

export function decodeFallocateIn(b: Buffer, at: number): FallocateIn {
  const F = Off.fallocateIn;
  return { fh: readU64(b, at + F.fh), offset: readU64(b, at + F.offset), length: readU64(b, at + F.length), mode: b.readUInt32LE(at + F.mode) };
}

export interface LseekIn {
  fh: number;
  offset: number;
  whence: number;
}

export function decodeLseekIn(b: Buffer, at: number): LseekIn {
  const L = Off.lseekIn;
  return { fh: readU64(b, at + L.fh), offset: readU64(b, at + L.offset), whence: b.readUInt32LE(at + L.whence) };
}

// ---- access and xattrs ----

export function decodeAccessIn(b: Buffer, at: number): number {
  return b.readUInt32LE(at + Off.accessIn.mask);
}

export interface SetxattrIn {
  /** XATTR_CREATE / XATTR_REPLACE */
  flags: number;
  name: string;
  value: Buffer;
}

/** `ext`: the kernel agreed to SETXATTR_EXT (a 16-byte fuse_setxattr_in). The value is copied. */
export function decodeSetxattrIn(b: Buffer, at: number, end: number, ext: boolean): SetxattrIn {
  const size = b.readUInt32LE(at + Off.setxattrIn.size);
  const name = readCString(b, at + (ext ? Size.SETXATTR_IN_EXT : Size.SETXATTR_IN), end);
  return {
    flags: b.readUInt32LE(at + Off.setxattrIn.flags),
    name: name.value,
    value: Buffer.from(b.subarray(name.next, name.next + size)),
  };
}

export interface GetxattrIn {
  /** Room for the value; 0 asks for its size. */
  size: number;
  name: string;
}

export function decodeGetxattrIn(b: Buffer, at: number, end: number): GetxattrIn {
  return { size: b.readUInt32LE(at + Off.getxattrIn.size), name: decodeName(b, at + Size.GETXATTR_IN, end) };
}

export function encodeGetxattrIn(b: Buffer, at: number, g: GetxattrIn): number {
  b.writeUInt32LE(g.size >>> 0, at + Off.getxattrIn.size);
  b.writeUInt32LE(0, at + Off.getxattrIn.padding);
  return encodeName(b, at + Size.GETXATTR_IN, g.name);
}

/** LISTXATTR: room for the list (a fuse_getxattr_in without a name); 0 asks for its size. */
export function decodeListxattrIn(b: Buffer, at: number): number {
  return b.readUInt32LE(at + Off.getxattrIn.size);
}
