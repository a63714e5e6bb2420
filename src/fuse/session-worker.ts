/**
 * Worker thread entry: a serving thread. It owns the unions of the mounts it serves (the engine is
 * synchronous and runs here) and serves their /dev/fuse fds with one loop: poll(2) over every fd
 * (and a wake-up eventfd), then for each ready fd one read -> handle -> write.
 *
 * Several mounts per thread, because a thread is not free: an idle Node worker holds ~8.5 MB
 * (measured: 10 empty workers), more than a whole fuse-overlayfs process; and mounts of the same
 * image on one thread share their lower listings (engine/lower-index.ts keeps them per realm).
 * Requests of the mounts of one thread are served one at a time (a long request of one, such as
 * the copy-up of a big file, delays the others of its thread; session.ts bounds how many share).
 *
 * Protocol with the main thread (serving-thread.ts), every message naming its mount `id`:
 *   main -> worker (on `port`, then a write to `wakeFd`)
 *                   {t:'open', mount} build the union | {t:'go', id} mount(2) returned: serve it
 *                   {t:'quit', id} mount failed: drop it | {t:'exit'} no mount left: end the thread
 *   worker -> main  {t:'opened', id, branches, xiPath} | {t:'error', id, code, message}
 *                   {t:'init', id, flags, maxWrite} (INIT answered: the mount is live)
 *                   {t:'stopped', id, reason, requests, error?}
 */
