/**
 * One mount's life, from the main thread: check the mount point, open /dev/fuse, start the worker
 * (which builds the union), mount(2), let the worker serve, wait for INIT, publish the runtime dir.
 * The session ends when the worker's reads fail ENODEV (umount from anywhere) or on DESTROY; then
 * the runtime dir is removed. Unmounting is done from this thread, never from the serving one.
 */
import { realpathSync } from 'node:fs';
import { FIRST_BRID, newMountId, removeMountInfo, writeMountInfo, type MountInfo } from './runtime-dir.js';
import { checkMountpoint, closeQuietly, kernelUnmount, mountFuse, splitOptions, type MountVia } from './mount.js';
import { privilege } from '../sys/privilege.js';
import type { MountParams, WorkerMessage } from './session-worker.js';
import { lowerKeyOf, threadFor, type ThreadKind } from './serving-thread.js';
import { MountError } from './mount-error.js';
import { REVAL_TIMEOUT, udbaModeOf } from '../engine/udba.js';
import { UDBA_STATS_SLOTS } from './udba-serve.js';
import { URING_STATS_SLOTS, defaultUring, transportLine } from './uring-transport.js';
import { writeNotices } from './udba-notify.js';
import { udbaLine } from './udba-watch.js';
import { maxUserWatches } from '../sys/inotify.js';
import type { BranchChangeReply } from './branch-change.js';
import { sendBranchChange, type BranchChangeRequest } from './session-branches.js';
import type { InitOut } from './codec.js';
import type { Supervision } from './supervise-serve.js';
import type { BranchState } from '../engine/types.js';

export interface SessionParams {
  options: string;
  mountpoint: string;
  source?: string;
  debug?: boolean;
  /** Base for relative paths (default process.cwd()). */
  cwd?: string;
  id?: string;
  /** Transport tests: a module exporting openUnion() used instead of the engine. */
  unionModule?: string;
  maxWrite?: number;
  entryTimeout?: number;
  attrTimeout?: number;
  negativeTimeout?: number;
  /** Microseconds to poll /dev/fuse after each reply before sleeping (default DEFAULT_SPIN_US). */
  spinUs?: number;
  /** How long to wait for the kernel's INIT after mount(2) (ms). */
  initTimeoutMs?: number;
  /** Called as each phase of the mount ends (daemon/mount-timing.ts). */
  timing?: (phase: string) => void;
  /** Under the supervisor: journal to this file (passthrough off; see supervise-serve.ts). */
  supervision?: { journal: string; pretendNoResend?: boolean };
  /**
   * Taking over a live mount from a daemon that died: its /dev/fuse fd, INIT and published info;
   * the branch list live changes left (absent: none made), and whether one was under way.
   */
  resume?: { fd: number; init: InitOut; info: MountInfo; via: MountVia; branchState?: BranchState; changing?: boolean };
}

export interface Session {
  info: MountInfo;
  /** Resolves when serving ended (unmounted), after the runtime dir is removed. */
  done: Promise<{ reason: string; requests: number; error?: string }>;
  /** Unmount from this thread (lazy: detach even when busy). */
  unmount(lazy?: boolean): Promise<void>;
  /** Requests served so far (live, read from the serving thread's shared counter). */
  requests(): number;
  /** Lower listings this mount read itself; the others it shared with mounts of the same layers. */
  lowerListingsRead(): number;
  /** Which serving thread serves it (mounts of one thread share lower listings). */
  thread: number;
  /** The udba mode and, with notify, the watches held now (one line for `layerfs info`). */
  udba(): string;
  /** With -o uring: which transport serves it (io_uring or /dev/fuse, and why), one line for `layerfs info`; '' with nouring. */
  transport(): string;
  /** Change its branches (remount add:/del:/mod:...): see fuse/session-branches.ts. */
  changeBranches(c: BranchChangeRequest): Promise<BranchChangeReply>;
  /** Its /dev/fuse fd, how it was mounted and the INIT negotiated (what a restart needs). */
  fd: number;
  via: MountVia;
  init: InitOut | null;
  /** Supervised: the kernel has FUSE_NOTIFY_RESEND and the journal is kept. */
  resend: boolean;
}

