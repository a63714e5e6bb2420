/**
 * /dev/fuse I/O: a synchronous read -> handle -> write loop (run it in a worker thread; it blocks).
 *
 * - The read buffer holds the largest request: header + write_in + max_write (+ slack).
 * - Reads failing ENOENT (request interrupted), EINTR or EAGAIN are retried; ENODEV means the
 *   filesystem was unmounted: the loop ends.
 * - FORGET, BATCH_FORGET and INTERRUPT get no reply. A reply write failing ENOENT (the request was
 *   interrupted meanwhile) is ignored.
 */
import { readSync, writeSync } from 'node:fs';
import { readSpin, setNonBlocking, writeRaw } from '../sys/native.js';
import { FsError, codeOf, errnoCode, errnoOf } from '../errors/index.js';
import { Op, Size, isNoReply, opName } from './abi.js';
import { decodeInHeader, encodeOutHeader, type InHeader } from './codec.js';

/** What serves requests: returns the body length written at out[16..], a negative errno, or noReply. */
export interface RequestHandler {
  dispatch(hd: InHeader, inBuf: Buffer, end: number, out: Buffer): number;
  /** Called right after the INIT reply went out. */
  initDone?(): void;
}

export interface ChannelOptions {
  maxWrite: number;
  /** Called for each request with its outcome (for `-d`). */
  trace?: (hd: InHeader, result: number) => void;
  /**
   * After each reply, keep reading /dev/fuse (non-blocking) for this many microseconds before
   * sleeping in poll(2): a client asking back to back is served without a wake-up. 0 = plain
   * blocking reads. Idle costs nothing: the spin only follows a reply.
   */
  spinUs?: number;
  /** Value handlers return when no reply is due. */
  noReply: number;
  /** The fd is O_NONBLOCK and polled by the caller, which calls serveOne when it is readable. */
  nonBlocking?: boolean;
  /** Request and reply buffers shared with other channels served by the same thread. */
  buffers?: { inBuf: Buffer; outBuf: Buffer };
}

export type StopReason = 'unmounted' | 'destroyed';

const ENOENT = errnoOf('ENOENT');
const EINTR = errnoOf('EINTR');
const EAGAIN = errnoOf('EAGAIN');
const ENODEV = errnoOf('ENODEV');

/** Spins in a row that found nothing before spinning pauses, and for how many reads it pauses. */
const SPIN_MISSES = 4;
const SPIN_PAUSE = 32;

export class Channel {
  readonly inBuf: Buffer;
  readonly outBuf: Buffer;
  readonly spinUs: number;
  private spinMisses = 0;
  private spinPause = 0;
  requests = 0;

  constructor(
    readonly fd: number,
    private readonly opts: ChannelOptions,
  ) {
    this.inBuf = opts.buffers?.inBuf ?? Buffer.allocUnsafe(opts.maxWrite + Size.IN_HEADER + Size.WRITE_IN + 8192);
    this.outBuf = opts.buffers?.outBuf ?? Buffer.allocUnsafe(opts.maxWrite + Size.OUT_HEADER + 8192);
    if (this.inBuf.length < opts.maxWrite + Size.IN_HEADER + Size.WRITE_IN || this.outBuf.length < opts.maxWrite + Size.OUT_HEADER) {
      throw new RangeError('channel buffers smaller than max_write needs');
    }
    this.spinUs = opts.spinUs ?? 0;
    this.raw = this.spinUs > 0 || opts.nonBlocking === true;
  }

  /** Writes go through the addon's write (the fd is non-blocking). */
  private readonly raw: boolean;

  /** One request's bytes, or -1 once the filesystem is gone (ENODEV). */
  readRequest(): number {
    if (this.spinUs > 0) {
      for (;;) {
        const n = this.readSpinning();
        if (n >= 0) return n;
        if (n === -ENOENT || n === -EINTR || n === -EAGAIN) continue;
        if (n === -ENODEV) return -1;
        throw new FsError(codeOf(-n), 'read');
      }
    }
    for (;;) {
      try {
        return readSync(this.fd, this.inBuf, 0, this.inBuf.length, null);
      } catch (e) {
        const c = errnoCode(e);
        if (c === 'ENOENT' || c === 'EINTR' || c === 'EAGAIN') continue;
        if (c === 'ENODEV') return -1;
        throw e;
      }
    }
  }

