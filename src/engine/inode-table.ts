/**
 * Stable inode numbers (overlayfs xino + index, simplified).
 *
 * A real file is keyed by (st_dev, st_ino) of the branch file, never by st_ino alone. Its number:
 * 1. the table's mapping if any (a copied-up file maps to the number it had below; a merged
 *    directory kept in the upper maps to its lower directory's number, as overlayfs reports);
 * 2. else fsSlot * 2^44 + st_ino, where fsSlot numbers the FILESYSTEMS (st_dev) of the branches:
 *    the topmost branch's filesystem (the upper) is slot 0, so when every branch is on one
 *    filesystem a file reports its real st_ino, like overlayfs (and stays below 2^32 where the
 *    filesystem's are: 32-bit programs get no EOVERFLOW); other filesystems get slots 1, 2, ... in
 *    the order the branch list first names them (overlayfs xino: high bits only across filesystems);
 * 3. else (huge st_ino, too many filesystems, a filesystem mounted inside a branch, or a real
 *    number the table already gives another file) a number allocated from 2^52 up and recorded.
 * Root is always 1.
 *
 * Nothing in a number depends on a branch's POSITION: branches added, removed or moved on a live
 * mount must not change the numbers of files that stay visible. A slot, once given to a
 * filesystem, is never taken back or moved while the union lives; a branch added on a known
 * filesystem uses that filesystem's slot, one on a new filesystem gets the next free slot
 * (`addFilesystem`). Two names of one real inode (hard links, even across branches) share a number.
 *
 * Uniqueness on the upper's filesystem (slot 0, real st_ino): two live inodes never share st_ino;
 * a table value below 2^44 is the real st_ino of a lower inode a copy-up came from, which exists
 * as long as that lower file does. Should it be freed (deleted outside the union) and reused by a
 * new file of the rw branch, the new file's real number is taken: `claimed` sees it and rule 3
 * applies (only to rw files: a lower file with a claimed number is the origin of the claim).
 * Entries of upper files deleted through the union are dropped (unlink, rmdir, rename over; a
 * new file reusing the real inode drops a leftover one: Core.addCreated).
 *
 * The table is persisted by appending records (see branch/xino-file.ts, whose header names this
 * scheme: a table of the earlier one, slot = branch index, is dropped at open).
 */
import { appendXinoRecord, closeXinoFile, openXinoFile, rewriteXinoFile } from '../branch/index.js';

const SLOT = 2 ** 44;
const HIGH = 2 ** 52;
/** Slots 0..255: the highest natural number stays below HIGH. */
const MAX_SLOTS = HIGH / SLOT;
/** d_ino of a listed entry gone before its number was read: no file has it. */
export const GONE_INO = Number.MAX_SAFE_INTEGER;

export class InodeTable {
  /** st_dev -> st_ino -> our number (numbers as keys: no string built per lookup). */
  private readonly map = new Map<number, Map<number, number>>();
  private count = 0;
  /** Table values in slot 0's range (real st_ino of the upper's filesystem) -> how many keys map to it. */
  private readonly claimed = new Map<number, number>();
  /** st_dev -> filesystem slot. */
  private readonly slots = new Map<number, number>();
  private fd: number | null = null;
  private next = HIGH;
  readonly path: string | null;
  /** Records of an older numbering scheme dropped when the table file was opened. */
  readonly discarded: number = 0;

  /**
   * `path`: the table file (null: in memory only); `fd`: that file already opened (beneath a branch
   * fd); `devs`: st_dev of the branch roots, topmost first.
   */
  constructor(path: string | null, fd: number | undefined, devs: readonly number[]) {
    for (const d of devs) this.addFilesystem(d);
    this.path = path;
    if (path !== null) {
      const f = openXinoFile(path, fd);
      this.fd = f.fd;
      this.discarded = f.discarded;
      for (const [dev, ino, ours] of f.records) {
        if (ours === 0) this.drop(dev, ino);
        else {
          this.put(dev, ino, ours);
          if (ours >= this.next) this.next = ours + 1;
        }
      }
    }
  }

  /** Give filesystem `dev` a slot if it has none (a branch on it joins the union). */
  addFilesystem(dev: number): void {
    if (!this.slots.has(dev)) this.slots.set(dev, this.slots.size);
  }

  /** st_dev of every filesystem with a slot, in slot order (engine/branch-state.ts). */
  filesystems(): number[] {
    return [...this.slots.keys()];
  }

  /** The filesystem slot of `dev`, if it has one. */
  slotOf(dev: number): number | undefined {
    return this.slots.get(dev);
  }

  private claim(v: number, by: number): void {
    if (v >= SLOT) return;
    const c = (this.claimed.get(v) ?? 0) + by;
    if (c > 0) this.claimed.set(v, c);
    else this.claimed.delete(v);
  }

  private put(dev: number, ino: number, ours: number): void {
    let m = this.map.get(dev);
    if (!m) this.map.set(dev, (m = new Map()));
    const had = m.get(ino);
    if (had !== undefined) this.claim(had, -1);
    else this.count++;
    m.set(ino, ours);
    this.claim(ours, +1);
  }

  private drop(dev: number, ino: number): boolean {
    const m = this.map.get(dev);
    const had = m?.get(ino);
    if (!m || had === undefined) return false;
    m.delete(ino);
    this.claim(had, -1);
    this.count--;
    if (m.size === 0) this.map.delete(dev);
    return true;
  }

  /** The number rule 2 gives (dev, ino) (a file of the rw branch when `upper`), or 0 when rule 3 must. */
  private natural(dev: number, ino: number, upper: boolean): number {
    const s = this.slots.get(dev);
    if (s === undefined || s >= MAX_SLOTS || ino >= SLOT) return 0;
    const n = s * SLOT + ino;
    if (n <= 1) return 0;
    // A lower file keeps its number even when claimed: the claim is its own copy-up's.
    if (upper && s === 0 && this.claimed.size !== 0 && this.claimed.has(n)) return 0;
    return n;
  }

  /** Our number for the real file (dev, ino); `upper`: it is in the rw branch. */
  inoFor(dev: number, ino: number, upper: boolean): number {
    if (this.count !== 0) {
      const t = this.map.get(dev)?.get(ino);
      if (t !== undefined) return t;
    }
    const n = this.natural(dev, ino, upper);
    if (n !== 0) return n;
    const a = this.next++;
    this.set(dev, ino, a);
    return a;
  }

  get(dev: number, ino: number): number | undefined {
    return this.map.get(dev)?.get(ino);
  }

  /** Record that real (dev, ino) of the rw branch is our `ours` (copy-up). No-op when already so. */
  set(dev: number, ino: number, ours: number): void {
    const cur = this.get(dev, ino);
    if (cur === ours) return;
    if (cur === undefined && this.natural(dev, ino, true) === ours) return; // rule 2 says so already
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
