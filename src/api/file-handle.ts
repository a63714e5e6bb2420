/**
 * `FileHandle` of the in-process API: like node:fs/promises' FileHandle (read, write, stat,
 * truncate, readFile, writeFile, appendFile, close...), backed by an engine file handle.
 * There is no process fd: the engine's handle is the identity. A directory can be opened
 * read-only (stat works, read answers EISDIR) as on Linux.
 */
import { FsError, toFsError } from '../errors/index.js';
import type { Attr, Ctx, FileHandleLike, UnionNodeLike } from '../engine/types.js';
import { encodingOf, isWritable, toBuffer, toTimeSpec, type Data, type TimeLike } from './data.js';
import { O_APPEND } from '../sys/constants.js';
import type { Engine } from './resolve.js';
import { BigIntStats, Stats } from './stats.js';

const CHUNK = 128 * 1024;

export class FileHandle {
  #engine: Engine;
  #ctx: Ctx;
  #node: UnionNodeLike;
  #fh: FileHandleLike | undefined;
  #flags: number;
  #pos = 0;
  #closed = false;

  /** @internal use UnionFS.open() */
  constructor(engine: Engine, ctx: Ctx, node: UnionNodeLike, fh: FileHandleLike | undefined, flags: number) {
    this.#engine = engine;
    this.#ctx = ctx;
    this.#node = node;
    this.#fh = fh;
    this.#flags = flags;
  }

  /** No process fd exists for a union file; -1 like a closed node FileHandle. */
  get fd(): number {
    return -1;
  }