  /**
   * Adaptive spin: after SPIN_MISSES spins in a row that found nothing (requests far apart, or
   * a busy machine where the client does not get a CPU in time), the next SPIN_PAUSE reads wait
   * at once, so the spin costs nothing where it does not pay.
   */
  private readSpinning(): number {
    if (this.spinPause > 0) {
      this.spinPause--;
      return readSpin(this.fd, this.inBuf, 0, true);
    }
    const n = readSpin(this.fd, this.inBuf, this.spinUs, false);
    if (n !== -EAGAIN) {
      this.spinMisses = 0;
      return n;
    }
    if (++this.spinMisses >= SPIN_MISSES) {
      this.spinMisses = 0;
      this.spinPause = SPIN_PAUSE;
    }
    return readSpin(this.fd, this.inBuf, 0, true);
  }

  /** Write a reply; ENOENT (interrupted request) is ignored. */
  writeReply(len: number): void {
    if (this.raw) {
      const r = writeRaw(this.fd, this.outBuf, len);
      if (r >= 0 || r === -ENOENT || r === -ENODEV) return;
      throw new FsError(codeOf(-r), 'write');
    }
    try {
      writeSync(this.fd, this.outBuf, 0, len);
    } catch (e) {
      const c = errnoCode(e);
      if (c === 'ENOENT') return;
      if (c === 'ENODEV') return;
      throw e;
    }
  }

  /** Write an unsolicited notification (already encoded with unique 0). */
  notify(buf: Buffer, len: number): void {
    try {
      writeSync(this.fd, buf, 0, len);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
    }
  }

  /** Serve until unmounted or DESTROY. */
  serve(handler: RequestHandler): StopReason {
    // O_NONBLOCK is per open file: set it here, where the reads start (the fd is ours alone).
    if (this.spinUs > 0) setNonBlocking(this.fd, true);
    for (;;) {
      const n = this.readRequest();
      if (n < 0) return 'unmounted';
      if (this.handle(n, handler)) return 'destroyed';
    }
  }

  /**
   * For a non-blocking fd the caller polls: read one request, if one is there, and answer it.
   * Null while serving goes on, else why it ended.
   */
  serveOne(handler: RequestHandler): StopReason | null {
    const n = readSpin(this.fd, this.inBuf, 0, false);
    if (n < 0) {
      if (n === -EAGAIN || n === -EINTR || n === -ENOENT) return null;
      if (n === -ENODEV) return 'unmounted';
      throw new FsError(codeOf(-n), 'read');
    }
    return this.handle(n, handler) ? 'destroyed' : null;
  }

  /** Handle the `n`-byte request in inBuf; true after DESTROY. */
  private handle(n: number, handler: RequestHandler): boolean {
    if (n < Size.IN_HEADER) return false;
    const { trace, noReply } = this.opts;
    this.requests++;
    const hd = decodeInHeader(this.inBuf);
    const end = Math.min(n, hd.len) - hd.extlen;
    const r = handler.dispatch(hd, this.inBuf, end, this.outBuf);
    trace?.(hd, r);
    if (r === noReply || isNoReply(hd.opcode)) return false;
    if (r < 0) {
      encodeOutHeader(this.outBuf, Size.OUT_HEADER, r, hd.unique);
    } else {
      encodeOutHeader(this.outBuf, Size.OUT_HEADER + r, 0, hd.unique);
    }
    // the unique as sent: a resent request's has bit 63 set (FUSE_UNIQUE_RESEND), past a number's precision
    this.inBuf.copy(this.outBuf, 8, 8, 16);
    this.writeReply(Size.OUT_HEADER + (r < 0 ? 0 : r));
    if (hd.opcode === Op.INIT && r >= 0) handler.initDone?.();
    return hd.opcode === Op.DESTROY;
  }
}

/** A one-line trace of a request: `LOOKUP nodeid=1 unique=4 -> 128` or `-> ENOENT`. */
export function traceLine(hd: InHeader, result: number, errName: (n: number) => string): string {
  const res = result >= 0 ? `${result}` : errName(-result);
  return `layerfs: ${opName(hd.opcode)} nodeid=${hd.nodeid} unique=${hd.unique} uid=${hd.uid} pid=${hd.pid} -> ${res}\n`;
}
