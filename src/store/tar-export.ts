/**
 * Writes a stored layer (AUFS format) as an OCI tar layer, byte for byte reproducible:
 * entries in sorted order (a directory, then its opaque marker, then its children sorted by
 * bytes), ustar headers with empty uname/gname, whole-second mtimes, no atime/ctime, PAX only for
 * xattrs (sorted) and long names. Whiteouts (`.wh.NAME` files, or overlay char 0/0 devices) become
 * OCI `.wh.NAME` entries; opaque dirs (`.wh..wh..opq`, or `trusted.overlay.opaque=y`) get
 * `.wh..wh..opq`; other `.wh..wh.*` (private state) are left out. Hard links are kept.
 * Whiteouts, opaque dirs and private xattrs are recognised by the engine's functions
 * (`engine/whiteout.ts`), so a container's rw dir exports as the union shows it.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { Branch } from '../branch/index.js';
import { OPQ, WH, WH_META, isOverlayWhiteout, isPrivateXattr, whiteoutTarget } from '../format/index.js';
import { isOpaque } from '../engine/whiteout.js';
import { readXattrs } from './xattr.js';
import { END_OF_ARCHIVE, headerBlocks, padding, type EntryType, type TarHeader } from './tar-format.js';

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function secs(st: fs.Stats): number {
  return Math.floor(st.mtimeMs / 1000);
}

export interface ExportOptions {
  /** Called with the file bytes written so far. */
  onBytes?: (n: number) => void;
}

/** What an entry's lstat says, as the export reads it (number or bigint stats). */
export interface EntryStat {
  mode: number;
  uid: number;
  gid: number;
  /** Whole seconds (floor). */
  mtime: number;
}

export function entryStat(st: fs.Stats | fs.BigIntStats): EntryStat {
  if (typeof st.mode === 'bigint') {
    const b = st as fs.BigIntStats;
    const ns = b.mtimeNs;
    let sec = ns / 1_000_000_000n;
    if (ns < 0n && sec * 1_000_000_000n !== ns) sec -= 1n;
    return { mode: Number(b.mode), uid: Number(b.uid), gid: Number(b.gid), mtime: Number(sec) };
  }
  const n = st as fs.Stats;
  return { mode: n.mode, uid: n.uid, gid: n.gid, mtime: secs(n) };
}

