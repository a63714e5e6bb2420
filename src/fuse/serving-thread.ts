/**
 * The serving threads of this process, from the main thread: each serves up to `perThread`
 * mounts (session-worker.ts). A new mount goes to the thread with room whose mounts have the most
 * lower layers in common with it (they then share those layers' listings), else to a new thread.
 * A thread with no mount left is told to end.
 *
 * Threads are grouped by what they are made with (debug, spin, max_write, union module): mounts
 * differing in these never share a thread. A mount with a test union module gets a thread alone.
 */
import { writeSync, closeSync } from 'node:fs';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { eventfd } from '../sys/native.js';
import type { Command, MountParams, ThreadParams, WorkerMessage } from './session-worker.js';

/**
 * Mounts one thread serves at most (default; $LAYERFS_MOUNTS_PER_THREAD overrides). Measured
 * (bench/scale-probe.ts, 20k-file tree, find over each mount): a thread costs ~8.5 MB before any
 * mount; more mounts per thread cost less memory but serve the mounts of a thread one request at
 * a time.
 */
export const DEFAULT_MOUNTS_PER_THREAD = 16;

export function mountsPerThread(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.LAYERFS_MOUNTS_PER_THREAD);
  return Number.isInteger(v) && v >= 1 ? v : DEFAULT_MOUNTS_PER_THREAD;
}

/**
 * V8 young generation per serving thread (MB; $LAYERFS_YOUNG_GENERATION_MB overrides). V8's default
 * lets each thread's young generation grow to tens of MB, which a serving thread keeps resident:
 * measured, 10 mounts after a find over the 20k-file tree: 545 MB RSS at the default, 355 MB at 1
 * or 4 MB (one thread per mount then).
 */
export const YOUNG_GENERATION_MB = 4;

function youngGenerationMb(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.LAYERFS_YOUNG_GENERATION_MB);
  return Number.isFinite(v) && v > 0 ? v : YOUNG_GENERATION_MB;
}

export interface ThreadKind {
  debug: boolean;
  spinUs: number;
  maxWrite: number;
  unionModule?: string;
}

type Listener = (m: WorkerMessage) => void;

let nextThreadId = 1;

export class ServingThread {
  readonly id = nextThreadId++;
  readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly wakeFd: number;
  private readonly wake = Buffer.alloc(8);
  /** Mount id -> its lower layers' key, for every mount given to this thread and not ended. */
  readonly mounts = new Map<string, string>();
  private readonly listeners = new Map<string, Listener>();
  exited = false;
  exitError: Error | undefined;
  private ending = false;

