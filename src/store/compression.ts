/**
 * Compression of tar layers, detected by magic bytes: gzip (zlib), zstd (fzstd), or plain tar.
 * Anything else (xz, bzip2, garbage) is refused with a one-line error before a byte is extracted.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { storeErr } from './store-error.js';

export type Compression = 'none' | 'gzip' | 'zstd';

function startsWith(buf: Buffer, magic: number[]): boolean {
  return buf.length >= magic.length && magic.every((b, i) => buf[i] === b);
}

function tarChecksumOk(block: Buffer): boolean {
  if (block.length < 512) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim();
  return field !== '' && parseInt(field, 8) === sum;
}

/** Which compression `head` (the first bytes, 512 or all if shorter) starts with. */
export function detectCompression(head: Buffer): Compression {
  if (startsWith(head, [0x1f, 0x8b])) return 'gzip';
  if (startsWith(head, [0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  if (startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) throw storeErr('ENOTSUP', 'unsupported compression: xz');
  if (startsWith(head, [0x42, 0x5a, 0x68])) throw storeErr('ENOTSUP', 'unsupported compression: bzip2');
  if (head.length >= 512 && (head.subarray(0, 512).every((b) => b === 0) || tarChecksumOk(head))) return 'none';
  throw storeErr('EINVAL', 'unknown compression or not a tar archive');
}

class ZstdDecompress extends Transform {
  private readonly z: Decompress;
  private done = false;
  constructor() {
    super();
    this.z = new Decompress((chunk, final) => {
      this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      if (final) this.done = true;
    });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.z.push(new Uint8Array(chunk));
      cb();
    } catch {
      cb(storeErr('EINVAL', 'corrupt zstd data'));
    }
  }
  override _flush(cb: TransformCallback): void {
    try {
      if (!this.done) this.z.push(new Uint8Array(0), true);
      cb();
    } catch {
      cb(storeErr('EINVAL', 'truncated zstd data'));
    }
  }
}

/**
 * Reads the first bytes of `input`, detects its compression and returns the uncompressed stream.
 */
export async function decompressed(input: AsyncIterable<Buffer>): Promise<{ stream: Readable; compression: Compression }> {
  const it = input[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let have = 0;
  let ended = false;
  while (have < 512) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    chunks.push(b);
    have += b.length;
  }
  const head = Buffer.concat(chunks);
  const compression = detectCompression(head);
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    if (ended) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    }
  }
  const raw = Readable.from(all(), { objectMode: false });
  if (compression === 'none') return { stream: raw, compression };
  const dec = compression === 'gzip' ? createGunzip() : new ZstdDecompress();
  raw.on('error', (e) => dec.destroy(e));
  dec.on('error', () => raw.destroy());
  raw.pipe(dec);
  if (compression === 'gzip') {
    // zlib's own messages become one store error
    const out = new Transform({
      transform(chunk: Buffer, _e, cb) {
        cb(null, chunk);
      },
    });
    dec.on('error', () => out.destroy(storeErr('EINVAL', 'corrupt or truncated gzip data')));
    dec.pipe(out);
    return { stream: out, compression };
  }
  return { stream: dec, compression };
}
