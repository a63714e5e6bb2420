/**
 * Buffer <-> objects for the FUSE protocol: the headers, the field primitives, and the reply
 * encoders (request bodies are decoded in requests.ts). Pure: no I/O, no engine. Encoders write a
 * reply body into a caller's buffer and return the end offset. Fields are addressed by their
 * names in abi.ts's `Off`. 64-bit fields are carried as JS numbers (node ids, handles, offsets and
 * sizes stay below 2^53).
 */
import type { Attr, StatFs } from '../engine/types.js';
import { Init, Init2, KERNEL_MINOR_VERSION, KERNEL_VERSION, MAX_MAX_PAGES, Off, PAGE_SIZE, Size } from './abi.js';
import type { InitIn } from './requests.js';

const TWO32 = 2 ** 32;

/** Read an unsigned 64-bit little-endian field as a number. */
export function readU64(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * TWO32;
}

/** Read a signed 64-bit little-endian field as a number. */
export function readS64(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readInt32LE(off + 4) * TWO32;
}

/** Write a 64-bit little-endian field (negative numbers as two's complement). */
export function writeU64(b: Buffer, off: number, n: number): void {
  if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) {
    b.writeUInt32LE(n % TWO32, off);
    b.writeUInt32LE(Math.floor(n / TWO32), off + 4);
  } else {
    b.writeBigInt64LE(BigInt.asIntN(64, BigInt(Math.trunc(n))), off);
  }
}

export interface InHeader {
  len: number;
  opcode: number;
  unique: number;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
  /** Length of request extensions in bytes (they follow the body). */
  extlen: number;
}

const IH = Off.inHeader;

export function decodeInHeader(b: Buffer): InHeader {
  return {
    len: b.readUInt32LE(IH.len),
    opcode: b.readUInt32LE(IH.opcode),
    unique: readU64(b, IH.unique),
    nodeid: readU64(b, IH.nodeid),
    uid: b.readUInt32LE(IH.uid),
    gid: b.readUInt32LE(IH.gid),
    pid: b.readUInt32LE(IH.pid),
    extlen: b.readUInt16LE(IH.totalExtlen) * 8,
  };
}

export function encodeInHeader(b: Buffer, h: InHeader): void {
  b.writeUInt32LE(h.len, IH.len);
  b.writeUInt32LE(h.opcode, IH.opcode);
  writeU64(b, IH.unique, h.unique);
  writeU64(b, IH.nodeid, h.nodeid);
  b.writeUInt32LE(h.uid, IH.uid);
  b.writeUInt32LE(h.gid, IH.gid);
  b.writeUInt32LE(h.pid, IH.pid);
  b.writeUInt16LE(h.extlen / 8, IH.totalExtlen);
  b.writeUInt16LE(0, IH.padding);
}

const OH = Off.outHeader;

/** fuse_out_header: error is 0 or a negative errno. */
export function encodeOutHeader(b: Buffer, len: number, error: number, unique: number): void {
  b.writeUInt32LE(len, OH.len);
  b.writeInt32LE(error, OH.error);
  writeU64(b, OH.unique, unique);
}

export interface OutHeader {
  len: number;
  error: number;
  unique: number;
}

export function decodeOutHeader(b: Buffer): OutHeader {
  return { len: b.readUInt32LE(OH.len), error: b.readInt32LE(OH.error), unique: readU64(b, OH.unique) };
}

/** A NUL-terminated string at `off`, ending at or before `end`. */
export function readCString(b: Buffer, off: number, end: number): { value: string; next: number } {
  let z = b.indexOf(0, off);
  if (z < 0 || z > end) z = end;
  return { value: b.toString('utf8', off, z), next: z + 1 };
}

/** Two consecutive NUL-terminated strings (RENAME/SYMLINK/SETXATTR names). */
export function readTwoCStrings(b: Buffer, off: number, end: number): [string, string] {
  const a = readCString(b, off, end);
  const c = readCString(b, a.next, end);
  return [a.value, c.value];
}

