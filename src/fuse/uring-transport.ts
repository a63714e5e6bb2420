/**
 * FUSE over io_uring (Linux 6.14+, CONFIG_FUSE_IO_URING, the fuse module's `enable_uring`): the
 * kernel hands requests to ring entries the server registered, and the server answers one and asks
 * for the next with a single command (COMMIT_AND_FETCH). Written from the kernel's uapi
 * (include/uapi/linux/fuse.h, protocol 7.42) and fs/fuse/dev_uring.c:
 *
 * - INIT still comes over /dev/fuse; the server agrees to FUSE_OVER_IO_URING in its reply, then
 *   registers entries (IORING_OP_URING_CMD with 128-byte SQEs, cmd_op REGISTER, sqe->addr an array
 *   of two iovecs: a 288-byte header area and a payload buffer of at least max(8 KiB, max_write,
 *   max_pages pages)). There is one queue per possible CPU (the kernel picks the queue of the CPU the
 *   caller runs on); the kernel uses the ring only once every queue has an entry, and until then
 *   (after agreeing) it holds new requests back, so registering must follow the INIT reply at once.
 * - Header area (struct fuse_uring_req_header): bytes 0..127 `in_out` (the fuse_in_header of the
 *   request, the fuse_out_header of the reply), 128..255 `op_in` (the first argument of the
 *   request, the per-opcode struct, absent for name-only opcodes), 256..287 `ring_ent_in_out`
 *   (flags u64, commit_id u64, payload_sz u32 + padding, reserved u64). The other arguments of the
 *   request are packed in the payload buffer (payload_sz bytes); the reply's arguments go there too,
 *   with their length in payload_sz.
 * - The command area of the SQE holds struct fuse_uring_cmd_req: flags u64, commit_id u64 (the
 *   request's unique, from ring_ent_in_out), qid u16.
 * - FORGET, INTERRUPT and notification replies stay on /dev/fuse (the kernel sends them there), so
 *   /dev/fuse is still served; notifications are still written to it.
 *
 * One ring per serving thread carries the entries of all its mounts and, as one-shot polls, the
 * fds the thread used to poll(2) (its wake-up eventfd, each mount's /dev/fuse, udba watchers): the
 * thread then sleeps in io_uring_enter only, and the replies of a round, the next fetches and the
 * wait are one system call.
 */
import { codeOf, errnoCode, errnoOf } from '../errors/index.js';
import { CQE_OUT_SIZE, IOVEC_SIZE, Ring, possibleCpus, setIovec } from '../sys/uring.js';
import { POLLFD_SIZE } from '../sys/native.js';
import { Init2, Size } from './abi.js';
import { decodeInHeader, encodeOutHeader, type InitOut } from './codec.js';
import type { RequestHandler } from './channel.js';

const CMD_REGISTER = 1;
const CMD_COMMIT_AND_FETCH = 2;

/** struct fuse_uring_req_header. */
const HEADER_SIZE = 288;
const OP_IN = 128;
const OP_IN_SIZE = 128;
const ENT_COMMIT_ID = 256 + 8;
const ENT_PAYLOAD_SZ = 256 + 16;
/** struct fuse_uring_cmd_req. */
const CMD_REQ_SIZE = 24;
const CMD_COMMIT_ID = 8;
const CMD_QID = 16;

/** FUSE_MIN_READ_BUFFER: the least payload buffer the kernel accepts. */
const MIN_PAYLOAD = 8192;
const PAGE_SIZE = 4096;

/** Entries per queue: one thread serves them in turn; a second lets the kernel hand over the next request while one is served. */
export const ENTRIES_PER_QUEUE = 2;

const EIO = errnoOf('EIO');

/** Slots of a mount's shared stats the transport writes (session.ts allocates them after udba's). */
export const URING_STATS_SLOTS = 4;
/** [state] values. */
export const TransportState = {
  /** -o nouring */
  OFF: 0,
  /** served over io_uring */
  URING: 1,
  /** the kernel did not offer FUSE_OVER_IO_URING in INIT */
  NOT_OFFERED: 2,
  /** io_uring_setup failed ([3] = errno) */
  SETUP_FAILED: 3,
  /** REGISTER failed ([3] = errno) */
  REGISTER_FAILED: 4,
  /** waiting for INIT */
  PENDING: 5,
} as const;