  #live(syscall: string): FileHandleLike {
    if (this.#closed) throw new FsError('EBADF', syscall);
    if (!this.#fh) throw new FsError('EISDIR', syscall);
    return this.#fh;
  }

  #wrap<T>(syscall: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      const err = toFsError(e);
      throw err.syscall === syscall && err.path === undefined ? err : err.withContext(syscall);
    }
  }

  /** read(buffer, offset?, length?, position?) or read({ buffer, offset, length, position }). */
  async read(
    buffer?: Buffer | NodeJS.ArrayBufferView | { buffer?: NodeJS.ArrayBufferView; offset?: number; length?: number; position?: number | null },
    offset?: number,
    length?: number,
    position?: number | null,
  ): Promise<{ bytesRead: number; buffer: Buffer }> {
    let buf: Buffer;
    if (buffer === undefined || (!ArrayBuffer.isView(buffer) && typeof buffer === 'object')) {
      const o = (buffer ?? {}) as { buffer?: NodeJS.ArrayBufferView; offset?: number; length?: number; position?: number | null };
      buf = o.buffer ? toBuffer(o.buffer) : Buffer.alloc(16384);
      offset = o.offset;
      length = o.length;
      position = o.position;
    } else {
      buf = toBuffer(buffer);
    }
    const off = offset ?? 0;
    const len = length ?? buf.length - off;
    const n = this.#readAt(buf, off, len, position ?? null);
    return { bytesRead: n, buffer: buf };
  }

  #readAt(buf: Buffer, off: number, len: number, position: number | null): number {
    return this.#wrap('read', () => {
      const fh = this.#live('read');
      if (len === 0) return 0;
      const at = position === null || position < 0 ? this.#pos : position;
      const n = this.#engine.read(fh, buf, off, len, at);
      if (position === null || position < 0) this.#pos += n;
      return n;
    });
  }

  /** write(buffer, offset?, length?, position?) or write(string, position?, encoding?). */
  async write(
    data: Data,
    offsetOrPosition?: number | null,
    lengthOrEncoding?: number | BufferEncoding,
    position?: number | null,
  ): Promise<{ bytesWritten: number; buffer: Buffer | string }> {
    if (typeof data === 'string') {
      const enc = typeof lengthOrEncoding === 'string' ? lengthOrEncoding : 'utf8';
      const buf = Buffer.from(data, enc);
      const n = this.#writeAll(buf, 0, buf.length, offsetOrPosition ?? null);
      return { bytesWritten: n, buffer: data };
    }
    const buf = toBuffer(data);
    const off = offsetOrPosition ?? 0;
    const len = typeof lengthOrEncoding === 'number' ? lengthOrEncoding : buf.length - off;
    const n = this.#writeAll(buf, off, len, position ?? null);
    return { bytesWritten: n, buffer: buf };
  }

  #writeAll(buf: Buffer, off: number, len: number, position: number | null): number {
    return this.#wrap('write', () => {
      const fh = this.#live('write');
      if (!isWritable(this.#flags)) throw new FsError('EBADF', 'write');
      const append = (this.#flags & O_APPEND) !== 0;
      let at = append ? this.#engine.getattr(this.#node).size : position === null || position < 0 ? this.#pos : position;
      let done = 0;
      while (done < len) {
        const n = this.#engine.write(fh, buf, off + done, len - done, at);
        if (n <= 0) throw new FsError('EIO', 'write');
        done += n;
        at += n;
      }
      if (append || position === null || position < 0) this.#pos = at;
      return done;
    });
  }

  /** @internal synchronous read at `position` (for copyFile). */
  readSync(buf: Buffer, position: number): number {
    return this.#readAt(buf, 0, buf.length, position);
  }

  /** @internal synchronous full write at `position` (for copyFile). */
  writeSync(buf: Buffer, position: number): number {
    return this.#writeAll(buf, 0, buf.length, position);
  }

  /** @internal */
  statSync(): Attr {
    if (this.#closed) throw new FsError('EBADF', 'fstat');
    return this.#engine.getattr(this.#node);
  }

  /** @internal */
  chmodSync(mode: number): void {
    this.#engine.setattr(this.#node, { mode: mode & 0o7777 }, this.#ctx, this.#fh);
  }

  async stat(opts?: { bigint?: false }): Promise<Stats>;
  async stat(opts: { bigint: true }): Promise<BigIntStats>;
  async stat(opts?: { bigint?: boolean }): Promise<Stats | BigIntStats>;
  async stat(opts?: { bigint?: boolean }): Promise<Stats | BigIntStats> {
    return this.#wrap('fstat', () => {
      if (this.#closed) throw new FsError('EBADF', 'fstat');
      const a = this.#engine.getattr(this.#node);
      return opts?.bigint ? new BigIntStats(a) : new Stats(a);
    });
  }

  async truncate(len = 0): Promise<void> {
    this.#wrap('ftruncate', () => {
      const fh = this.#live('ftruncate');
      if (!isWritable(this.#flags)) throw new FsError('EINVAL', 'ftruncate');
      this.#engine.setattr(this.#node, { size: Math.max(0, len) }, this.#ctx, fh);
    });
  }

  async chmod(mode: number): Promise<void> {
    this.#wrap('fchmod', () => {
      if (this.#closed) throw new FsError('EBADF', 'fchmod');
      this.#engine.setattr(this.#node, { mode: mode & 0o7777 }, this.#ctx, this.#fh);
    });
  }

  async chown(uid: number, gid: number): Promise<void> {
    this.#wrap('fchown', () => {
      if (this.#closed) throw new FsError('EBADF', 'fchown');
      this.#engine.setattr(this.#node, { ...(uid >= 0 ? { uid } : {}), ...(gid >= 0 ? { gid } : {}) }, this.#ctx, this.#fh);
    });
  }

  async utimes(atime: TimeLike, mtime: TimeLike): Promise<void> {
    this.#wrap('futime', () => {
      if (this.#closed) throw new FsError('EBADF', 'futime');
      this.#engine.setattr(this.#node, { atime: toTimeSpec(atime), mtime: toTimeSpec(mtime) }, this.#ctx, this.#fh);
    });
  }

  async sync(): Promise<void> {
    this.#wrap('fsync', () => this.#engine.fsync(this.#live('fsync'), false));
  }

  async datasync(): Promise<void> {
    this.#wrap('fdatasync', () => this.#engine.fsync(this.#live('fdatasync'), true));
  }

  /** Rest of the file from the current position. */
  async readFile(options?: BufferEncoding | { encoding?: BufferEncoding | null } | null): Promise<Buffer | string> {
    const chunks: Buffer[] = [];
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK);
      const n = this.#readAt(buf, 0, CHUNK, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
    }
    const all = Buffer.concat(chunks);
    const enc = encodingOf(options ?? undefined);
    return enc ? all.toString(enc) : all;
  }

  async writeFile(data: Data, options?: BufferEncoding | { encoding?: BufferEncoding | null } | null): Promise<void> {
    const buf = toBuffer(data, encodingOf(options ?? undefined) ?? 'utf8');
    this.#writeAll(buf, 0, buf.length, null);
  }

  async appendFile(data: Data, options?: BufferEncoding | { encoding?: BufferEncoding | null } | null): Promise<void> {
    return this.writeFile(data, options);
  }

  async close(): Promise<void> {
    this.closeSync();
  }

  /** @internal */
  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    const fh = this.#fh;
    this.#fh = undefined;
    if (fh) {
      this.#wrap('close', () => {
        try {
          this.#engine.flush(fh);
        } finally {
          this.#engine.release(fh);
        }
      });
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