  constructor(
    readonly kindKey: string,
    readonly kind: ThreadKind,
    private readonly onGone: (t: ServingThread) => void,
    /** Compile the request path at once, before any mount (a spare thread). */
    warmAtStart = false,
  ) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.wakeFd = eventfd();
    this.wake.writeBigUInt64LE(1n);
    const params: ThreadParams = {
      port: port2,
      wakeFd: this.wakeFd,
      debug: kind.debug,
      maxWrite: kind.maxWrite,
      spinUs: kind.spinUs,
      ...(kind.unionModule ? { unionModule: kind.unionModule } : {}),
      ...(warmAtStart ? { warmAtStart: true } : {}),
    };
    this.worker = new Worker(new URL('./session-worker.js', import.meta.url), {
      workerData: params,
      transferList: [port2],
      resourceLimits: { maxYoungGenerationSizeMb: youngGenerationMb() },
      // The branches' fds come from the addon (openat2), not node:fs; with tracking on, Node warns
      // on every close of one ("closed but not opened in unmanaged mode"), filling the daemon log.
      // Tracking would only close node:fs fds on a thread's death, not the addon's: off.
      trackUnmanagedFds: false,
    });
    this.worker.on('message', (m: WorkerMessage) => (m.t === 'drained' ? this.onDrained?.() : this.listeners.get(m.id)?.(m)));
    this.worker.on('error', (e) => (this.exitError = e));
    this.worker.once('exit', () => {
      this.exited = true;
      try {
        closeSync(this.wakeFd);
      } catch {
        /* closed */
      }
      // every mount it served stops with it (after any real 'stopped' already delivered)
      for (const [id, l] of [...this.listeners]) {
        l({ t: 'stopped', id, reason: 'exit', requests: 0, ...(this.exitError ? { error: this.exitError.message } : {}) });
      }
      this.onGone(this);
    });
  }

  send(c: Command): void {
    if (this.exited) return;
    this.port.postMessage(c);
    try {
      writeSync(this.wakeFd, this.wake);
    } catch {
      /* the thread is gone: its exit handler answers */
    }
  }

  /** Give mount `p` to this thread; `listener` gets its messages until `release`. */
  add(p: MountParams, lowerKey: string, listener: Listener): void {
    this.mounts.set(p.id, lowerKey);
    this.listeners.set(p.id, listener);
    this.send({ t: 'open', mount: p });
  }

  /** The mount ended (or failed): forget it; a thread left without mounts ends. */
  release(id: string): void {
    this.mounts.delete(id);
    this.listeners.delete(id);
    if (this.mounts.size === 0 && !keepAsSpare(this)) this.end();
  }

  private onDrained: (() => void) | undefined;

  /** Stop serving every mount (between two requests), leaving them mounted: a daemon upgrade. */
  drain(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.onDrained = resolve;
      this.worker.once('exit', () => resolve());
      this.send({ t: 'drain' });
    });
  }

  /** Tell the thread to end (once its mounts are gone). */
  end(): void {
    if (this.ending) return;
    this.ending = true;
    this.send({ t: 'exit' });
  }

  get accepting(): boolean {
    return !this.exited && !this.ending;
  }
}

const threads = new Set<ServingThread>();

/** The lower layers of a mount's options (`lowerdir=` or the `dirs=`/`br:` list), as a key. */
export function lowerKeyOf(options: string): string {
  const m = /(?:^|,)(?:lowerdir=|dirs=|br:|br=)([^,]*)/.exec(options);
  return m ? m[1]! : '';
}

/** How many lower layers (paths of a `:`-joined key) mounts of `t` have in common with `lowerKey`. */
function sharedLayers(t: ServingThread, layers: Set<string>): number {
  let best = 0;
  for (const key of t.mounts.values()) {
    let n = 0;
    for (const l of key.split(':')) if (layers.has(l)) n++;
    if (n > best) best = n;
  }
  return best;
}

/**
 * The thread a new mount goes to: among threads of its kind with room, the one whose mounts have
 * the most lower layers in common with it (images sharing base layers share their listings too),
 * else a new thread.
 */
export function threadFor(kind: ThreadKind, lowerKey: string, perThread = mountsPerThread()): ServingThread {
  const kindKey = kindKeyOf(kind);
  if (!kind.unionModule) {
    const layers = new Set(lowerKey.split(':').filter((l) => l !== ''));
    let pick: ServingThread | undefined;
    let pickScore = -1;
    for (const t of threads) {
      if (!t.accepting || t.kindKey !== kindKey || t.mounts.size >= perThread) continue;
      const score = sharedLayers(t, layers);
      if (score > pickScore) {
        pick = t;
        pickScore = score;
      }
    }
    if (pick) {
      // once the mount is added (the caller does so at once): is a spare wanted now?
      if (sparesOn) setImmediate(() => startSpare(kind));
      return pick;
    }
    const s = takeSpare(kind);
    if (s) return s;
  }
  const t = new ServingThread(kindKey, kind, (gone) => threads.delete(gone));
  threads.add(t);
  if (!kind.unionModule && sparesOn) setImmediate(() => startSpare(kind));
  return t;
}

function kindKeyOf(kind: ThreadKind): string {
  return JSON.stringify([kind.debug, kind.spinUs, kind.maxWrite, kind.unionModule ?? '']);
}

