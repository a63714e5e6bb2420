/**
 * Buffer <-> objects for the FUSE protocol. Pure: no I/O, no engine. Decoders read a request
 * body at an offset; encoders write a reply body into a caller's buffer and return the end offset.
 * 64-bit fields are carried as JS numbers (node ids, handles, offsets and sizes stay below 2^53).
 */
import type { Attr, StatFs } from '../engine/types.js';
import { Init, Init2, KERNEL_MINOR_VERSION, KERNEL_VERSION, MAX_MAX_PAGES, PAGE_SIZE, Size } from './abi.js';

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

export function decodeInHeader(b: Buffer): InHeader {
  return {
    len: b.readUInt32LE(0),
    opcode: b.readUInt32LE(4),
    unique: readU64(b, 8),
    nodeid: readU64(b, 16),
    uid: b.readUInt32LE(24),
    gid: b.readUInt32LE(28),
    pid: b.readUInt32LE(32),
    extlen: b.readUInt16LE(36) * 8,
  };
}

export function encodeInHeader(b: Buffer, h: InHeader): void {
  b.writeUInt32LE(h.len, 0);
  b.writeUInt32LE(h.opcode, 4);
  writeU64(b, 8, h.unique);
  writeU64(b, 16, h.nodeid);
  b.writeUInt32LE(h.uid, 24);
  b.writeUInt32LE(h.gid, 28);
  b.writeUInt32LE(h.pid, 32);
  b.writeUInt16LE(h.extlen / 8, 36);
  b.writeUInt16LE(0, 38);
}

/** fuse_out_header: error is 0 or a negative errno. */
export function encodeOutHeader(b: Buffer, len: number, error: number, unique: number): void {
  b.writeUInt32LE(len, 0);
  b.writeInt32LE(error, 4);
  writeU64(b, 8, unique);
}

export interface OutHeader {
  len: number;
  error: number;
  unique: number;
}