/** One line for `layerfs info` from a mount's stats slots (at `at`); '' for a nouring mount. */
export function transportLine(stats: Float64Array, at: number): string {
  const state = stats[at]!;
  const requests = stats[at + 1]!;
  const errName = (): string => codeOf(stats[at + 3]!);
  switch (state) {
    case TransportState.URING:
      return `transport: io_uring (${stats[at + 2]} queues x ${ENTRIES_PER_QUEUE} entries), ${requests} requests over the ring`;
    case TransportState.NOT_OFFERED:
      return 'transport: /dev/fuse read/write (the kernel did not offer io_uring: fuse enable_uring=N or Linux < 6.14)';
    case TransportState.SETUP_FAILED:
      return `transport: /dev/fuse read/write (io_uring_setup failed: ${errName()})`;
    case TransportState.REGISTER_FAILED:
      return `transport: /dev/fuse read/write (io_uring register failed: ${errName()})`;
    case TransportState.PENDING:
      return 'transport: not negotiated yet';
    default:
      // nouring: /dev/fuse, the plain case, no line (`layerfs info MNT` stays AUFS's si_ lines)
      return '';
  }
}

/**
 * Whether a mount without -o uring/nouring asks for io_uring: $LAYERFS_URING=1/0 decides, else
 * DEFAULT_URING (docs/performance.md, "FUSE over io_uring", has the measurements behind it).
 */
export const DEFAULT_URING = false;

export function defaultUring(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.LAYERFS_URING === '1') return true;
  if (env.LAYERFS_URING === '0') return false;
  return DEFAULT_URING;
}

/** The payload buffer the kernel requires for what INIT agreed. */
export function payloadSize(init: Pick<InitOut, 'maxWrite' | 'maxPages'>): number {
  return Math.max(MIN_PAYLOAD, init.maxWrite, init.maxPages * PAGE_SIZE);
}

interface Completion {
  (res: number): void;
}

/**
 * The ring of one serving thread, and the poll(2) it stands in for: `poll` takes the same pollfd
 * array as sys/native pollIn and fills its revents, serving the ring's FUSE requests meanwhile.
 */
export class UringLoop {
  readonly ring: Ring;
  private nextId = 1;
  private readonly waiting = new Map<number, Completion>();
  /** fd -> the id of its armed poll. */
  private readonly armed = new Map<number, number>();
  private readonly pollIds = new Map<number, number>();
  private readonly readyFds = new Set<number>();
  private readonly cqes = Buffer.alloc(CQE_OUT_SIZE * 128);
  private readonly cq32 = new Int32Array(this.cqes.buffer, this.cqes.byteOffset, this.cqes.length / 4);
  /** FUSE requests served by the last poll. */
  served = 0;
  /** How long (ms) the last poll's first wait took: the caller's spin accounting (serving is not waiting). */
  waitedMs = 0;
  /** The poll set changed since the last poll (rescan it; else only rearm the fds that fired). */
  private rescan = true;
  private readonly fired: number[] = [];

  constructor(sqEntries = 256) {
    this.ring = Ring.open(sqEntries, sqEntries * 4);
  }

  id(): number {
    return this.nextId++;
  }

  /** Call `done` with the res of the completion of the SQE queued with `id`. */
  expect(id: number, done: Completion): void {
    this.waiting.set(id, done);
  }

  /** The pollfds given to `poll` changed (a mount or watcher came or went). */
  pollSetChanged(): void {
    this.rescan = true;
  }

  private arm(fd: number): void {
    if (this.armed.has(fd)) return;
    const id = this.id();
    this.ring.pollIn(fd, id);
    this.armed.set(fd, id);
    this.pollIds.set(id, fd);
  }

