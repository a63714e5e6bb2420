/**
 * io_uring (native/uring.c): one ring with 128-byte SQEs, raw commands (IORING_OP_URING_CMD), one-shot
 * POLLIN polls, and submit-and-wait that copies the completions into a buffer. Nothing FUSE-specific:
 * fuse/uring-transport.ts builds the FUSE commands on it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { FsError, codeOf } from '../errors/index.js';

/** The addon's handle of one ring (a napi external). */
export type RingHandle = { readonly __ring: unique symbol };

interface UringBinding {
  uringSetup(sqEntries: number, cqEntries: number): RingHandle | number;
  uringCmd(ring: RingHandle, fd: number, cmdOp: number, userData: number, iov: Buffer | null, cmd: Buffer): number;
  uringPollIn(ring: RingHandle, fd: number, userData: number): number;
  uringEnter(ring: RingHandle, wait: boolean, spinUs: number, out: Buffer): number;
  uringClose(ring: RingHandle): void;
  uringIovec(iov: Buffer, index: number, buf: Buffer): void;
}

const b = createRequire(import.meta.url)('../../../build/Release/layerfs.node') as UringBinding;

/** Bytes of one completion in the buffer `enter` fills: user_data low/high 32 bits, res, flags. */
export const CQE_OUT_SIZE = 16;
/** Bytes of one struct iovec (x86_64, aarch64). */
export const IOVEC_SIZE = 16;

function fail(r: number, syscall: string): never {
  throw new FsError(codeOf(-r), syscall);
}

export class Ring {
  private closed = false;
  private constructor(private readonly h: RingHandle) {}

  /** A ring with room for `sqEntries` queued SQEs and `cqEntries` completions; throws FsError (ENOSYS, EPERM...). */
  static open(sqEntries: number, cqEntries: number): Ring {
    const h = b.uringSetup(sqEntries, cqEntries);
    if (typeof h === 'number') fail(h, 'io_uring_setup');
    return new Ring(h);
  }

  /** Queue an IORING_OP_URING_CMD (submitted by the next `enter`); `iov` must live until then. */
  cmd(fd: number, cmdOp: number, userData: number, iov: Buffer | null, cmd: Buffer): void {
    const r = b.uringCmd(this.h, fd, cmdOp, userData, iov, cmd);
    if (r < 0) fail(r, 'io_uring_enter');
  }

  /** Queue a one-shot poll for POLLIN on `fd`: its completion's res holds the revents. */
  pollIn(fd: number, userData: number): void {
    const r = b.uringPollIn(this.h, fd, userData);
    if (r < 0) fail(r, 'io_uring_enter');
  }

  /**
   * Submit what is queued and, with `wait`, wait for a completion (spinning spinUs microseconds on
   * the completion ring first); the completions are copied into `out`, their count returned.
   */
  enter(wait: boolean, spinUs: number, out: Buffer): number {
    const r = b.uringEnter(this.h, wait, spinUs, out);
    if (r < 0) fail(r, 'io_uring_enter');
    return r;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    b.uringClose(this.h);
  }
}

/** Fill iovec `index` of `iov` with `buf`'s address and length. */
export function setIovec(iov: Buffer, index: number, buf: Buffer): void {
  b.uringIovec(iov, index, buf);
}

/** CPUs the kernel counts as possible (/sys/devices/system/cpu/possible: `0-3`, `0,2-5`). */
export function possibleCpus(text = readFileSync('/sys/devices/system/cpu/possible', 'utf8')): number {
  let n = 0;
  for (const part of text.trim().split(',')) {
    if (part === '') continue;
    const [a, z] = part.split('-').map(Number);
    n += z === undefined ? 1 : z - a! + 1;
  }
  return n;
}
