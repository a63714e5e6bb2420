/**
 * The data part of a copy-up: all of one file's contents into a fresh, empty file, as fast as the
 * filesystems allow and keeping holes.
 *
 * 1. FICLONE (reflink: xfs, btrfs; shares extents, holes included, O(1)).
 * 2. copy_file_range over the data extents (SEEK_DATA/SEEK_HOLE when the source has holes, then
 *    ftruncate to the size), in chunks of CHUNK bytes. With `writeback`, each chunk's writeback is
 *    started (sync_file_range WRITE) while the next one is copied, so the caller's fsync before the
 *    rename into place waits for little (measured here on ext4: 1 GiB copy + fsync 1.0 s -> 0.57 s,
 *    about what the copy alone costs).
 * 3. read/write, only when copy_file_range refuses (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP).
 *
 * With a `tap` (the caller must see every byte, e.g. to hash it) copy_file_range is skipped: a
 * reflink is followed by one read of the data; otherwise read/write copies it and shows each
 * chunk to the tap (one read and one write, where copy_file_range plus a read would read twice).
 * Sparse sources stay sparse there too: a chunk of zeros is not written.
 *
 * What a destination cannot do is remembered in a CopyCaps (one per branch and source device, see
 * Branch.copyCaps), so ext4 is not asked for a reflink on every copy-up.
 *
 * Every syscall goes through `copySys`: tests replace one entry (refuse copy_file_range, fail with
 * ENOSPC half-way) without mocking node:fs.
 */
import * as fs from 'node:fs';
import { isCode } from '../errors/index.js';
import * as native from '../sys/native.js';

/** How the data was copied (what the last extent used; 'empty' when there was none). */
export type CopyMethod = 'ficlone' | 'copy_file_range' | 'readwrite' | 'empty';

/** What copying from one source filesystem into one destination was found unable to do. */
export interface CopyCaps {
  noClone?: boolean;
  noCopyRange?: boolean;
}

export interface CopyOptions {
  /** Remembered refusals (updated here). */
  caps?: CopyCaps;
  /** The source may have holes (st_blocks * 512 < st_size): copy data extents only. */
  sparse?: boolean;
  /** Start writeback of each chunk as it is copied (the caller will fsync). */
  writeback?: boolean;
  /** Sees the data in order, each chunk valid only during the call (see above). */
  tap?: (chunk: Buffer) => void;
}

/** Bytes per copy_file_range call (and per writeback kick). */
export const CHUNK = 64 << 20;

/** The syscalls copyData makes. Tests may replace an entry and must put it back. */
export const copySys = {
  ficlone: (dst: number, src: number): void => native.ficlone(dst, src),
  copyFileRange: (src: number, srcOff: number, dst: number, dstOff: number, len: number): number =>
    native.copyFileRange(src, srcOff, dst, dstOff, len),
  lseek: (fd: number, offset: number, whence: number): number => native.lseek(fd, offset, whence),
  syncFileRange: (fd: number, offset: number, nbytes: number, flags: number): void =>
    native.syncFileRange(fd, offset, nbytes, flags),
  read: (fd: number, buf: Buffer, len: number, pos: number): number => fs.readSync(fd, buf, 0, len, pos),
  write: (fd: number, buf: Buffer, off: number, len: number, pos: number): number => fs.writeSync(fd, buf, off, len, pos),
  ftruncate: (fd: number, size: number): void => fs.ftruncateSync(fd, size),
  /** The fsync that makes a copy-up durable before its rename into place (see engine/copy-up). */
  fsync: (fd: number): void => fs.fsyncSync(fd),
  /** Commit a whole filesystem at once (a copied directory tree, before its rename into place). */
  syncfs: (fd: number): void => native.syncfs(fd),
};

