/**
 * The persistent inode table's file: fixed 24-byte records (dev, ino, ours) as float64 LE,
 * appended one per change (ours = 0 deletes). Written through on each record, no fsync.
 */
import * as fs from 'node:fs';

export const RECORD = 24;

export interface XinoFile {
  fd: number;
  /** Records read at open time. */
  records: Array<[number, number, number]>;
}

/** Flags the file is opened with (by path here, or beneath the rw branch's fd: Branch.open). */
export const XINO_OPEN_FLAGS = fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW;

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
  if (size % RECORD !== 0) fs.ftruncateSync(fd, n * RECORD); // torn last record from a crash
  return { fd, records };
}

export function appendXinoRecord(fd: number, dev: number, ino: number, ours: number): void {
  const b = Buffer.allocUnsafe(RECORD);
  b.writeDoubleLE(dev, 0);
  b.writeDoubleLE(ino, 8);
  b.writeDoubleLE(ours, 16);
  fs.writeSync(fd, b, 0, RECORD);
}

/** Rewrite the file with only the live entries (compaction at close). */
export function rewriteXinoFile(fd: number, entries: Iterable<[number, number, number]>): void {
  const rows = [...entries];
  const b = Buffer.allocUnsafe(rows.length * RECORD);
  rows.forEach(([d, i, o], k) => {
    b.writeDoubleLE(d, k * RECORD);
    b.writeDoubleLE(i, k * RECORD + 8);
    b.writeDoubleLE(o, k * RECORD + 16);
  });
  fs.ftruncateSync(fd, 0);
  let off = 0;
  while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
}

export function closeXinoFile(fd: number): void {
  fs.closeSync(fd);
}
