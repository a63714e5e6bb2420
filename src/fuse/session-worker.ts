/**
 * Worker thread entry: owns the union (the engine is synchronous and runs here) and serves
 * /dev/fuse with the blocking read -> handle -> write loop.
 *
 * Protocol with the main thread (session.ts):
 *   worker -> main  {t:'opened', branches, xiPath} | {t:'error', code, message}
 *                   {t:'init', flags} (INIT answered: the mount is live) | {t:'stopped', reason, requests}
 *   main -> worker  {t:'go'} (mount(2) returned: start reading) | {t:'quit'} (mount failed)
 */
import { writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { codeOf, errnoCode } from '../errors/index.js';
import { NO_REPLY, FuseOps } from './ops.js';
import { openUnion, type OpenedUnion } from './open-union.js';
import { Channel, traceLine } from './channel.js';
import {
  initFlagNames,
} from './codec.js';
import { encodeNotifyInvalInode } from './dirent-codec.js';
import { warmUp } from './warm-up.js';

export interface WorkerParams {
  fd: number;
  options: string;
  cwd: string;
  debug: boolean;
  maxWrite: number;
  entryTimeout: number;
  attrTimeout: number;
  negativeTimeout: number;
  /** Poll /dev/fuse this many microseconds after each reply before sleeping in poll(2); 0 = blocking reads. */
  spinUs: number;
  /** A module exporting `openUnion(options, cwd)` instead of the engine (transport tests). */
  unionModule?: string;
  /** Live counters the main thread reads while this thread blocks serving: [0] = requests served. */
  stats?: SharedArrayBuffer;
}

export type WorkerMessage =
  | { t: 'opened'; branches: { path: string; perm: string }[]; xiPath: string }
  | { t: 'error'; code: string; message: string }
  | { t: 'init'; flags: string[]; maxWrite: number }
  | { t: 'stopped'; reason: string; requests: number; error?: string };

// Errors are answered as errno numbers here; their stack traces are never shown, and capturing
// one costs more than the syscall behind a typical ENOENT/ENODATA. Keep them only for -d.
if (!(workerData as WorkerParams).debug) Error.stackTraceLimit = 0;

const port = parentPort;
if (!port) throw new Error('session-worker must run in a worker thread');
const params = workerData as WorkerParams;

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

async function main(): Promise<void> {
  let opened: OpenedUnion;
  try {
    if (params.unionModule) {
      const mod = (await import(params.unionModule)) as { openUnion: typeof openUnion };
      opened = mod.openUnion(params.options, params.cwd);
    } else {
      opened = openUnion(params.options, params.cwd);
    }
  } catch (e) {
    const code = errnoCode(e) ?? 'EINVAL';
    post({ t: 'error', code, message: e instanceof Error ? e.message : String(e) });
    return;
  }
  // Compile the request path before the kernel starts waiting on it (read-only requests).
  try {
    const w = warmUp(opened.union);
    if (params.debug) debugLine(`layerfs: warm-up: ${w.requests} requests in ${w.ms.toFixed(0)} ms\n`);
  } catch (e) {
    if (params.debug) debugLine(`layerfs: warm-up failed (serving anyway): ${e instanceof Error ? e.message : String(e)}\n`);
  }
  post({ t: 'opened', branches: opened.branches, xiPath: opened.xiPath });

  const go = await new Promise<boolean>((resolve) => {
    port!.once('message', (m: { t: string }) => resolve(m.t === 'go'));
  });
  if (!go) {
    opened.close();
    return;
  }

  const notifyBuf = Buffer.alloc(64);
  let channel: Channel | undefined;
  const ops = new FuseOps(opened.union, {
    devFd: params.fd,
    passthrough: opened.passthrough,
    invalInode: (nodeid) => channel?.notify(notifyBuf, encodeNotifyInvalInode(notifyBuf, nodeid, -1, 0)),
    entryTimeout: params.entryTimeout,
    attrTimeout: params.attrTimeout,
    negativeTimeout: params.negativeTimeout,
    maxWrite: params.maxWrite,
    onInit: (init) => {
      const flags = initFlagNames(init.flags, init.flags2);
      if (params.debug) debugLine(`layerfs: INIT 7.${init.minor} max_write=${init.maxWrite} max_pages=${init.maxPages} flags=${flags.join('|')}\n`);
      post({ t: 'init', flags, maxWrite: init.maxWrite });
    },
    onBug: (opcode, e) => debugLine(`layerfs: unexpected error in opcode ${opcode}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`),
  });
  channel = new Channel(params.fd, {
    maxWrite: params.maxWrite,
    spinUs: params.spinUs,
    noReply: NO_REPLY,
    trace: params.debug
      ? (hd, r) => debugLine(r === NO_REPLY ? traceLine(hd, 0, codeOf).replace(/-> 0\n$/, '-> (no reply)\n') : traceLine(hd, r, codeOf))
      : undefined,
  });
  // The serving loop never yields to this thread's event loop: count into shared memory instead.
  const stats = params.stats ? new Float64Array(params.stats) : null;
  const handler = stats
    ? {
        dispatch: (hd: Parameters<typeof ops.dispatch>[0], b: Buffer, end: number, out: Buffer): number => {
          stats[0]!++;
          return ops.dispatch(hd, b, end, out);
        },
        initDone: (): void => ops.initDone(),
      }
    : ops;
  let reason = 'unmounted';
  let error: string | undefined;
  try {
    reason = channel.serve(handler);
  } catch (e) {
    reason = 'error';
    error = e instanceof Error ? e.message : String(e);
  }
  ops.releaseAll();
  try {
    opened.close();
  } catch (e) {
    error ??= e instanceof Error ? e.message : String(e);
  }
  post({ t: 'stopped', reason, requests: channel.requests, ...(error ? { error } : {}) });
}

void main();