/** FICLONE errors that mean "this filesystem (pair) cannot": remembered. */
const CLONE_NEVER = ['EOPNOTSUPP', 'ENOTSUP', 'EXDEV', 'ENOTTY', 'ENOSYS'] as const;
/** FICLONE errors for this file only (e.g. a swap file, an odd alignment): fall back this once. */
const CLONE_NOT_NOW = ['EINVAL', 'EPERM', 'EBADF', 'ETXTBSY'] as const;
/** copy_file_range errors after which read/write is used; the first three are remembered. */
const RANGE_NEVER = ['EXDEV', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP'] as const;
const RANGE_NOT_NOW = ['EINVAL'] as const;

let rwBuf: Buffer | null = null;

/**
 * Copy `size` bytes of `src` into `dst` (a new, empty file; both fds, dst opened for writing,
 * not O_APPEND). Leaves dst exactly `size` bytes long (shorter if src shrank meanwhile).
 * Errors other than the refusals above (ENOSPC, EIO, ...) are thrown; the caller removes dst.
 */
export function copyData(src: number, dst: number, size: number, opts: CopyOptions = {}): CopyMethod {
  if (size === 0) return 'empty';
  const caps = opts.caps ?? {};
  let cloned = false;
  if (!caps.noClone) {
    try {
      copySys.ficlone(dst, src);
      cloned = true;
      if (!opts.tap) return 'ficlone';
    } catch (e) {
      if (isCode(e, ...CLONE_NEVER)) caps.noClone = true;
      else if (!isCode(e, ...CLONE_NOT_NOW)) throw e;
    }
  }
  if (opts.tap) return tapped(src, dst, size, opts.tap, cloned, opts.sparse === true);
  const c = new Copier(src, dst, caps, opts.writeback === true);
  if (!opts.sparse) {
    c.range(0, size);
    return c.method;
  }
  let pos = 0;
  while (pos < size) {
    let start: number;
    try {
      start = copySys.lseek(src, pos, native.SEEK_DATA);
    } catch (e) {
      if (isCode(e, 'ENXIO')) break; // only a hole is left
      if (!isCode(e, 'EINVAL', 'EOPNOTSUPP')) throw e;
      start = pos; // no SEEK_DATA here: all data
    }
    if (start >= size) break;
    let end: number;
    try {
      end = Math.min(copySys.lseek(src, start, native.SEEK_HOLE), size);
    } catch (e) {
      if (isCode(e, 'ENXIO')) break; // shrank under us
      if (!isCode(e, 'EINVAL', 'EOPNOTSUPP')) throw e;
      end = size;
    }
    if (c.range(start, end) < end) break; // src shrank
    pos = end;
  }
  // The hole at the end (or a file of holes only) is made by the size alone.
  if (c.end < size) copySys.ftruncate(dst, size);
  return c.method;
}

/**
 * `size` bytes of src shown to `tap` in order; written to dst too unless it is a reflink already.
 * Returns early (dst shorter) when src shrank.
 */
function tapped(src: number, dst: number, size: number, tap: (chunk: Buffer) => void, cloned: boolean, sparse: boolean): CopyMethod {
  const buf = (rwBuf ??= Buffer.allocUnsafe(1 << 20));
  let off = 0;
  let end = 0; // end of the last byte written
  while (off < size) {
    const n = copySys.read(src, buf, Math.min(buf.length, size - off), off);
    if (n === 0) break;
    const chunk = buf.subarray(0, n);
    tap(chunk);
    if (!cloned && !(sparse && isZero(chunk))) {
      let w = 0;
      while (w < n) w += copySys.write(dst, buf, w, n - w, off + w);
      end = off + n;
    }
    off += n;
  }
  if (!cloned && end < off) copySys.ftruncate(dst, off);
  return cloned ? 'ficlone' : 'readwrite';
}

const ZERO = Buffer.alloc(1 << 16);

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += ZERO.length) {
    const part = b.subarray(i, Math.min(b.length, i + ZERO.length));
    if (!part.equals(ZERO.subarray(0, part.length))) return false;
  }
  return true;
}

/** Copies byte ranges, copy_file_range first, read/write once refused. */
class Copier {
  method: CopyMethod = 'empty';
  /** End of the last byte written. */
  end = 0;
  /** Bytes copied since the last writeback kick, and where the first of them went. */
  private pending = 0;
  private pendingFrom = 0;

  constructor(
    private readonly src: number,
    private readonly dst: number,
    private readonly caps: CopyCaps,
    private writeback: boolean,
  ) {}

  /** Copy [from, to); returns where it stopped (< to only when src ended early). */
  range(from: number, to: number): number {
    let off = from;
    if (!this.caps.noCopyRange) {
      try {
        while (off < to) {
          // Whole rest per call, unless chunks are kicked to writeback one by one.
          const want = this.writeback ? Math.min(to - off, CHUNK) : to - off;
          const n = copySys.copyFileRange(this.src, off, this.dst, off, want);
          if (n === 0) break;
          this.method = 'copy_file_range';
          off += n;
          this.end = off;
          this.kick(n);
        }
        return off;
      } catch (e) {
        if (isCode(e, ...RANGE_NEVER)) this.caps.noCopyRange = true;
        else if (!isCode(e, ...RANGE_NOT_NOW)) throw e;
      }
    }
    return this.readWrite(off, to);
  }

  private readWrite(from: number, to: number): number {
    const buf = (rwBuf ??= Buffer.allocUnsafe(1 << 20));
    let off = from;
    while (off < to) {
      const n = copySys.read(this.src, buf, Math.min(buf.length, to - off), off);
      if (n === 0) break;
      let w = 0;
      while (w < n) w += copySys.write(this.dst, buf, w, n - w, off + w);
      this.method = 'readwrite';
      off += n;
      this.end = off;
      this.kick(n);
    }
    return off;
  }

  /**
   * `n` bytes were just copied, ending at `end`. Start writeback of what was copied since the last
   * kick once that is CHUNK bytes or more (a small file is fsync'ed right after anyway; holes in
   * between cost nothing).
   */
  private kick(n: number): void {
    if (!this.writeback) return;
    if (this.pending === 0) this.pendingFrom = this.end - n;
    this.pending += n;
    if (this.pending < CHUNK) return;
    try {
      copySys.syncFileRange(this.dst, this.pendingFrom, this.end - this.pendingFrom, native.SYNC_FILE_RANGE_WRITE);
      this.pending = 0;
    } catch {
      this.writeback = false; // only an optimisation
    }
  }
}
