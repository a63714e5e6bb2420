/**
 * Directory entries (READDIR / READDIRPLUS reply records) and kernel notifications, Buffer <->
 * objects. Pure, like codec.ts (which re-exports this file).
 */
import { NotifyCode, Size, align8 } from './abi.js';
import { encodeEntryOut, decodeEntryOut, encodeOutHeader, readU64, writeU64, type EntryOut } from './codec.js';

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
  writeU64(b, off, ino);
  writeU64(b, off + 8, nextOff);
  b.writeUInt32LE(nameLen, off + 16);
  b.writeUInt32LE(type, off + 20);
  b.write(name, off + 24, nameLen, 'utf8');
  b.fill(0, off + 24 + nameLen, off + size);
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
  encodeEntryOut(b, off, entry);
  return encodeDirent(b, off + Size.ENTRY_OUT, limit, entry.attr.ino, nextOff, type, name);
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
    const nameLen = b.readUInt32LE(p + 16);
    out.push({ ino: readU64(b, p), off: readU64(b, p + 8), type: b.readUInt32LE(p + 20), name: b.toString('utf8', p + 24, p + 24 + nameLen) });
    p += direntSize(nameLen);
  }
  return out;
}

/** Parse a READDIRPLUS reply body (for tests and tools). */
export function decodeDirentsPlus(b: Buffer, off: number, end: number): { entry: EntryOut; dirent: Dirent }[] {
  const out: { entry: EntryOut; dirent: Dirent }[] = [];
  let p = off;
  while (p + Size.ENTRY_OUT + Size.DIRENT_HEADER <= end) {
    const entry = decodeEntryOut(b, p);
    const d = p + Size.ENTRY_OUT;
    const nameLen = b.readUInt32LE(d + 16);
    out.push({ entry, dirent: { ino: readU64(b, d), off: readU64(b, d + 8), type: b.readUInt32LE(d + 20), name: b.toString('utf8', d + 24, d + 24 + nameLen) } });
    p += direntPlusSize(nameLen);
  }
  return out;
}

// ---- notifications (unsolicited writes: unique 0, error = notify code) ----

export function encodeNotifyInvalEntry(b: Buffer, parent: number, name: string): number {
  const nameLen = Buffer.byteLength(name);
  const len = Size.OUT_HEADER + Size.NOTIFY_INVAL_ENTRY_OUT + nameLen + 1;
  encodeOutHeader(b, len, NotifyCode.INVAL_ENTRY, 0);
  writeU64(b, 16, parent);
  b.writeUInt32LE(nameLen, 24);
  b.writeUInt32LE(0, 28);
  b.write(name, 32, nameLen, 'utf8');
  b.writeUInt8(0, 32 + nameLen);
  return len;
}

export function encodeNotifyInvalInode(b: Buffer, nodeid: number, offset: number, length: number): number {
  const len = Size.OUT_HEADER + Size.NOTIFY_INVAL_INODE_OUT;
  encodeOutHeader(b, len, NotifyCode.INVAL_INODE, 0);
  writeU64(b, 16, nodeid);
  writeU64(b, 24, offset);
  writeU64(b, 32, length);
  return len;
}