  /** Like poll(2) over `count` pollfds of `pollBuf` (revents filled), plus the ring's requests. */
  poll(pollBuf: Buffer, count: number, spinUs: number): number {
    if (this.rescan) {
      this.rescan = false;
      this.fired.length = 0;
      const inSet = new Set<number>();
      for (let i = 0; i < count; i++) {
        const fd = pollBuf.readInt32LE(i * POLLFD_SIZE);
        inSet.add(fd);
        this.arm(fd);
      }
      // an fd that left the set may be closed and its number reused: forget its poll
      for (const [fd, id] of this.armed) {
        if (inSet.has(fd)) continue;
        this.armed.delete(fd);
        this.pollIds.delete(id);
        this.readyFds.delete(fd);
      }
    } else {
      for (const fd of this.fired) this.arm(fd);
      this.fired.length = 0;
    }
    for (let i = 0; i < count; i++) pollBuf.writeInt16LE(0, i * POLLFD_SIZE + 6);
    this.served = 0;
    this.waitedMs = 0;
    let ready = 0;
    for (let spin = spinUs, first = true; ready === 0 && this.served === 0; spin = 0, first = false) {
      if (this.readyFds.size === 0) {
        const t0 = first ? performance.now() : 0;
        const n = this.ring.enter(true, spin, this.cqes);
        if (first) this.waitedMs = performance.now() - t0;
        for (let k = 0; k < n; k++) this.complete(k);
      }
      for (let i = 0; i < count; i++) {
        const fd = pollBuf.readInt32LE(i * POLLFD_SIZE);
        if (!this.readyFds.delete(fd)) continue;
        pollBuf.writeInt16LE(1, i * POLLFD_SIZE + 6);
        this.fired.push(fd);
        ready++;
      }
    }
    return ready;
  }

  private complete(k: number): void {
    const c = this.cq32;
    const id = (c[k * 4]! >>> 0) + (c[k * 4 + 1]! >>> 0) * 2 ** 32;
    const res = c[k * 4 + 2]!;
    const fd = this.pollIds.get(id);
    if (fd !== undefined) {
      this.pollIds.delete(id);
      if (this.armed.get(fd) === id) this.armed.delete(fd);
      this.readyFds.add(fd);
      return;
    }
    const done = this.waiting.get(id);
    if (!done) return;
    this.waiting.delete(id);
    done(res);
  }

  /** Submit what is queued without waiting (registrations), handling what completed at once. */
  flush(): void {
    const n = this.ring.enter(false, 0, this.cqes);
    for (let k = 0; k < n; k++) this.complete(k);
  }

  close(): void {
    this.ring.close();
  }
}

interface Entry {
  id: number;
  qid: number;
  hdr: Buffer;
  payload: Buffer;
  iov: Buffer;
  cmd: Buffer;
  /** It has delivered a request (its register went through). */
  used: boolean;
}

export interface UringMountOptions {
  fd: number;
  init: Pick<InitOut, 'maxWrite' | 'maxPages'>;
  handler: RequestHandler;
  /** The thread's request and reply buffers. */
  inBuf: Buffer;
  outBuf: Buffer;
  noReply: number;
  /** Counts a request served over the ring. */
  onRequest: () => void;
  trace?: (hd: ReturnType<typeof decodeInHeader>, result: number) => void;
  /** A registration failed (the kernel falls back to /dev/fuse): its negative errno. */
  onRegisterFailed: (err: number) => void;
  queues?: number;
}

/** The ring entries of one mount: registered after INIT, each serving one request at a time. */
export class UringMount {
  private readonly entries: Entry[] = [];
  private dead = false;
  private failed = false;
  readonly queues: number;

  constructor(
    private readonly loop: UringLoop,
    private readonly o: UringMountOptions,
  ) {
    this.queues = o.queues ?? possibleCpus();
  }

