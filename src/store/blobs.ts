/** Content-addressed blobs for image export: a layer as gzip tar with its DiffID and digest. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { tmpName } from './atomic.js';

export interface LayerBlob {
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** sha256 of the file written. */
  digest: string;
  size: number;
  /** Where the blob was written. */
  file: string;
}

function hashing(h: ReturnType<typeof createHash>, count: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      count.n += chunk.length;
      cb(null, chunk);
    },
  });
}

/** Writes `tar` into `dir` (gzip-compressed when `gzip`), hashing both forms. */
export async function writeLayerBlob(tarStream: Readable, dir: string, gzip: boolean): Promise<LayerBlob> {
  const file = path.join(dir, `.blob-${tmpName()}`);
  const dh = createHash('sha256');
  const ch = createHash('sha256');
  const raw = { n: 0 };
  const out = { n: 0 };
  if (gzip) await pipeline(tarStream, hashing(dh, raw), createGzip({ level: 6 }), hashing(ch, out), fs.createWriteStream(file));
  else await pipeline(tarStream, hashing(dh, raw), fs.createWriteStream(file));
  const diffId = `sha256:${dh.digest('hex')}`;
  return gzip
    ? { diffId, digest: `sha256:${ch.digest('hex')}`, size: out.n, file }
    : { diffId, digest: diffId, size: raw.n, file };
}

/** sha256 of a file, `sha256:<hex>`. */
export async function fileDigest(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of fs.createReadStream(file)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

export function goArch(): string {
  const m: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return m[process.arch] ?? process.arch;
}

/** The image config to write: the stored one (diff_ids refreshed, history dropped) or a minimal one. */
export function imageConfig(stored: Record<string, unknown> | undefined, diffIds: string[], created: string): Record<string, unknown> {
  const c: Record<string, unknown> = stored ? { ...stored } : { created, architecture: goArch(), os: 'linux', config: {} };
  if (c.architecture === undefined) c.architecture = goArch();
  if (c.os === undefined) c.os = 'linux';
  delete c.history;
  c.rootfs = { type: 'layers', diff_ids: diffIds };
  return c;
}

export function digestHex(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new Error(`unsupported digest ${digest}`);
  return m[1]!;
}