// ---- INIT ----

export interface InitOut {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  flags2: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
  /** 7.40, with PASSTHROUGH: how deep filesystems may stack on the backing files' (1 = backing files on a plain filesystem). */
  maxStackDepth: number;
}

/** What the filesystem would like; negotiateInit keeps only what the kernel offered. */
export interface InitWanted {
  flags: number;
  flags2: number;
  maxWrite: number;
  maxBackground: number;
  maxStackDepth?: number;
}

/**
 * The INIT reply for what the kernel offered: flags = offered & wanted (flags2 only with INIT_EXT),
 * max_write capped by max_pages when the kernel speaks MAX_PAGES, else by 32 pages.
 * Returns null when the major version is not 7 (the reply is then just our version: the kernel
 * retries or gives up).
 */
export function negotiateInit(offered: InitIn, want: InitWanted): InitOut | null {
  if (offered.major !== KERNEL_VERSION) return null;
  const ext = (offered.flags & Init.INIT_EXT) !== 0;
  let flags = (offered.flags & want.flags) >>> 0;
  const flags2 = ext ? (offered.flags2 & want.flags2) >>> 0 : 0;
  if (flags2 !== 0) flags = (flags | Init.INIT_EXT) >>> 0;
  const hasMaxPages = (flags & Init.MAX_PAGES) !== 0;
  const pageCap = hasMaxPages ? MAX_MAX_PAGES : 32;
  const maxWrite = Math.max(PAGE_SIZE, Math.min(want.maxWrite, pageCap * PAGE_SIZE));
  return {
    major: KERNEL_VERSION,
    minor: Math.min(offered.minor, KERNEL_MINOR_VERSION),
    maxReadahead: offered.maxReadahead,
    flags,
    flags2,
    maxBackground: want.maxBackground,
    congestionThreshold: Math.floor((want.maxBackground * 3) / 4),
    maxWrite,
    timeGran: 1,
    maxPages: hasMaxPages ? Math.ceil(maxWrite / PAGE_SIZE) : 0,
    maxStackDepth: (flags2 & Init2.PASSTHROUGH) !== 0 ? (want.maxStackDepth ?? 1) : 0,
  };
}

const IO = Off.initOut;

export function encodeInitOut(b: Buffer, off: number, o: InitOut): number {
  b.fill(0, off, off + Size.INIT_OUT);
  b.writeUInt32LE(o.major, off + IO.major);
  b.writeUInt32LE(o.minor, off + IO.minor);
  b.writeUInt32LE(o.maxReadahead, off + IO.maxReadahead);
  b.writeUInt32LE(o.flags >>> 0, off + IO.flags);
  b.writeUInt16LE(o.maxBackground, off + IO.maxBackground);
  b.writeUInt16LE(o.congestionThreshold, off + IO.congestionThreshold);
  b.writeUInt32LE(o.maxWrite, off + IO.maxWrite);
  b.writeUInt32LE(o.timeGran, off + IO.timeGran);
  b.writeUInt16LE(o.maxPages, off + IO.maxPages);
  b.writeUInt16LE(0, off + IO.mapAlignment);
  b.writeUInt32LE(o.flags2 >>> 0, off + IO.flags2);
  b.writeUInt32LE(o.maxStackDepth >>> 0, off + IO.maxStackDepth);
  return off + Size.INIT_OUT;
}

/**
 * The INIT reply for a kernel whose major version we do not speak: our major and minor only
 * (the kernel retries with ours, or gives up).
 */
export function encodeInitVersionOnly(b: Buffer, off: number): number {
  b.writeUInt32LE(KERNEL_VERSION, off + IO.major);
  b.writeUInt32LE(0, off + IO.minor);
  return off + IO.maxReadahead;
}