  /** Register ENTRIES_PER_QUEUE entries on every queue (right after the INIT reply). */
  register(): void {
    const size = payloadSize(this.o.init);
    for (let qid = 0; qid < this.queues; qid++) {
      for (let e = 0; e < ENTRIES_PER_QUEUE; e++) {
        const ent: Entry = {
          id: this.loop.id(),
          qid,
          hdr: Buffer.alloc(HEADER_SIZE),
          payload: Buffer.allocUnsafeSlow(size),
          iov: Buffer.alloc(2 * IOVEC_SIZE),
          cmd: Buffer.alloc(CMD_REQ_SIZE),
          used: false,
        };
        setIovec(ent.iov, 0, ent.hdr);
        setIovec(ent.iov, 1, ent.payload);
        ent.cmd.writeUInt16LE(qid, CMD_QID);
        this.entries.push(ent);
        this.loop.expect(ent.id, (res) => this.completed(ent, res));
        this.loop.ring.cmd(this.o.fd, CMD_REGISTER, ent.id, ent.iov, ent.cmd);
      }
    }
    // hand them over now: the kernel holds requests back until every queue has an entry
    this.loop.flush();
  }

  /** The mount ended: completions still to come are dropped. */
  close(): void {
    this.dead = true;
  }

  private completed(ent: Entry, res: number): void {
    if (res < 0) {
      // not registered (first completion) or the connection went away
      if (!ent.used && !this.failed && !this.dead) {
        this.failed = true;
        this.o.onRegisterFailed(res);
      }
      return;
    }
    ent.used = true;
    if (this.dead) return;
    this.serve(ent);
  }

  private serve(ent: Entry): void {
    const { inBuf, outBuf, handler, noReply } = this.o;
    const hdr = ent.hdr;
    const payloadSz = hdr.readUInt32LE(ENT_PAYLOAD_SZ);
    // rebuild the request as /dev/fuse would deliver it: header, first argument, the rest
    const len = hdr.readUInt32LE(0);
    const arg0 = Math.max(0, Math.min(OP_IN_SIZE, len - Size.IN_HEADER - payloadSz));
    hdr.copy(inBuf, 0, 0, Size.IN_HEADER);
    hdr.copy(inBuf, Size.IN_HEADER, OP_IN, OP_IN + arg0);
    const n = Size.IN_HEADER + arg0 + ent.payload.copy(inBuf, Size.IN_HEADER + arg0, 0, payloadSz);
    const hd = decodeInHeader(inBuf);
    this.o.onRequest();
    this.loop.served++;
    let r: number;
    try {
      r = handler.dispatch(hd, inBuf, Math.min(n, hd.len) - hd.extlen, outBuf);
    } catch {
      r = -EIO;
    }
    this.o.trace?.(hd, r);
    if (r === noReply) r = -EIO; // nothing sent over the ring goes unanswered (FORGET/INTERRUPT use /dev/fuse)
    if (r > ent.payload.length) r = -EIO;
    if (r < 0) {
      encodeOutHeader(hdr, Size.OUT_HEADER, r, hd.unique);
      hdr.writeUInt32LE(0, ENT_PAYLOAD_SZ);
    } else {
      outBuf.copy(ent.payload, 0, Size.OUT_HEADER, Size.OUT_HEADER + r);
      encodeOutHeader(hdr, Size.OUT_HEADER + r, 0, hd.unique);
      hdr.writeUInt32LE(r, ENT_PAYLOAD_SZ);
    }
    hdr.copy(ent.cmd, CMD_COMMIT_ID, ENT_COMMIT_ID, ENT_COMMIT_ID + 8);
    this.loop.expect(ent.id, (res) => this.completed(ent, res));
    // submitted with the thread's next wait: the reply, the next fetch and the wait in one call
    this.loop.ring.cmd(this.o.fd, CMD_COMMIT_AND_FETCH, ent.id, null, ent.cmd);
  }
}

/** INIT agreed to io_uring. */
export function agreedUring(init: Pick<InitOut, 'flags2'>): boolean {
  return (init.flags2 & Init2.OVER_IO_URING) !== 0;
}

/** The errno name of a thrown error, for the fallback line. */
export function errnoNumberOf(e: unknown): number {
  const c = errnoCode(e);
  return c ? errnoOf(c) : EIO;
}