const MAX_WRITE = 1 << 20;
/**
 * Measured with bench/run.ts (2 CPUs, interleaved, 7 rounds): ls -lR 269 ms at 50 us vs 461 ms
 * with blocking reads (spin=0), 289 at 20, 284 at 100; uncached stat 126 / 144 / 132 / 146 ms.
 * The daemon's CPU time did not grow (ls -lR 270 ms vs 330 ms at spin=0: fewer sleeps and wake-ups).
 */
export const DEFAULT_SPIN_US = 50;

/** The serving-thread kind of a mount without -d, spin= or max_write (the daemon keeps a spare one). */
export const DEFAULT_THREAD_KIND: ThreadKind = { debug: false, maxWrite: MAX_WRITE, spinUs: DEFAULT_SPIN_US };

/**
 * Default kernel cache timeouts (entries, attributes, negative entries), in seconds: one hour.
 * Every change made through the mount is already known to the kernel (it updates or drops its own
 * dentries and attributes for the requests it sends) or is told to it by the daemon (NOTIFY_INVAL
 * for what a request changes elsewhere: a directory that becomes merged, the other names of a hard
 * link on chmod/write/link/unlink/rename), so a long timeout shows nothing stale. Changes made to the
 * branch directories beneath a live mount are not seen until the timeout (AUFS udba=none; the lower
 * branches' listings are kept for the life of the mount anyway). fuse-overlayfs uses 10^9 s.
 */
export const DEFAULT_CACHE_TIMEOUT = 3600;

/** The cache timeouts a session uses: given ones, else the mount options', else the default. */
export function cacheTimeouts(
  p: { entryTimeout?: number; attrTimeout?: number; negativeTimeout?: number },
  t: { entryTimeout?: number; attrTimeout?: number; negativeTimeout?: number },
  byDefault: number = DEFAULT_CACHE_TIMEOUT,
): { entryTimeout: number; attrTimeout: number; negativeTimeout: number } {
  const entryTimeout = p.entryTimeout ?? t.entryTimeout ?? byDefault;
  return {
    entryTimeout,
    attrTimeout: p.attrTimeout ?? t.attrTimeout ?? byDefault,
    negativeTimeout: p.negativeTimeout ?? t.negativeTimeout ?? p.entryTimeout ?? t.entryTimeout ?? byDefault,
  };
}

/** What a mount without real root does differently, for `layerfs info`. */
export function rootlessLine(via: MountVia, userxattr: boolean): string {
  return [
    `rootless: ${via === 'fusermount3' ? 'fusermount3' : 'mount(2) in a user namespace'}`,
    'passthrough off (needs root)',
    userxattr ? 'xattrs user.overlay.*' : 'xattrs trusted.* (nouserxattr)',
    'hard-link index off (needs trusted.* xattrs)',
  ].join('; ');
}

/**
 * The index of a branch that holds the mount point strictly inside it, or null. The union holds each
 * branch root by fd, so a mount over a branch root (or any directory above it) is fine; but a lookup
 * of the mount point's name inside such a branch would cross into this very mount and wait on itself.
 */
export function coveredBranch(mountpoint: string, branches: readonly { path: string }[]): number | null {
  for (let i = 0; i < branches.length; i++) {
    let root: string;
    try {
      root = realpathSync(branches[i]!.path);
    } catch {
      continue;
    }
    if (mountpoint.startsWith(root === '/' ? '/' : root + '/') && mountpoint !== root) return i;
  }
  return null;
}

