/**
 * Stable inode numbers (AUFS xino / overlayfs xino+index, simplified).
 *
 * A real file is keyed by (st_dev, st_ino) of the branch file, never by st_ino alone. Its number:
 * 1. the table's mapping if any (copied-up files map to the number they had below);
 * 2. else branch slot * 2^44 + st_ino (slot = branch index, 0 = topmost): unique across branches,
 *    the same after a remount, no table entry needed;
 * 3. else (huge st_ino, many branches) a number allocated from 2^52 up and recorded.
 * Root is always 1. The table is persisted by appending records (see branch/xino-file.ts).
 */
import { appendXinoRecord, closeXinoFile, openXinoFile, rewriteXinoFile } from '../branch/index.js';

const SLOT = 2 ** 44;
const HIGH = 2 ** 52;
const MAX_SLOTS = 511;

export class InodeTable {
  /** st_dev -> st_ino -> our number (numbers as keys: no string built per lookup). */
  private readonly map = new Map<number, Map<number, number>>();
  private count = 0;
  private fd: number | null = null;
  private next = HIGH;
  readonly path: string | null;

  /** `path`: the table file (null: in memory only); `fd`: that file already opened (beneath a branch fd). */
  constructor(path: string | null, fd?: number) {
    this.path = path;
    if (path !== null) {
      const f = openXinoFile(path, fd);
      this.fd = f.fd;
      for (const [dev, ino, ours] of f.records) {
        if (ours === 0) this.drop(dev, ino);
        else {
          this.put(dev, ino, ours);
          if (ours >= this.next) this.next = ours + 1;
        }
      }
    }
  }

  private put(dev: number, ino: number, ours: number): void {
    let m = this.map.get(dev);
    if (!m) this.map.set(dev, (m = new Map()));
    const had = m.size;
    m.set(ino, ours);
    if (m.size !== had) this.count++;
  }

  private drop(dev: number, ino: number): boolean {
    const m = this.map.get(dev);
    if (!m || !m.delete(ino)) return false;
    this.count--;
    if (m.size === 0) this.map.delete(dev);
    return true;
  }

  /** Our number for a real file of branch `slot`. */
  inoFor(slot: number, dev: number, ino: number): number {
    if (this.count !== 0) {
      const t = this.map.get(dev)?.get(ino);
      if (t !== undefined) return t;
    }
    if (ino < SLOT && slot < MAX_SLOTS) {
      const n = slot * SLOT + ino;
      if (n > 1) return n;
    }
    const n = this.next++;
    this.set(dev, ino, n);
    return n;
  }

  get(dev: number, ino: number): number | undefined {
    return this.map.get(dev)?.get(ino);
  }

  /** Record that real (dev, ino) is our `ours` (copy-up). No-op when already so. */
  set(dev: number, ino: number, ours: number): void {
    if (this.get(dev, ino) === ours) return;
    this.put(dev, ino, ours);
    if (this.fd !== null) appendXinoRecord(this.fd, dev, ino, ours);
  }

  /** Forget a mapping (the real file is gone or is a new file reusing the inode). */
  delete(dev: number, ino: number): void {
    if (!this.drop(dev, ino)) return;
    if (this.fd !== null) appendXinoRecord(this.fd, dev, ino, 0);
  }

  get size(): number {
    return this.count;
  }

  close(): void {
    if (this.fd === null) return;
    const rows: Array<[number, number, number]> = [];
    for (const [d, m] of this.map) for (const [i, v] of m) rows.push([d, i, v]);
    rewriteXinoFile(this.fd, rows);
    closeXinoFile(this.fd);
    this.fd = null;
  }
}