/** Major/minor of a device number as tar stores them. */
export function deviceNumbers(rdev: number): { devmajor: number; devminor: number } {
  return { devmajor: Math.floor(rdev / 256) & 0xfff, devminor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
}

/**
 * The tar header of one entry (not a whiteout) at host path `abs`, named `rel` (dirs end in `/`):
 * mode, owner, whole-second mtime from its lstat `st`, its xattrs except private ones, sorted.
 */
export function entryHeader(abs: string, rel: string, st: fs.Stats | fs.BigIntStats, type: EntryType, extra: Partial<TarHeader> = {}): TarHeader {
  const e = entryStat(st);
  const h: TarHeader = { name: rel, type, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, size: 0, mtime: e.mtime, ...extra };
  const x = readXattrs(abs);
  const keys = [...x.keys()].filter((k) => !isPrivateXattr(k, true)).sort(byBytes);
  if (keys.length > 0) h.xattrs = keys.map((k) => [k, x.get(k)!]);
  return h;
}

/**
 * The header blocks of a whiteout or opaque marker `name`: an empty file with the entry's own
 * mode and owner (`own`, an AUFS whiteout file) or 0644 root (overlay whiteouts, opaque markers).
 */
export function whiteoutBlocks(name: string, st: fs.Stats | fs.BigIntStats, own: boolean): Buffer {
  const e = entryStat(st);
  return headerBlocks({ name, type: 'file', mode: own ? e.mode & 0o7777 : 0o644, uid: own ? e.uid : 0, gid: own ? e.gid : 0, size: 0, mtime: e.mtime });
}

/** The OCI tar of layer directory `dir`, as a stream. */
export function exportLayer(dir: string, opts: ExportOptions = {}): Readable {
  return Readable.from(batched(entries(dir, opts)), { objectMode: false });
}

/** Joins small pieces (headers, small files) into chunks of at least 256 KiB: fewer writes. */
async function* batched(src: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const b of src) {
    if (b.length >= 1 << 18 && size === 0) {
      yield b;
      continue;
    }
    parts.push(b);
    size += b.length;
    if (size >= 1 << 18) {
      yield Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(parts, size);
}

async function* entries(dir: string, opts: ExportOptions): AsyncGenerator<Buffer> {
  const layer = new Branch(dir, 'ro', [], 0);
  const links = new Map<string, string>();
  let written = 0;

  const header = (rel: string, st: fs.Stats, type: EntryType, extra: Partial<TarHeader> = {}): TarHeader =>
    entryHeader(path.join(dir, type === 'dir' ? rel.slice(0, -1) : rel), rel, st, type, extra);
  const whiteout = (name: string, st: fs.Stats, own: boolean): Buffer => whiteoutBlocks(name, st, own);

  async function* fileData(abs: string, size: number): AsyncGenerator<Buffer> {
    const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      let left = size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(1 << 20, left));
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) throw new Error(`file shrank while exporting: ${abs}`);
        left -= n;
        written += n;
        opts.onBytes?.(written);
        yield n === buf.length ? buf : buf.subarray(0, n);
      }
    } finally {
      fs.closeSync(fd);
    }
    const pad = padding(size);
    if (pad.length > 0) yield pad;
  }

  async function* walk(absDir: string, relDir: string): AsyncGenerator<Buffer> {
    const names = fs.readdirSync(absDir).sort(byBytes);
    const prefix = relDir === '' ? '' : `${relDir}/`;
    const marker = names.includes(OPQ); // the AUFS form; the overlay xattr is not honoured on the root
    if ((marker || relDir !== '') && isOpaque(layer, relDir)) {
      // the entry's mtime: the AUFS marker's, else (overlay xattr) the dir's
      yield whiteout(prefix + OPQ, fs.lstatSync(marker ? path.join(absDir, OPQ) : absDir), false);
    }
    for (const name of names) {
      if (name.startsWith(WH_META)) continue; // opaque handled above, the rest is private
      const abs = path.join(absDir, name);
      const rel = prefix + name;
      const st = fs.lstatSync(abs);
      if (whiteoutTarget(name) !== undefined) {
        if (st.isFile()) yield whiteout(rel, st, true);
        continue;
      }
      if (isOverlayWhiteout(st)) {
        yield whiteout(prefix + WH + name, st, false); // overlay-format whiteout
        continue;
      }
      if (st.isDirectory()) {
        yield headerBlocks(header(rel + '/', st, 'dir'));
        yield* walk(abs, rel);
        continue;
      }
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = links.get(key);
        if (first !== undefined) {
          yield headerBlocks(header(rel, st, 'link', { linkname: first }));
          continue;
        }
        links.set(key, rel);
      }
      if (st.isFile()) {
        yield headerBlocks(header(rel, st, 'file', { size: st.size }));
        yield* fileData(abs, st.size);
      } else if (st.isSymbolicLink()) yield headerBlocks(header(rel, st, 'symlink', { linkname: fs.readlinkSync(abs) }));
      else if (st.isFIFO()) yield headerBlocks(header(rel, st, 'fifo'));
      else if (st.isCharacterDevice() || st.isBlockDevice()) yield headerBlocks(header(rel, st, st.isCharacterDevice() ? 'chr' : 'blk', deviceNumbers(st.rdev)));
      // sockets are not archived
    }
  }

  try {
    yield* walk(dir, '');
  } finally {
    layer.close();
  }
  yield END_OF_ARCHIVE;
}

/** Digest and size of a stream, consuming it (optionally teeing it into `sink`). */
export async function digestStream(s: Readable, sink?: NodeJS.WritableStream): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of s) {
    const b = c as Buffer;
    h.update(b);
    size += b.length;
    if (sink && !sink.write(b)) await new Promise((r) => sink.once('drain', r));
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}