export async function startSession(p: SessionParams): Promise<Session> {
  const cwd = p.cwd ?? process.cwd();
  const t = splitOptions(p.options);
  const resume = p.resume;
  const mountpoint = resume ? resume.info.mountpoint : checkMountpoint(p.mountpoint, cwd);
  let fd = -1;
  const id = resume?.info.id ?? p.id ?? newMountId();
  const stats = new SharedArrayBuffer(8 * (UDBA_STATS_SLOTS + URING_STATS_SLOTS));
  // udba=reval: short kernel timeouts (the kernel asks again, the engine re-checks); given ones win
  const udba = udbaModeOf(t.unionOptions);
  const mount: MountParams = {
    id,
    stats,
    options: t.unionOptions,
    cwd,
    ...cacheTimeouts(p, t, udba === 'reval' ? REVAL_TIMEOUT : DEFAULT_CACHE_TIMEOUT),
    posixAcl: t.defaultPermissions,
    uring: t.uring ?? defaultUring(),
    ...(resume?.branchState ? { branchState: resume.branchState } : {}),
  };
  const thread = threadFor(
    {
      debug: p.debug ?? false,
      maxWrite: p.maxWrite ?? MAX_WRITE,
      spinUs: p.spinUs ?? t.spinUs ?? DEFAULT_SPIN_US,
      ...(p.unionModule ? { unionModule: p.unionModule } : {}),
    },
    lowerKeyOf(t.unionOptions),
  );
  p.timing?.('thread');

  let onMessage: (m: WorkerMessage) => void = () => {};
  const queue: WorkerMessage[] = [];
  let stoppedSeen = false;
  const branchReplies = new Map<number, (m: BranchChangeReply) => void>();
  thread.add(mount, lowerKeyOf(t.unionOptions), (m) => {
    if (m.t === 'branches') return void branchReplies.get(m.seq)?.(m);
    if (m.t === 'inval') {
      if (fd >= 0) writeNotices(fd, m.items);
      return;
    }
    if (m.t === 'stopped') {
      for (const [seq, reply] of branchReplies) reply({ t: 'branches', id, seq, ok: false, code: 'ESHUTDOWN', message: 'the mount ended' });
      if (stoppedSeen) return;
      stoppedSeen = true;
    }
    queue.push(m);
    onMessage(m);
  });

  /** Next message of one of these kinds (or 'stopped'), with a timeout. */
  const next = (kinds: WorkerMessage['t'][], ms: number): Promise<WorkerMessage | null> =>
    new Promise((resolve) => {
      const pick = (): WorkerMessage | undefined => {
        const i = queue.findIndex((m) => kinds.includes(m.t) || m.t === 'stopped' || m.t === 'error');
        return i >= 0 ? queue.splice(i, 1)[0] : undefined;
      };
      const now = pick();
      if (now) return resolve(now);
      const timer = setTimeout(() => {
        onMessage = () => {};
        resolve(null);
      }, ms);
      onMessage = () => {
        const m = pick();
        if (!m) return;
        clearTimeout(timer);
        onMessage = () => {};
        resolve(m);
      };
    });

  const fail = async (e: unknown): Promise<never> => {
    thread.send({ t: 'quit', id });
    thread.release(id);
    if (fd >= 0) closeQuietly(fd);
    throw e;
  };

  const opened = await next(['opened'], 30_000);
  if (!opened) return fail(new MountError('ETIMEDOUT', 'the union did not open in time'));
  if (opened.t === 'error') return fail(new MountError(opened.code, opened.message));
  if (opened.t !== 'opened') return fail(new MountError('EIO', `worker stopped: ${'error' in opened && opened.error ? opened.error : 'unknown'}`));

  p.timing?.('union');
  const covered = coveredBranch(mountpoint, opened.branches);
  if (covered !== null) {
    return fail(new MountError('EINVAL', `the mount point ${mountpoint} is inside branch ${covered} (a mount may cover a branch itself or its parent, not a directory within it)`));
  }
  let via: MountVia;
  if (resume) ({ fd, via } = resume);
  else {
    try {
      ({ fd, via } = await mountFuse(mountpoint, p.source ?? 'layerfs', t));
    } catch (e) {
      return fail(e);
    }
  }
  p.timing?.('mount(2)');
  // FUSE passthrough registers backing files with CAP_SYS_ADMIN of the initial user namespace
  const rootless = privilege() !== 'root';
  const supervision: Supervision | undefined = p.supervision ? { ...p.supervision, ...(resume ? { resume: { init: resume.init, ...(resume.changing ? { changing: true } : {}) } } : {}) } : undefined;
  // a supervised mount serves reads and writes itself: passthrough's backing files do not survive a restart reliably
  thread.send({ t: 'go', id, fd, ...(rootless || supervision ? { noPassthrough: true } : {}), ...(supervision ? { supervision } : {}) });
  /** Failing once the thread serves the fd: detach the mount, then close the fd only once the thread has let go of it. */
  const abandon = async (e: MountError, stoppedAlready: WorkerMessage | null = null): Promise<never> => {
    await kernelUnmount(mountpoint, true, via).catch(() => {});
    const stopped = stoppedAlready ?? (await next([], 10_000));
    thread.release(id);
    if (stopped) closeQuietly(fd);
    throw e;
  };
  let initState: InitOut | null = resume?.init ?? null;
  let resend = resume !== undefined;
  if (!resume) {
    const init = await next(['init'], p.initTimeoutMs ?? 15_000);
    if (!init || init.t !== 'init') {
      return abandon(new MountError('EIO', `the kernel's INIT for ${mountpoint} was not answered`), init?.t === 'stopped' ? init : null);
    }
    initState = init.state;
    resend = init.resend;
  }

  p.timing?.('init');
  const info: MountInfo = resume ? { ...resume.info, pid: process.pid } : {
    id,
    mountpoint,
    source: p.source ?? 'layerfs',
    pid: process.pid,
    options: p.options,
    branches: opened.branches.map((b, i) => ({ path: b.path, perm: b.perm, brid: FIRST_BRID + i })),
    xiPath: opened.xiPath,
    startedAt: new Date().toISOString(),
    ...(udba !== 'none' ? { udba } : {}),
    ...(rootless ? { rootless: rootlessLine(via, opened.userxattr) } : {}),
  };
  try {
    // (a taken-over mount's entry is written once, by the daemon, with its restart line: written
    // here first, a client waiting for the takeover would read it without)
    if (!resume) writeMountInfo(info);
  } catch (e) {
    return abandon(new MountError('EIO', `cannot write the runtime dir: ${(e as Error).message}`));
  }
  p.timing?.('published');

  const done = (async () => {
    const stopped = await next([], 2 ** 31 - 1);
    thread.release(id);
    closeQuietly(fd);
    removeMountInfo(id);
    const s = stopped && stopped.t === 'stopped' ? stopped : { reason: 'exit', requests: 0 };
    // serving died (not an unmount): detach the mount rather than leave a dead one behind
    if (s.reason !== 'unmounted' && s.reason !== 'destroyed') await kernelUnmount(mountpoint, true, via).catch(() => {});
    return { reason: s.reason, requests: s.requests, ...('error' in s && s.error ? { error: s.error } : {}) };
  })();

  const counters = new Float64Array(stats);
  return {
    info,
    done,
    unmount: (lazy = false) => kernelUnmount(mountpoint, lazy, via),
    requests: () => counters[0]!,
    lowerListingsRead: () => counters[1]!,
    udba: () => udbaLine(udba, counters[2]!, counters[3]!, counters[4]!, counters[5] === 1, maxUserWatches(), mount.entryTimeout),
    thread: thread.id,
    transport: () => transportLine(counters, UDBA_STATS_SLOTS),
    changeBranches: (c) => sendBranchChange(thread, id, c, branchReplies),
    fd,
    via,
    init: initState,
    resend: supervision !== undefined && resend,
  };
}
