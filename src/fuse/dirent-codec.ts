/**
 * Directory entries (READDIR / READDIRPLUS reply records) and kernel notifications, Buffer <->
 * objects. Pure, like codec.ts (which re-exports this file).
 */
import type { Attr } from '../engine/types.js';
import { NotifyCode, Off, Size, align8 } from './abi.js';
import { GENERATION } from './node-table.js';
import { encodeEntryOut, decodeEntryOut, encodeOutHeader, readU64, writeU64, zeroAttr, type EntryOut } from './codec.js';

const DE = Off.dirent;

// ---- directory entries ----

/** Bytes one READDIR entry takes: 24-byte header + name, padded to 8. */
export function direntSize(nameBytes: number): number {
  return align8(Size.DIRENT_HEADER + nameBytes);
}

/** Bytes one READDIRPLUS entry takes: entry_out + dirent, padded to 8. */
export function direntPlusSize(nameBytes: number): number {
  return align8(Size.ENTRY_OUT + Size.DIRENT_HEADER + nameBytes);
}

/**
 * Append a fuse_dirent at `off` if it fits before `limit`; returns the new end, or -1 when full.
 * `nextOff` is the cookie the kernel sends back to continue after this entry.
 */
export function encodeDirent(b: Buffer, off: number, limit: number, ino: number, nextOff: number, type: number, name: string): number {
  const nameLen = Buffer.byteLength(name);
  const size = direntSize(nameLen);
  if (off + size > limit) return -1;
  writeU64(b, off + DE.ino, ino);
  writeU64(b, off + DE.off, nextOff);
  b.writeUInt32LE(nameLen, off + DE.namelen);
  b.writeUInt32LE(type, off + DE.type);
  b.write(name, off + DE.name, nameLen, 'utf8');
  b.fill(0, off + DE.name + nameLen, off + size);
  return off + size;
}

/** Append a fuse_direntplus (entry_out then dirent); -1 when it does not fit. */
export function encodeDirentPlus(
  b: Buffer,
  off: number,
  limit: number,
  entry: EntryOut,
  nextOff: number,
  type: number,
  name: string,
): number {
  const nameLen = Buffer.byteLength(name);
  const size = direntPlusSize(nameLen);
  if (off + size > limit) return -1;
  encodeEntryOut(b, off + Off.direntplus.entryOut, entry);
  return encodeDirent(b, off + Off.direntplus.dirent, limit, entry.attr.ino, nextOff, type, name);
}

const DT_DIR = 4;

/**
 * A READDIR/READDIRPLUS reply being filled (go-fuse's DirEntryList): entries are appended while
 * they fit in the room the kernel gave. READDIRPLUS entries carry an entry_out with the session's
 * cache timeouts; `.` and `..` carry none (node id 0: the kernel takes no reference for them).
 */
export class DirentList {
  private pos: number;

  constructor(
    private readonly b: Buffer,
    private readonly start: number,
    private readonly limit: number,
    private readonly entryValid: number,
    private readonly attrValid: number,
  ) {
    this.pos = start;
  }

  /** Append a READDIR entry; false when it does not fit (the reply is full). */
  add(ino: number, nextOff: number, type: number, name: string): boolean {
    const next = encodeDirent(this.b, this.pos, this.limit, ino, nextOff, type, name);
    if (next < 0) return false;
    this.pos = next;
    return true;
  }

  /** Whether a READDIRPLUS entry named `name` still fits (ask before taking its lookup reference). */
  fitsPlus(name: string): boolean {
    return this.pos + direntPlusSize(Buffer.byteLength(name)) <= this.limit;
  }

  /** Append a READDIRPLUS entry for node id `nodeid` with `attr` (check fitsPlus first). */
  addPlus(nodeid: number, attr: Attr, nextOff: number, type: number, name: string): void {
    const entry = { nodeid, generation: GENERATION, entryValid: this.entryValid, attrValid: this.attrValid, attr };
    this.pos = encodeDirentPlus(this.b, this.pos, this.limit, entry, nextOff, type, name);
  }

  /** Append `.` or `..` to a READDIRPLUS reply: no node id, no attributes (check fitsPlus first). */
  addPlusDots(ino: number, nextOff: number, type: number, name: string): void {
    const entry = { nodeid: 0, generation: 0, entryValid: 0, attrValid: 0, attr: zeroAttr(ino, 0o40000) };
    this.pos = encodeDirentPlus(this.b, this.pos, this.limit, entry, nextOff, type || DT_DIR, name);
  }

  /** Bytes written. */
  get length(): number {
    return this.pos - this.start;
  }
}

export interface Dirent {
  ino: number;
  off: number;
  type: number;
  name: string;
}

/** Parse a READDIR reply body (for tests and tools). */
export function decodeDirents(b: Buffer, off: number, end: number): Dirent[] {
  const out: Dirent[] = [];
  let p = off;
  while (p + Size.DIRENT_HEADER <= end) {
    out.push(decodeDirent(b, p));
    p += direntSize(b.readUInt32LE(p + DE.namelen));
  }
  return out;
}

/** One fuse_dirent at `p`. */
export function decodeDirent(b: Buffer, p: number): Dirent {
  const nameLen = b.readUInt32LE(p + DE.namelen);
  return { ino: readU64(b, p + DE.ino), off: readU64(b, p + DE.off), type: b.readUInt32LE(p + DE.type), name: b.toString('utf8', p + DE.name, p + DE.name + nameLen) };
}

/** Parse a READDIRPLUS reply body (for tests and tools). */
export function decodeDirentsPlus(b: Buffer, off: number, end: number): { entry: EntryOut; dirent: Dirent }[] {
  const out: { entry: EntryOut; dirent: Dirent }[] = [];
  let p = off;
  while (p + Size.ENTRY_OUT + Size.DIRENT_HEADER <= end) {
    const d = p + Off.direntplus.dirent;
    out.push({ entry: decodeEntryOut(b, p + Off.direntplus.entryOut), dirent: decodeDirent(b, d) });
    p += direntPlusSize(b.readUInt32LE(d + DE.namelen));
  }
  return out;
}

// ---- notifications (unsolicited writes: unique 0, error = notify code) ----

export function encodeNotifyInvalEntry(b: Buffer, parent: number, name: string): number {
  const nameLen = Buffer.byteLength(name);
  const len = Size.OUT_HEADER + Size.NOTIFY_INVAL_ENTRY_OUT + nameLen + 1;
  const E = Off.notifyInvalEntryOut;
  const body = Size.OUT_HEADER;
  encodeOutHeader(b, len, NotifyCode.INVAL_ENTRY, 0);
  writeU64(b, body + E.parent, parent);
  b.writeUInt32LE(nameLen, body + E.namelen);
  b.writeUInt32LE(0, body + E.flags);
  const at = body + Size.NOTIFY_INVAL_ENTRY_OUT;
  b.write(name, at, nameLen, 'utf8');
  b.writeUInt8(0, at + nameLen);
  return len;
}

export function encodeNotifyInvalInode(b: Buffer, nodeid: number, offset: number, length: number): number {
  const len = Size.OUT_HEADER + Size.NOTIFY_INVAL_INODE_OUT;
  const I = Off.notifyInvalInodeOut;
  const body = Size.OUT_HEADER;
  encodeOutHeader(b, len, NotifyCode.INVAL_INODE, 0);
  writeU64(b, body + I.ino, nodeid);
  writeU64(b, body + I.off, offset);
  writeU64(b, body + I.len, length);
  return len;
}