// ---- Spare threads (the resident daemon only: keepSpareThreads) ------------------------------
// Starting a thread takes ~0.2 s (loading the engine, compiling the request path): a mount that
// needs a new thread (the first, every 16th in a row, any after all mounts ended) would wait that
// long. The daemon keeps a started, warmed-up thread without mounts and gives it to such a mount,
// starting a replacement at once (16 mounts in a row take about as long as a thread needs to start).
// A thread whose last mount ends is kept too, up to MAX_SPARES idle threads (~14 MB each, warm); the
// last kept is given first (it is warm; a replacement may still be starting). Not in threadCount().
// A spare is only kept while no thread of its kind has more than half its room free (spareWanted):
// the next mounts go to that thread anyway, and a spare is a whole V8 isolate (~8-14 MB resident),
// so a daemon serving one mount runs one serving thread, not two. It starts when the thread
// taking the mounts is half full, so it is ready before a burst of mounts fills it.

let sparesOn = false;
const spares: ServingThread[] = [];
/** Idle threads kept at most: mount/umount in turn reuses one, a replacement starts meanwhile. */
const MAX_SPARES = 2;

/** Keep spare threads from now on, starting one of `kind` now. */
export function keepSpareThreads(kind: ThreadKind): void {
  sparesOn = true;
  startSpare(kind);
}

/** No more spare threads (shutdown): they end. */
export function dropSpareThreads(): void {
  sparesOn = false;
  for (const t of spares.splice(0)) t.end();
}

/** Forget spares that ended (a kept thread that died while idle). */
function pruneSpares(): void {
  for (let i = spares.length - 1; i >= 0; i--) if (!spares[i]!.accepting) spares.splice(i, 1);
}

/**
 * Whether a spare of `kind` is worth its memory: no serving thread of the kind (but `except`) has
 * more than half of its room free.
 */
function spareWanted(kind: ThreadKind, except?: ServingThread, perThread = mountsPerThread()): boolean {
  const key = kindKeyOf(kind);
  const free = Math.floor(perThread / 2);
  for (const t of threads) if (t !== except && t.accepting && t.kindKey === key && perThread - t.mounts.size > free) return false;
  return true;
}

function startSpare(kind: ThreadKind): void {
  if (!sparesOn || kind.unionModule) return;
  pruneSpares();
  const key = kindKeyOf(kind);
  if (spares.some((t) => t.kindKey === key && t.accepting)) return;
  if (!spareWanted(kind)) return;
  if (spares.length >= MAX_SPARES) spares.shift()!.end();
  const t: ServingThread = new ServingThread(
    key,
    kind,
    (gone) => {
      threads.delete(gone);
      const i = spares.indexOf(gone);
      if (i >= 0) spares.splice(i, 1);
    },
    true,
  );
  spares.push(t);
}

function takeSpare(kind: ThreadKind): ServingThread | null {
  const key = kindKeyOf(kind);
  for (let i = spares.length - 1; i >= 0; i--) {
    const t = spares[i]!;
    if (t.kindKey !== key || !t.accepting) continue;
    spares.splice(i, 1);
    threads.add(t);
    setImmediate(() => startSpare(kind));
    return t;
  }
  return null;
}

/** A thread left without mounts: kept as a spare (true) when spares are on and there is room. */
function keepAsSpare(t: ServingThread): boolean {
  pruneSpares();
  if (!sparesOn || t.kind.unionModule || !t.accepting || spares.length >= MAX_SPARES || !spareWanted(t.kind, t)) return false;
  threads.delete(t);
  spares.push(t);
  return true;
}

/** Stop every serving thread's serving, leaving the mounts mounted (daemon upgrade). */
export async function drainAll(): Promise<void> {
  await Promise.all([...threads].map((t) => t.drain()));
}

/** Serving threads alive now. */
export function threadCount(): number {
  return threads.size;
}
