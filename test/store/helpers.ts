/** Test helpers for the store: temp stores, in-memory tar archives, raw tree snapshots. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tar from 'tar-stream';

export function tempDir(prefix = 'layerfs-store-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export type TarEntry = Partial<tar.Header> & { name: string; body?: string | Buffer; pax?: Record<string, string> };

/** Builds a tar archive in memory from `entries` (in the given order). */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(Buffer.from(c as Buffer));
    });
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    const { body, ...h } = e;
    const b = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
    await new Promise<void>((resolve, reject) =>
      pack.entry({ mode: h.type === 'directory' ? 0o755 : 0o644, mtime: new Date(1_600_000_000_000), ...h }, b, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function* once(buf: Buffer): AsyncGenerator<Buffer> {
  yield buf;
}

export async function collect(s: AsyncIterable<unknown>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(Buffer.from(c as Buffer));
  return Buffer.concat(out);
}

export function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** A raw snapshot of a tree: path -> "type mode uid:gid [content|target|rdev]". */
export function snapshot(dir: string, opts: { times?: boolean } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const n of fs.readdirSync(d).sort()) {
      const abs = path.join(d, n);
      const r = rel === '' ? n : `${rel}/${n}`;
      const st = fs.lstatSync(abs);
      const perm = (st.mode & 0o7777).toString(8);
      const t = opts.times ? ` t=${Math.floor(st.mtimeMs / 1000)}` : '';
      if (st.isDirectory()) {
        out[r] = `dir ${perm} ${st.uid}:${st.gid}${t}`;
        walk(abs, r);
      } else if (st.isSymbolicLink()) out[r] = `symlink ${st.uid}:${st.gid} -> ${fs.readlinkSync(abs)}`;
      else if (st.isFile()) out[r] = `file ${perm} ${st.uid}:${st.gid}${t} ${sha256(fs.readFileSync(abs)).slice(7, 19)}`;
      else if (st.isFIFO()) out[r] = `fifo ${perm}`;
      else if (st.isCharacterDevice()) out[r] = `chr ${perm} ${st.rdev}`;
      else if (st.isBlockDevice()) out[r] = `blk ${perm} ${st.rdev}`;
      else out[r] = 'other';
    }
  };
  walk(dir, '');
  return out;
}

/** Every path under `dir` (for "nothing written outside" checks). */
export function listAll(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const n of fs.readdirSync(d).sort()) {
      const r = rel === '' ? n : `${rel}/${n}`;
      out.push(r);
      if (fs.lstatSync(path.join(d, n)).isDirectory()) walk(path.join(d, n), r);
    }
  };
  walk(dir, '');
  return out;
}

export interface TarListing {
  name: string;
  type: string;
  mode: number;
  /** `SCHILY.xattr.*` PAX records, name -> value. */
  xattrs: Record<string, string>;
}

/** The entries of an (uncompressed) tar archive, in order, with their xattrs. */
export async function listTar(buf: Buffer): Promise<TarListing[]> {
  const out: TarListing[] = [];
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const xattrs: Record<string, string> = {};
      for (const [k, v] of Object.entries(h.pax ?? {})) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice('SCHILY.xattr.'.length)] = v;
      out.push({ name: h.name, type: h.type ?? 'file', mode: h.mode ?? 0, xattrs });
      stream.on('end', next);
      stream.resume();
    });
    ex.on('finish', () => resolve());
    ex.on('error', reject);
  });
  ex.end(buf);
  await done;
  return out;
}