import { readSync, writeSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { codeOf, errnoCode } from '../errors/index.js';
import { POLLFD_SIZE, POLLIN, pollIn, setNonBlocking } from '../sys/native.js';
import { NO_REPLY, FuseOps } from './ops.js';
import { openUnion, type OpenedUnion } from './open-union.js';
import { Channel, traceLine, type RequestHandler } from './channel.js';
import { initFlagNames } from './codec.js';
import { encodeNotifyInvalInode } from './dirent-codec.js';
import { warmUp, warmUpAlone } from './warm-up.js';
import { serveBranchChange, type BranchChangeCommand, type BranchChangeReply } from './branch-change.js';
import { type Notice } from './udba-watch.js';
import { udbaHooks, type UdbaHooks, UDBA_STATS_SLOTS } from './udba-serve.js';
import { TransportState, UringLoop, UringMount, agreedUring, errnoNumberOf } from './uring-transport.js';
import { superviseServing, type Supervision } from './supervise-serve.js';
import type { InitOut } from './codec.js';
import type { BranchState } from '../engine/types.js';

/** What a serving thread is made with (the same for all of its mounts). */
export interface ThreadParams {
  /** Commands from the main thread. */
  port: MessagePort;
  /** eventfd the main thread writes to after each command (this thread waits in poll(2)). */
  wakeFd: number;
  debug: boolean;
  maxWrite: number;
  /** Poll the fds this many microseconds after each reply before sleeping; 0 = sleep at once. */
  spinUs: number;
  /** A module exporting `openUnion(options, cwd)` instead of the engine (transport tests). */
  unionModule?: string;
  /** A spare thread: warm up at once, over a read-only union of this module's own directory. */
  warmAtStart?: boolean;
}

/** One mount to serve. */
export interface MountParams {
  id: string;
  options: string;
  cwd: string;
  entryTimeout: number;
  attrTimeout: number;
  negativeTimeout: number;
  /** default_permissions is on: POSIX ACLs may be negotiated (posix-acl.ts). */
  posixAcl?: boolean;
  /** Live counters the main thread reads: [0] requests served, [1] lower listings this mount read itself (then udba's, then the transport's: uring-transport.ts). */
  stats: SharedArrayBuffer;
  /** Serve over io_uring when the kernel offers it (-o uring). */
  uring?: boolean;
  /** Taken over from a dead daemon after live branch changes: the list they left (engine/branch-state.ts). */
  branchState?: BranchState;
}

/**
 * `go`: the mount is made; serve `fd` (/dev/fuse, opened by mount(2) as root or received from
 * fusermount3). `noPassthrough`: not real root, the kernel would refuse passthrough's backing files.
 */
export type Command =
  | { t: 'open'; mount: MountParams }
  | { t: 'go'; id: string; fd: number; noPassthrough?: boolean; supervision?: Supervision }
  /** Stop serving every mount without ending it (a daemon upgrade hands the fds over); answers 'drained'. */
  | { t: 'drain' }
  | { t: 'quit'; id: string }
  | BranchChangeCommand
  | { t: 'exit' };

export type WorkerMessage =
  | { t: 'opened'; id: string; branches: { path: string; perm: string }[]; xiPath: string; userxattr: boolean }
  | { t: 'error'; id: string; code: string; message: string }
  | { t: 'init'; id: string; flags: string[]; maxWrite: number; state: InitOut; resend: boolean }
  | { t: 'drained' }
  | { t: 'stopped'; id: string; reason: string; requests: number; error?: string }
  | BranchChangeReply
  /** udba=notify: notifications for the main thread to write (udba-watch.ts says why not here). */
  | { t: 'inval'; id: string; items: Notice[] };

const port = parentPort;
if (!port) throw new Error('session-worker must run in a worker thread');
const params = workerData as ThreadParams;

// Errors are answered as errno numbers here; their stack traces are never shown, and capturing
// one costs more than the syscall behind a typical ENOENT/ENODATA. Keep them only for -d.
if (!params.debug) Error.stackTraceLimit = 0;

function post(m: WorkerMessage): void {
  port!.postMessage(m);
}

function debugLine(s: string): void {
  try {
    writeSync(2, s);
  } catch {
    /* stderr gone */
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

interface Served {
  p: MountParams;
  /** Its /dev/fuse fd, from `go` on (-1 before). */
  fd: number;
  opened: OpenedUnion;
  ops?: FuseOps<never, never, never>;
  channel?: Channel;
  handler?: RequestHandler;
  stats: Float64Array;
  /** udba=notify's watcher (polled with the mounts). */
  udba?: UdbaHooks;
  /** Supervised: its journal, to close when the mount ends. */
  closeJournal?: (remove: boolean) => void;
  /** What INIT agreed, and the ring entries when it agreed to io_uring. */
  init?: InitOut;
  uring?: UringMount;
}

const opening = new Map<string, Served>();
/** Mounts being served, in poll order (entry i + 1 of the poll set). */
let live: Served[] = [];
let warmed = false;
let exiting = false;
/** The shared request and reply buffers: one request at a time on this thread. */
const inBuf = Buffer.allocUnsafe(params.maxWrite + 8192 + 128);
const outBuf = Buffer.allocUnsafe(params.maxWrite + 8192 + 16);
const notifyBuf = Buffer.alloc(64);
let pollBuf = Buffer.alloc(POLLFD_SIZE * 8);
/** The thread's io_uring, from the first mount that agreed to it on: the thread then waits in it. */
let ring: UringLoop | undefined;
/** Where the transport's slots start in a mount's stats. */
const URING_AT = UDBA_STATS_SLOTS;
let pollCount = 0;

async function loadOpen(): Promise<typeof openUnion> {
  if (!params.unionModule) return openUnion;
  const mod = (await import(params.unionModule)) as { openUnion: typeof openUnion };
  return mod.openUnion;
}

function open(p: MountParams, opener: typeof openUnion): void {
  let opened: OpenedUnion;
  try {
    opened = opener(p.options, p.cwd, p.branchState);
  } catch (e) {
    const code = errnoCode(e) ?? 'EINVAL';
    post({ t: 'error', id: p.id, code, message: messageOf(e) });
    return;
  }
  // Compile the request path before the kernel starts waiting on it (read-only requests); once
  // per thread: the code is shared by every mount the thread serves.
  if (!warmed) {
    warmed = true;
    try {
      const w = warmUp(opened.union);
      if (params.debug) debugLine(`layerfs: warm-up: ${w.requests} requests in ${w.ms.toFixed(0)} ms\n`);
    } catch (e) {
      if (params.debug) debugLine(`layerfs: warm-up failed (serving anyway): ${messageOf(e)}\n`);
    }
  }
  opening.set(p.id, { p, fd: -1, opened, stats: new Float64Array(p.stats) });
  post({ t: 'opened', id: p.id, branches: opened.branches, xiPath: opened.xiPath, userxattr: opened.userxattr ?? false });
}

function start(s: Served, fd: number, noPassthrough: boolean, supervision?: Supervision): void {
  const p = s.p;
  s.fd = fd;
  let channel: Channel | undefined;
  const udba = udbaHooks(s.opened, (items) => post({ t: 'inval', id: p.id, items }), s.stats);
  const ops = new FuseOps(s.opened.union, {
    ...udba.config,
    devFd: fd,
    passthrough: noPassthrough ? false : s.opened.passthrough,
    posixAcl: p.posixAcl === true && s.opened.posixAcl === true,
    overIoUring: (offered) => wantsUring(s, offered),
    invalInode: (nodeid) => channel?.notify(notifyBuf, encodeNotifyInvalInode(notifyBuf, nodeid, -1, 0)),
    entryTimeout: p.entryTimeout,
    attrTimeout: p.attrTimeout,
    negativeTimeout: p.negativeTimeout,
    maxWrite: params.maxWrite,
    onInit: (init) => {
      s.init = init;
      const flags = initFlagNames(init.flags, init.flags2);
      if (params.debug) debugLine(`layerfs: INIT 7.${init.minor} max_write=${init.maxWrite} max_pages=${init.maxPages} flags=${flags.join('|')}\n`);
      post({ t: 'init', id: p.id, flags, maxWrite: init.maxWrite, state: init, resend: sup?.initDone(init) ?? false });
    },
    onBug: (opcode, e) => debugLine(`layerfs: unexpected error in opcode ${opcode}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`),
  });
  channel = new Channel(fd, {
    maxWrite: params.maxWrite,
    nonBlocking: true,
    buffers: { inBuf, outBuf },
    noReply: NO_REPLY,
    trace: params.debug
      ? (hd, r) => debugLine(r === NO_REPLY ? traceLine(hd, 0, codeOf).replace(/-> 0\n$/, '-> (no reply)\n') : traceLine(hd, r, codeOf))
      : undefined,
  });
  setNonBlocking(fd, true);
  const indexReads = s.opened.indexReads;
  const stats = s.stats;
  // supervised: journal what the kernel is handed, resume a dead daemon's mount (supervise-serve.ts)
  const sup = supervision ? superviseServing(ops, supervision, (len) => channel!.notify(notifyBuf, len), notifyBuf) : null;
  if (sup) s.closeJournal = (remove) => sup.close(remove);
  const serve = sup ? sup.dispatch : (hd: Parameters<RequestHandler['dispatch']>[0], b: Buffer, end: number, out: Buffer) => ops.dispatch(hd, b, end, out);
  s.handler = {
    dispatch: (hd, b, end, out) => {
      stats[0]!++;
      const r = serve(hd, b, end, out);
      if (indexReads) stats[1] = indexReads();
      return r;
    },
    initDone: () => {
      ops.initDone();
      if (s.init && agreedUring(s.init)) startUring(s);
    },
  };
  stats[URING_AT] = p.uring ? TransportState.PENDING : TransportState.OFF;
  s.ops = ops as unknown as FuseOps<never, never, never>;
  udba.start(s.ops);
  if (udba.fd >= 0) s.udba = udba;
  s.channel = channel;
  live.push(s);
  rebuildPollSet();
  // resumed: the kernel sends again what the dead daemon read and did not answer
  sup?.resend();
}

/** INIT: agree to io_uring? (-o uring, offered, and this thread has a ring.) */
function wantsUring(s: Served, offered: boolean): boolean {
  const st = s.stats;
  if (!s.p.uring) return false;
  if (!offered) {
    st[URING_AT] = TransportState.NOT_OFFERED;
    return false;
  }
  if (!ring) {
    try {
      ring = new UringLoop();
    } catch (e) {
      st[URING_AT] = TransportState.SETUP_FAILED;
      st[URING_AT + 3] = errnoNumberOf(e);
      return false;
    }
  }
  return true;
}

/** INIT answered with FUSE_OVER_IO_URING: register the mount's entries on every queue at once. */
function startUring(s: Served): void {
  const st = s.stats;
  s.uring = new UringMount(ring!, {
    fd: s.fd,
    init: s.init!,
    handler: s.handler!,
    inBuf,
    outBuf,
    noReply: NO_REPLY,
    onRequest: () => {
      st[URING_AT + 1]!++;
      s.channel!.requests++;
    },
    trace: params.debug ? (hd, r) => debugLine(traceLine(hd, r, codeOf).replace(/\n$/, ' (io_uring)\n')) : undefined,
    onRegisterFailed: (err) => {
      st[URING_AT] = TransportState.REGISTER_FAILED;
      st[URING_AT + 3] = -err;
    },
  });
  st[URING_AT] = TransportState.URING;
  st[URING_AT + 2] = s.uring.queues;
  try {
    s.uring.register();
  } catch (e) {
    st[URING_AT] = TransportState.REGISTER_FAILED;
    st[URING_AT + 3] = errnoNumberOf(e);
  }
}

function end(s: Served, reason: string, error?: string): void {
  s.uring?.close();
  live = live.filter((x) => x !== s);
  rebuildPollSet();
  try {
    s.closeJournal?.(true);
  } catch {
    /* ending anyway */
  }
  try {
    s.udba?.close();
  } catch {
    /* closing anyway */
  }
  try {
    s.ops?.releaseAll();
  } catch (e) {
    error ??= messageOf(e);
  }
  try {
    s.opened.close();
  } catch (e) {
    error ??= messageOf(e);
  }
  post({ t: 'stopped', id: s.p.id, reason, requests: s.channel?.requests ?? 0, ...(error ? { error } : {}) });
}

/** What each entry of the poll set past the wake-up fd serves: a mount's /dev/fuse, or its udba watcher. */
let pollTargets: Array<{ s: Served; watch: boolean }> = [];

function rebuildPollSet(): void {
  pollTargets = live.map((s) => ({ s, watch: false }));
  for (const s of live) if (s.udba) pollTargets.push({ s, watch: true });
  pollCount = pollTargets.length + 1;
  if (pollBuf.length < pollCount * POLLFD_SIZE) pollBuf = Buffer.alloc(pollCount * 2 * POLLFD_SIZE);
  const put = (i: number, fd: number): void => {
    pollBuf.writeInt32LE(fd, i * POLLFD_SIZE);
    pollBuf.writeInt16LE(POLLIN, i * POLLFD_SIZE + 4);
    pollBuf.writeInt16LE(0, i * POLLFD_SIZE + 6);
  };
  put(0, params.wakeFd);
  ring?.pollSetChanged();
  pollTargets.forEach((x, i) => put(i + 1, x.watch ? x.s.udba!.fd : x.s.fd));
}

const wakeBuf = Buffer.alloc(8);

async function commands(opener: () => Promise<typeof openUnion>): Promise<void> {
  try {
    readSync(params.wakeFd, wakeBuf, 0, 8, null);
  } catch {
    /* EAGAIN: nothing to drain */
  }
  for (let m = receiveMessageOnPort(params.port); m; m = receiveMessageOnPort(params.port)) {
    const c = m.message as Command;
    if (c.t === 'open') open(c.mount, await opener());
    else if (c.t === 'go') {
      const s = opening.get(c.id);
      opening.delete(c.id);
      if (s) start(s, c.fd, c.noPassthrough ?? false, c.supervision);
    } else if (c.t === 'quit') {
      const s = opening.get(c.id);
      opening.delete(c.id);
      if (s) {
        try {
          s.opened.close();
        } catch {
          /* failing anyway */
        }
      }
    } else if (c.t === 'branches') {
      // between two requests: every request sees the old branch list or the new one
      const s = live.find((x) => x.p.id === c.id);
      const notify = (len: number): void => s!.channel!.notify(notifyBuf, len);
      post(serveBranchChange(c, s && { change: s.opened.changeBranches, state: s.opened.branchState, nodes: s.ops?.nodes, buf: notifyBuf, notify, changed: () => (s.ops?.branchesChanged(), s.udba?.rebuild()) }, messageOf, (e) => errnoCode(e) ?? 'EIO'));
    } else if (c.t === 'drain') {
      // between two requests: nothing of any mount is half-served; the journals stay for the next daemon
      for (const s of live) s.closeJournal?.(false);
      live = [];
      opening.clear();
      rebuildPollSet();
      post({ t: 'drained' });
      exiting = true; // and end: a thread blocked in poll(2) would hold the process's exit
    } else if (c.t === 'exit') exiting = true;
  }
}

/** One request of mount `s` (its fd polled readable). */
function serveOne(s: Served): void {
  let stop: string | null;
  try {
    stop = s.channel!.serveOne(s.handler!);
  } catch (e) {
    end(s, 'error', messageOf(e));
    return;
  }
  if (stop !== null) end(s, stop);
}

/** Spins in a row that found nothing before spinning pauses, and for how many waits it pauses. */
const SPIN_MISSES = 4;
const SPIN_PAUSE = 32;

async function main(): Promise<void> {
  if (params.warmAtStart && !params.unionModule && !warmed) warmed = warmUpAlone(openUnion);
  let opener: typeof openUnion | undefined;
  const getOpener = async (): Promise<typeof openUnion> => (opener ??= await loadOpen());
  rebuildPollSet();
  let served = false;
  let misses = 0;
  let pause = 0;
  for (;;) {
    if (exiting && live.length === 0 && opening.size === 0) break;
    // spin only right after a reply: a client asking back to back is served without a wake-up
    const spin = served && pause === 0 && params.spinUs > 0 ? params.spinUs : 0;
    if (pause > 0) pause--;
    const t0 = spin > 0 ? performance.now() : 0;
    const n = ring ? ring.poll(pollBuf, pollCount, spin) : pollIn(pollBuf, pollCount, spin);
    if (spin > 0) {
      // over the ring, requests are served inside the wait: only the wait counts
      if ((ring ? ring.waitedMs : performance.now() - t0) > spin / 1000) {
        if (++misses >= SPIN_MISSES) {
          misses = 0;
          pause = SPIN_PAUSE;
        }
      } else misses = 0;
    }
    served = ring !== undefined && ring.served > 0;
    if (n < 0) throw new Error(`poll failed: errno ${-n}`);
    // the mounts first (in poll order), commands last: they change the poll set
    const ready: Served[] = [];
    const watchers: Served[] = [];
    for (let i = 1; i < pollCount; i++) {
      if (pollBuf.readInt16LE(i * POLLFD_SIZE + 6) === 0) continue;
      const x = pollTargets[i - 1]!;
      (x.watch ? watchers : ready).push(x.s);
    }
    const wake = pollBuf.readInt16LE(6) !== 0;
    for (const s of ready) {
      serveOne(s);
      served = true;
    }
    for (const s of watchers) {
      if (!live.includes(s)) continue;
      try {
        s.udba?.handle();
      } catch (e) {
        if (params.debug) debugLine(`layerfs: udba watcher: ${messageOf(e)}\n`);
      }
    }
    if (wake) await commands(getOpener);
  }
  ring?.close();
}

void main();