export function decodeInitOut(b: Buffer, off: number): InitOut {
  return {
    major: b.readUInt32LE(off + IO.major),
    minor: b.readUInt32LE(off + IO.minor),
    maxReadahead: b.readUInt32LE(off + IO.maxReadahead),
    flags: b.readUInt32LE(off + IO.flags),
    maxBackground: b.readUInt16LE(off + IO.maxBackground),
    congestionThreshold: b.readUInt16LE(off + IO.congestionThreshold),
    maxWrite: b.readUInt32LE(off + IO.maxWrite),
    timeGran: b.readUInt32LE(off + IO.timeGran),
    maxPages: b.readUInt16LE(off + IO.maxPages),
    flags2: b.readUInt32LE(off + IO.flags2),
    maxStackDepth: b.readUInt32LE(off + IO.maxStackDepth),
  };
}

/** Names of the set flags, for traces (`ASYNC_READ|BIG_WRITES|...`). */
export function initFlagNames(flags: number, flags2: number): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(Init)) if ((flags & v) !== 0 && v !== 0) out.push(k);
  for (const [k, v] of Object.entries(Init2)) if ((flags2 & v) !== 0) out.push(k);
  return out;
}

// ---- attributes and entries ----

const A = Off.attr;

/** fuse_attr (88 bytes). */
export function encodeAttr(b: Buffer, off: number, a: Attr): number {
  writeU64(b, off + A.ino, a.ino);
  writeU64(b, off + A.size, a.size);
  writeU64(b, off + A.blocks, a.blocks);
  writeU64(b, off + A.atime, a.atimeSec);
  writeU64(b, off + A.mtime, a.mtimeSec);
  writeU64(b, off + A.ctime, a.ctimeSec);
  b.writeUInt32LE(a.atimeNsec >>> 0, off + A.atimensec);
  b.writeUInt32LE(a.mtimeNsec >>> 0, off + A.mtimensec);
  b.writeUInt32LE(a.ctimeNsec >>> 0, off + A.ctimensec);
  b.writeUInt32LE(a.mode >>> 0, off + A.mode);
  b.writeUInt32LE(a.nlink >>> 0, off + A.nlink);
  b.writeUInt32LE(a.uid >>> 0, off + A.uid);
  b.writeUInt32LE(a.gid >>> 0, off + A.gid);
  b.writeUInt32LE(a.rdev >>> 0, off + A.rdev);
  b.writeUInt32LE(a.blksize >>> 0, off + A.blksize);
  b.writeUInt32LE(0, off + A.flags);
  return off + Size.ATTR;
}

export function decodeAttr(b: Buffer, off: number): Attr {
  return {
    ino: readU64(b, off + A.ino),
    size: readU64(b, off + A.size),
    blocks: readU64(b, off + A.blocks),
    atimeSec: readS64(b, off + A.atime),
    mtimeSec: readS64(b, off + A.mtime),
    ctimeSec: readS64(b, off + A.ctime),
    atimeNsec: b.readUInt32LE(off + A.atimensec),
    mtimeNsec: b.readUInt32LE(off + A.mtimensec),
    ctimeNsec: b.readUInt32LE(off + A.ctimensec),
    mode: b.readUInt32LE(off + A.mode),
    nlink: b.readUInt32LE(off + A.nlink),
    uid: b.readUInt32LE(off + A.uid),
    gid: b.readUInt32LE(off + A.gid),
    rdev: b.readUInt32LE(off + A.rdev),
    blksize: b.readUInt32LE(off + A.blksize),
  };
}

/** The attributes of an entry that has none to tell (`.`/`..` in READDIRPLUS, a negative entry). */
export function zeroAttr(ino: number, mode: number): Attr {
  return {
    ino,
    mode,
    nlink: 0,
    uid: 0,
    gid: 0,
    rdev: 0,
    size: 0,
    blocks: 0,
    blksize: 0,
    atimeSec: 0,
    atimeNsec: 0,
    mtimeSec: 0,
    mtimeNsec: 0,
    ctimeSec: 0,
    ctimeNsec: 0,
  };
}

/** Cache timeout split into whole seconds and nanoseconds. */
function splitTimeout(seconds: number): [number, number] {
  const s = Math.floor(seconds);
  return [s, Math.round((seconds - s) * 1e9)];
}

