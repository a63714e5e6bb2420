/**
 * The persistent inode table's file: fixed 24-byte records (dev, ino, ours) as float64 LE,
 * appended one per change (ours = 0 deletes). Written through on each record, no fsync.
 *
 * The first record is a header (HEADER_DEV, XINO_VERSION, HEADER_MAGIC): the numbering scheme the
 * table's numbers belong to. A file without it (or of another version) holds numbers of another
 * scheme, which could equal numbers the current one gives other files: its records are dropped
 * and the file is started over (`discarded` says how many records that was).
 */
import * as fs from 'node:fs';
import { FsError, codeOf, errnoOf } from '../errors/index.js';
import { writeRaw } from '../sys/native.js';

export const RECORD = 24;
/** Version 2: slots per filesystem, the upper's files keep their real st_ino (version 1: no header, slot per branch). */
export const XINO_VERSION = 2;
const HEADER_DEV = -1; // no st_dev is negative
const HEADER_MAGIC = 0x6c667869; // 'lfxi'

export interface XinoFile {
  fd: number;
  /** Records read at open time (without the header). */
  records: Array<[number, number, number]>;
  /** Records of an older scheme dropped at open. */
  discarded: number;
}

/** Flags the file is opened with (by path here, or beneath the rw branch's fd: Branch.open). */
export const XINO_OPEN_FLAGS = fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW;

/** One record (dev, ino, ours) into `b` at `at`. */
function putRecord(b: Buffer, at: number, dev: number, ino: number, ours: number): void {
  b.writeDoubleLE(dev, at);
  b.writeDoubleLE(ino, at + 8);
  b.writeDoubleLE(ours, at + 16);
}

function encode(rows: ReadonlyArray<readonly [number, number, number]>): Buffer {
  const b = Buffer.allocUnsafe(rows.length * RECORD);
  rows.forEach(([d, i, o], k) => putRecord(b, k * RECORD, d, i, o));
  return b;
}

const HEADER: readonly [number, number, number] = [HEADER_DEV, XINO_VERSION, HEADER_MAGIC];

/** Open (or take the already opened `fd` of) the table file `p` and read its records. */
export function openXinoFile(p: string, opened?: number): XinoFile {
  const fd = opened ?? fs.openSync(p, XINO_OPEN_FLAGS, 0o600);
  const size = fs.fstatSync(fd).size;
  const n = Math.floor(size / RECORD);
  const buf = Buffer.alloc(n * RECORD);
  let off = 0;
  while (off < buf.length) {
    const r = fs.readSync(fd, buf, off, buf.length - off, off);
    if (r === 0) break;
    off += r;
  }
  const records: Array<[number, number, number]> = [];
  for (let i = 0; i + RECORD <= off; i += RECORD) {
    records.push([buf.readDoubleLE(i), buf.readDoubleLE(i + 8), buf.readDoubleLE(i + 16)]);
  }
  const h = records[0];
  const current = h !== undefined && h[0] === HEADER[0] && h[1] === HEADER[1] && h[2] === HEADER[2];
  if (!current) {
    // Empty, or written by another scheme: start over with the header.
    rewriteXinoFile(fd, []);
    return { fd, records: [], discarded: records.length };
  }
  records.shift();
  if (size % RECORD !== 0) fs.ftruncateSync(fd, n * RECORD); // torn last record from a crash
  return { fd, records, discarded: 0 };
}

/** One record, encoded in place (a copy-up appends one: no allocation, no node:fs call). */
const one = Buffer.alloc(RECORD);
const EINTR = errnoOf('EINTR');

export function appendXinoRecord(fd: number, dev: number, ino: number, ours: number): void {
  putRecord(one, 0, dev, ino, ours);
  for (;;) {
    const n = writeRaw(fd, one, RECORD);
    if (n === RECORD) return;
    if (n === -EINTR) continue;
    // O_APPEND: a short write (the disk full mid-record) leaves a torn record, cut off at the next open
    if (n >= 0) throw new FsError('ENOSPC', 'write');
    throw new FsError(codeOf(-n), 'write');
  }
}

/** Rewrite the file with the header and only the live entries (compaction at close). */
export function rewriteXinoFile(fd: number, entries: Iterable<[number, number, number]>): void {
  const b = encode([HEADER, ...entries]);
  fs.ftruncateSync(fd, 0);
  let off = 0;
  while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
}

export function closeXinoFile(fd: number): void {
  fs.closeSync(fd);
}