export function decodeOutHeader(b: Buffer): OutHeader {
  return { len: b.readUInt32LE(0), error: b.readInt32LE(4), unique: readU64(b, 8) };
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

export interface InitIn {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  /** High 32 flag bits; 0 unless the kernel set INIT_EXT. */
  flags2: number;
}

export function decodeInitIn(b: Buffer, off: number, bodyLen: number): InitIn {
  const flags = bodyLen >= 16 ? b.readUInt32LE(off + 12) : 0;
  const flags2 = bodyLen >= 20 && (flags & Init.INIT_EXT) !== 0 ? b.readUInt32LE(off + 16) : 0;
  return {
    major: b.readUInt32LE(off),
    minor: b.readUInt32LE(off + 4),
    maxReadahead: bodyLen >= 12 ? b.readUInt32LE(off + 8) : 0,
    flags: flags >>> 0,
    flags2: flags2 >>> 0,
  };
}

export function encodeInitIn(b: Buffer, off: number, i: InitIn): number {
  b.fill(0, off, off + Size.INIT_IN);
  b.writeUInt32LE(i.major, off);
  b.writeUInt32LE(i.minor, off + 4);
  b.writeUInt32LE(i.maxReadahead, off + 8);
  b.writeUInt32LE(i.flags >>> 0, off + 12);
  b.writeUInt32LE(i.flags2 >>> 0, off + 16);
  return off + Size.INIT_IN;
}

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

export function encodeInitOut(b: Buffer, off: number, o: InitOut): number {
  b.fill(0, off, off + Size.INIT_OUT);
  b.writeUInt32LE(o.major, off);
  b.writeUInt32LE(o.minor, off + 4);
  b.writeUInt32LE(o.maxReadahead, off + 8);
  b.writeUInt32LE(o.flags >>> 0, off + 12);
  b.writeUInt16LE(o.maxBackground, off + 16);
  b.writeUInt16LE(o.congestionThreshold, off + 18);
  b.writeUInt32LE(o.maxWrite, off + 20);
  b.writeUInt32LE(o.timeGran, off + 24);
  b.writeUInt16LE(o.maxPages, off + 28);
  b.writeUInt16LE(0, off + 30);
  b.writeUInt32LE(o.flags2 >>> 0, off + 32);
  b.writeUInt32LE(o.maxStackDepth >>> 0, off + 36);
  return off + Size.INIT_OUT;
}

export function decodeInitOut(b: Buffer, off: number): InitOut {
  return {
    major: b.readUInt32LE(off),
    minor: b.readUInt32LE(off + 4),
    maxReadahead: b.readUInt32LE(off + 8),
    flags: b.readUInt32LE(off + 12),
    maxBackground: b.readUInt16LE(off + 16),
    congestionThreshold: b.readUInt16LE(off + 18),
    maxWrite: b.readUInt32LE(off + 20),
    timeGran: b.readUInt32LE(off + 24),
    maxPages: b.readUInt16LE(off + 28),
    flags2: b.readUInt32LE(off + 32),
    maxStackDepth: b.readUInt32LE(off + 36),
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

/** fuse_attr (88 bytes). */
export function encodeAttr(b: Buffer, off: number, a: Attr): number {
  writeU64(b, off, a.ino);
  writeU64(b, off + 8, a.size);
  writeU64(b, off + 16, a.blocks);
  writeU64(b, off + 24, a.atimeSec);
  writeU64(b, off + 32, a.mtimeSec);
  writeU64(b, off + 40, a.ctimeSec);
  b.writeUInt32LE(a.atimeNsec >>> 0, off + 48);
  b.writeUInt32LE(a.mtimeNsec >>> 0, off + 52);
  b.writeUInt32LE(a.ctimeNsec >>> 0, off + 56);
  b.writeUInt32LE(a.mode >>> 0, off + 60);
  b.writeUInt32LE(a.nlink >>> 0, off + 64);
  b.writeUInt32LE(a.uid >>> 0, off + 68);
  b.writeUInt32LE(a.gid >>> 0, off + 72);
  b.writeUInt32LE(a.rdev >>> 0, off + 76);
  b.writeUInt32LE(a.blksize >>> 0, off + 80);
  b.writeUInt32LE(0, off + 84);
  return off + Size.ATTR;
}

export function decodeAttr(b: Buffer, off: number): Attr {
  return {
    ino: readU64(b, off),
    size: readU64(b, off + 8),
    blocks: readU64(b, off + 16),
    atimeSec: readS64(b, off + 24),
    mtimeSec: readS64(b, off + 32),
    ctimeSec: readS64(b, off + 40),
    atimeNsec: b.readUInt32LE(off + 48),
    mtimeNsec: b.readUInt32LE(off + 52),
    ctimeNsec: b.readUInt32LE(off + 56),
    mode: b.readUInt32LE(off + 60),
    nlink: b.readUInt32LE(off + 64),
    uid: b.readUInt32LE(off + 68),
    gid: b.readUInt32LE(off + 72),
    rdev: b.readUInt32LE(off + 76),
    blksize: b.readUInt32LE(off + 80),
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

/** fuse_entry_out (128 bytes). */
export function encodeEntryOut(b: Buffer, off: number, e: EntryOut): number {
  const [es, ens] = splitTimeout(e.entryValid);
  const [as, ans] = splitTimeout(e.attrValid);
  writeU64(b, off, e.nodeid);
  writeU64(b, off + 8, e.generation);
  writeU64(b, off + 16, es);
  writeU64(b, off + 24, as);
  b.writeUInt32LE(ens, off + 32);
  b.writeUInt32LE(ans, off + 36);
  return encodeAttr(b, off + 40, e.attr);
}

export function decodeEntryOut(b: Buffer, off: number): EntryOut {
  return {
    nodeid: readU64(b, off),
    generation: readU64(b, off + 8),
    entryValid: readU64(b, off + 16) + b.readUInt32LE(off + 32) / 1e9,
    attrValid: readU64(b, off + 24) + b.readUInt32LE(off + 36) / 1e9,
    attr: decodeAttr(b, off + 40),
  };
}

/** fuse_attr_out (104 bytes). */
export function encodeAttrOut(b: Buffer, off: number, attrValid: number, attr: Attr): number {
  const [s, ns] = splitTimeout(attrValid);
  writeU64(b, off, s);
  b.writeUInt32LE(ns, off + 8);
  b.writeUInt32LE(0, off + 12);
  return encodeAttr(b, off + 16, attr);
}

/** fuse_open_out (16 bytes). */
export function encodeOpenOut(b: Buffer, off: number, fh: number, openFlags: number, backingId = 0): number {
  writeU64(b, off, fh);
  b.writeUInt32LE(openFlags >>> 0, off + 8);
  b.writeInt32LE(backingId | 0, off + 12);
  return off + Size.OPEN_OUT;
}

/** fuse_write_out / fuse_getxattr_out (8 bytes: a u32 and padding). */
export function encodeU32Out(b: Buffer, off: number, n: number): number {
  b.writeUInt32LE(n >>> 0, off);
  b.writeUInt32LE(0, off + 4);
  return off + 8;
}

/** fuse_lseek_out (8 bytes). */
export function encodeU64Out(b: Buffer, off: number, n: number): number {
  writeU64(b, off, n);
  return off + 8;
}

/** fuse_statfs_out (80 bytes). */
export function encodeStatfs(b: Buffer, off: number, s: StatFs): number {
  b.fill(0, off, off + Size.KSTATFS);
  writeU64(b, off, s.blocks);
  writeU64(b, off + 8, s.bfree);
  writeU64(b, off + 16, s.bavail);
  writeU64(b, off + 24, s.files);
  writeU64(b, off + 32, s.ffree);
  b.writeUInt32LE(s.bsize >>> 0, off + 40);
  b.writeUInt32LE(s.namelen >>> 0, off + 44);
  b.writeUInt32LE(s.frsize >>> 0, off + 48);
  return off + Size.KSTATFS;
}

// ---- request bodies ----

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

export function decodeSetattrIn(b: Buffer, off: number): SetattrIn {
  return {
    valid: b.readUInt32LE(off),
    fh: readU64(b, off + 8),
    size: readU64(b, off + 16),
    atime: readS64(b, off + 32),
    mtime: readS64(b, off + 40),
    atimensec: b.readUInt32LE(off + 56),
    mtimensec: b.readUInt32LE(off + 60),
    mode: b.readUInt32LE(off + 68),
    uid: b.readUInt32LE(off + 76),
    gid: b.readUInt32LE(off + 80),
  };
}

export function encodeSetattrIn(b: Buffer, off: number, s: SetattrIn): number {
  b.fill(0, off, off + Size.SETATTR_IN);
  b.writeUInt32LE(s.valid, off);
  writeU64(b, off + 8, s.fh);
  writeU64(b, off + 16, s.size);
  writeU64(b, off + 32, s.atime);
  writeU64(b, off + 40, s.mtime);
  b.writeUInt32LE(s.atimensec, off + 56);
  b.writeUInt32LE(s.mtimensec, off + 60);
  b.writeUInt32LE(s.mode, off + 68);
  b.writeUInt32LE(s.uid, off + 76);
  b.writeUInt32LE(s.gid, off + 80);
  return off + Size.SETATTR_IN;
}

export interface ReadWriteIn {
  fh: number;
  offset: number;
  size: number;
  flags: number;
}

/** fuse_read_in and fuse_write_in share their layout. */
export function decodeReadWriteIn(b: Buffer, off: number): ReadWriteIn {
  return {
    fh: readU64(b, off),
    offset: readU64(b, off + 8),
    size: b.readUInt32LE(off + 16),
    flags: b.readUInt32LE(off + 32),
  };
}

export function encodeReadWriteIn(b: Buffer, off: number, r: ReadWriteIn): number {
  b.fill(0, off, off + Size.READ_IN);
  writeU64(b, off, r.fh);
  writeU64(b, off + 8, r.offset);
  b.writeUInt32LE(r.size, off + 16);
  b.writeUInt32LE(r.flags, off + 32);
  return off + Size.READ_IN;
}

export interface ForgetOne {
  nodeid: number;
  nlookup: number;
}

/** BATCH_FORGET body: count, then count fuse_forget_one records. */
export function decodeBatchForget(b: Buffer, off: number, end: number): ForgetOne[] {
  const count = b.readUInt32LE(off);
  const out: ForgetOne[] = [];
  let p = off + Size.BATCH_FORGET_IN;
  for (let i = 0; i < count && p + Size.FORGET_ONE <= end; i++, p += Size.FORGET_ONE) {
    out.push({ nodeid: readU64(b, p), nlookup: readU64(b, p + 8) });
  }
  return out;
}

export function encodeBatchForget(b: Buffer, off: number, items: ForgetOne[]): number {
  b.writeUInt32LE(items.length, off);
  b.writeUInt32LE(0, off + 4);
  let p = off + Size.BATCH_FORGET_IN;
  for (const it of items) {
    writeU64(b, p, it.nodeid);
    writeU64(b, p + 8, it.nlookup);
    p += Size.FORGET_ONE;
  }
  return p;
}