export interface EntryOut {
  nodeid: number;
  generation: number;
  entryValid: number;
  attrValid: number;
  attr: Attr;
}

const EO = Off.entryOut;

/** fuse_entry_out (128 bytes). */
export function encodeEntryOut(b: Buffer, off: number, e: EntryOut): number {
  const [es, ens] = splitTimeout(e.entryValid);
  const [as, ans] = splitTimeout(e.attrValid);
  writeU64(b, off + EO.nodeid, e.nodeid);
  writeU64(b, off + EO.generation, e.generation);
  writeU64(b, off + EO.entryValid, es);
  writeU64(b, off + EO.attrValid, as);
  b.writeUInt32LE(ens, off + EO.entryValidNsec);
  b.writeUInt32LE(ans, off + EO.attrValidNsec);
  return encodeAttr(b, off + EO.attr, e.attr);
}

export function decodeEntryOut(b: Buffer, off: number): EntryOut {
  return {
    nodeid: readU64(b, off + EO.nodeid),
    generation: readU64(b, off + EO.generation),
    entryValid: readU64(b, off + EO.entryValid) + b.readUInt32LE(off + EO.entryValidNsec) / 1e9,
    attrValid: readU64(b, off + EO.attrValid) + b.readUInt32LE(off + EO.attrValidNsec) / 1e9,
    attr: decodeAttr(b, off + EO.attr),
  };
}

const AO = Off.attrOut;

/** fuse_attr_out (104 bytes). */
export function encodeAttrOut(b: Buffer, off: number, attrValid: number, attr: Attr): number {
  const [s, ns] = splitTimeout(attrValid);
  writeU64(b, off + AO.attrValid, s);
  b.writeUInt32LE(ns, off + AO.attrValidNsec);
  b.writeUInt32LE(0, off + AO.dummy);
  return encodeAttr(b, off + AO.attr, attr);
}

const OO = Off.openOut;

/** fuse_open_out (16 bytes). */
export function encodeOpenOut(b: Buffer, off: number, fh: number, openFlags: number, backingId = 0): number {
  writeU64(b, off + OO.fh, fh);
  b.writeUInt32LE(openFlags >>> 0, off + OO.openFlags);
  b.writeInt32LE(backingId | 0, off + OO.backingId);
  return off + Size.OPEN_OUT;
}

/** The file handle of a fuse_open_out (the CREATE reply's second half, OPENDIR; tests and warm-up). */
export function decodeOpenOutFh(b: Buffer, off: number): number {
  return readU64(b, off + OO.fh);
}

/** fuse_write_out / fuse_getxattr_out (8 bytes: a u32 and padding). */
export function encodeU32Out(b: Buffer, off: number, n: number): number {
  b.writeUInt32LE(n >>> 0, off + Off.u32Out.value);
  b.writeUInt32LE(0, off + Off.u32Out.padding);
  return off + Size.WRITE_OUT;
}

/** fuse_lseek_out (8 bytes). */
export function encodeU64Out(b: Buffer, off: number, n: number): number {
  writeU64(b, off + Off.lseekOut.offset, n);
  return off + Size.LSEEK_OUT;
}

const SF = Off.kstatfs;

/** fuse_statfs_out (80 bytes). */
export function encodeStatfs(b: Buffer, off: number, s: StatFs): number {
  b.fill(0, off, off + Size.KSTATFS);
  writeU64(b, off + SF.blocks, s.blocks);
  writeU64(b, off + SF.bfree, s.bfree);
  writeU64(b, off + SF.bavail, s.bavail);
  writeU64(b, off + SF.files, s.files);
  writeU64(b, off + SF.ffree, s.ffree);
  b.writeUInt32LE(s.bsize >>> 0, off + SF.bsize);
  b.writeUInt32LE(s.namelen >>> 0, off + SF.namelen);
  b.writeUInt32LE(s.frsize >>> 0, off + SF.frsize);
  return off + Size.KSTATFS;
}
