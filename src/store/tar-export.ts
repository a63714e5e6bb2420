/**
 * Writes a stored layer (AUFS format) as an OCI tar layer, byte for byte reproducible:
 * entries in sorted order (a directory, then its opaque marker, then its children sorted by
 * bytes), ustar headers with empty uname/gname, whole-second mtimes, no atime/ctime, PAX only for
 * xattrs (sorted) and long names. Whiteouts (`.wh.NAME` files, or overlay char 0/0 devices) become
 * OCI `.wh.NAME` entries; opaque dirs (`.wh..wh..opq`, or `trusted.overlay.opaque=y`) get
 * `.wh..wh..opq`; other `.wh..wh.*` (private state) are left out. Hard links are kept.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { OPAQUE, WH_PREFIX, WH_PRIVATE_PREFIX } from './tar-import.js';
import { readXattrTree } from './xattr.js';
import { spawnSync } from 'node:child_process';

type PaxHeaders = Partial<tar.Header> & { name: string; pax?: Record<string, string> };

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function hasOverlayOpaque(abs: string): boolean {
  const r = spawnSync('getfattr', ['-h', '--only-values', '-n', 'trusted.overlay.opaque', '--', abs]);
  return r.status === 0 && r.stdout.toString() === 'y';
}

function mtimeOf(st: fs.Stats): Date {
  return new Date(Math.floor(st.mtimeMs / 1000) * 1000);
}

function readSmall(abs: string, size: number): Buffer {
  const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = fs.readSync(fd, buf, off, size - off, null);
      if (n === 0) throw new Error(`file shrank while exporting: ${abs}`);
      off += n;
    }
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

export interface ExportOptions {
  /** Called with the file bytes written so far. */
  onBytes?: (n: number) => void;
}

/** The OCI tar of layer directory `dir`, as a stream. */
export function exportLayer(dir: string, opts: ExportOptions = {}): Readable {
  const pack = tar.pack();
  const out = new PassThrough();
  pack.pipe(out);
  const xattrs = readXattrTree(dir);
  const links = new Map<string, string>();
  let written = 0;

  function header(rel: string, st: fs.Stats, extra: Omit<Partial<tar.Header>, 'pax'>): PaxHeaders {
    const h: PaxHeaders = {
      name: rel,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: mtimeOf(st),
      uname: '',
      gname: '',
      ...extra,
    };
    const x = xattrs.get(rel);
    if (x && x.size > 0) {
      const pax: Record<string, string> = {};
      for (const name of [...x.keys()].sort(byBytes)) pax[`SCHILY.xattr.${name}`] = x.get(name)!.toString('utf8');
      h.pax = pax;
    }
    return h;
  }

  function entry(h: PaxHeaders, body?: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      pack.entry(h, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }

  async function file(h: PaxHeaders, abs: string): Promise<void> {
    let done!: Promise<void>;
    const s = pack.entry(h, (err) => {
      done = err ? Promise.reject(err) : Promise.resolve();
    });
    const finished = new Promise<void>((resolve, reject) => {
      s.on('finish', () => resolve());
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      let left = h.size ?? 0;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(1 << 20, left));
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        left -= n;
        written += n;
        opts.onBytes?.(written);
        if (!s.write(n === buf.length ? buf : buf.subarray(0, n))) await new Promise<void>((r) => s.once('drain', () => r()));
      }
      if (left > 0) throw new Error(`file shrank while exporting: ${abs}`);
    } finally {
      fs.closeSync(fd);
    }
    s.end(undefined);
    await finished;
    if (done) await done;
  }

  async function walk(absDir: string, relDir: string): Promise<void> {
    const names = fs.readdirSync(absDir).sort(byBytes);
    const prefix = relDir === '' ? '' : `${relDir}/`;
    if (names.includes(OPAQUE) || (relDir !== '' && hasOverlayOpaque(absDir))) {
      const st = names.includes(OPAQUE) ? fs.lstatSync(path.join(absDir, OPAQUE)) : fs.lstatSync(absDir);
      await entry(
        { name: prefix + OPAQUE, mode: 0o644, uid: 0, gid: 0, mtime: mtimeOf(st), uname: '', gname: '', type: 'file', size: 0 },
      );
    }
    for (const name of names) {
      if (name.startsWith(WH_PRIVATE_PREFIX)) continue; // opaque handled above, the rest is private
      const abs = path.join(absDir, name);
      const rel = prefix + name;
      const st = fs.lstatSync(abs);
      if (name.startsWith(WH_PREFIX)) {
        if (!st.isFile()) continue;
        await entry({ name: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: mtimeOf(st), uname: '', gname: '', type: 'file', size: 0 });
        continue;
      }
      if (st.isCharacterDevice() && st.rdev === 0) {
        // overlay-format whiteout
        await entry({ name: prefix + WH_PREFIX + name, mode: 0o644, uid: 0, gid: 0, mtime: mtimeOf(st), uname: '', gname: '', type: 'file', size: 0 });
        continue;
      }
      if (st.isDirectory()) {
        await entry(header(rel + '/', st, { type: 'directory', size: 0 }));
        await walk(abs, rel);
        continue;
      }
      if (!st.isDirectory() && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = links.get(key);
        if (first !== undefined) {
          await entry(header(rel, st, { type: 'link', linkname: first, size: 0 }));
          continue;
        }
        links.set(key, rel);
      }
      if (st.isFile() && st.size <= 1 << 20) {
        const body = readSmall(abs, st.size);
        written += body.length;
        opts.onBytes?.(written);
        await entry(header(rel, st, { type: 'file', size: body.length }), body);
      } else if (st.isFile()) await file(header(rel, st, { type: 'file', size: st.size }), abs);
      else if (st.isSymbolicLink()) await entry(header(rel, st, { type: 'symlink', linkname: fs.readlinkSync(abs), size: 0 }));
      else if (st.isFIFO()) await entry(header(rel, st, { type: 'fifo', size: 0 }));
      else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const major = Math.floor(st.rdev / 256) & 0xfff;
        const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
        await entry(
          header(rel, st, { type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major, devminor: minor, size: 0 }),
        );
      }
      // sockets are not archived
    }
  }

  walk(dir, '').then(
    () => pack.finalize(),
    (e: unknown) => out.destroy(e instanceof Error ? e : new Error(String(e))),
  );
  return out;
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
