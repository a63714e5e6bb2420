/**
 * The resident daemon: one Node process serving every mount of its user and mount namespace.
 *
 * Process model: the main thread only answers the socket (mount, umount, list, info) and watches
 * sessions; each mount is a session (fuse/session.ts) with its own union and /dev/fuse fd, served
 * by a worker thread that serves up to 16 mounts (fuse/serving-thread.ts): poll(2) over their fds,
 * then a synchronous read -> handle -> write per ready fd. A thread costs ~8.5 MB before its first
 * mount, so sharing them is what keeps 100 mounts small; mounts of the same lower layers go to the
 * same thread and share those layers' listings. An exception while serving one mount answers EIO on
 * that mount only; a crash of a thread ends that thread only: its mounts are detached, the others
 * keep serving, the daemon keeps answering.
 *
 * Lifetime: the first client starts it; it exits `idleMs` after its last mount ended (no socket or
 * pid file left). SIGTERM/SIGINT/SIGHUP unmount every mount lazily, then exit.
 */
import { linkSync, readFileSync, realpathSync, rmSync, statSync, unlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { errnoCode } from '../errors/index.js';
import { DEFAULT_THREAD_KIND, startSession, type Session } from '../fuse/session.js';
import { drainAll, dropSpareThreads, keepSpareThreads, threadCount } from '../fuse/serving-thread.js';
import { ensureRunDir, newMountId, writeMountInfo, type MountInfo } from '../fuse/runtime-dir.js';
import { processAlive } from '../sys/process.js';
import { defaultUring } from '../fuse/uring-transport.js';
import { unknownOptionsWarning } from '../fuse/option-warnings.js';
import type { DaemonPaths } from './paths.js';
import { isRemount, remount } from './remount.js';
import { MountTiming, mountTimingOn } from './mount-timing.js';
import { MAX_LINE, type DaemonStatus, type MountRequest, type Reply, type Request } from './protocol.js';
import { detachDeadMount, splitOptions } from '../fuse/mount.js';
import { journalPath, restartsLine, type Handover, type HandedMount, type MountBlob, type SupervisorLink } from './supervised.js';
import { remountRecord, resumableState } from './supervised-remount.js';

export interface DaemonOptions {
  paths: DaemonPaths;
  idleMs: number;
  /** Accept `unionModule` in mount requests (fault-isolation tests). */
  testHooks?: boolean;
  log?: (line: string) => void;
  /** Started by the supervisor (supervised.ts): mounts are registered with it. */
  supervisor?: SupervisorLink | null;
}

function codeOf(e: unknown): string {
  const c = errnoCode(e);
  return c !== undefined && /^E[A-Z0-9]+$/.test(c) ? c : 'EIO';
}

function messageOf(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown error';
}

/** Take the pid file (the daemon's lock). False when another live daemon holds it. */
export function takePidFile(path: string): boolean {
  for (let attempt = 0; attempt < 5; attempt++) {
    // made whole under a temporary name, then linked into place (fails when the name exists): no
    // other daemon ever reads it empty and takes it for stale
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${process.pid}\n`, { mode: 0o644 });
    try {
      linkSync(tmp, path);
      return true;
    } catch (e) {
      if (codeOf(e) !== 'EEXIST') throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
    let holder = NaN;
    try {
      holder = Number(readFileSync(path, 'utf8').trim());
    } catch {
      continue; // removed meanwhile: try again
    }
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)) return false;
    // stale (its daemon died) or half-written: only remove it if it still says the same
    try {
      const now = Number(readFileSync(path, 'utf8').trim());
      if (now === holder || !Number.isInteger(holder)) rmSync(path, { force: true });
    } catch {
      /* gone */
    }
  }
  return false;
}

interface Served {
  session: Session;
  info: MountInfo;
  /** The token of the request that made it (protocol.ts MountRequest.token). */
  token?: string;
  /** What the supervisor holds for it (supervised mounts). */
  blob?: MountBlob;
}

export class Daemon {
  private readonly mounts = new Map<string, Served>();
  /** Mount points with a mount request in progress. */
  private readonly pending = new Set<string>();
  private server: Server | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private endedRequests = 0;
  private mountsServed = 0;
  private stopping = false;
  readonly startedAt = new Date().toISOString();
  private exitResolve: () => void = () => {};
  /** Resolves when the daemon has shut down (idle or signalled) and removed its files. */
  readonly exited = new Promise<void>((r) => (this.exitResolve = r));

  constructor(private readonly o: DaemonOptions) {}

  private log(line: string): void {
    (this.o.log ?? ((l: string) => process.stderr.write(l + '\n')))(`layerfs daemon ${process.pid}: ${line}`);
  }

  /** Listen on the socket (the pid file must be held). */
  async listen(): Promise<void> {
    const { socket } = this.o.paths;
    ensureRunDir();
    rmSync(socket, { force: true }); // a dead daemon's; we hold the pid file, so no live one uses it
    const server = createServer((c) => this.onConnection(c));
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(socket, () => {
        server.off('error', rej);
        res();
      });
    });
    server.on('error', (e) => this.log(`socket: ${messageOf(e)}`));
    chmodSync(socket, 0o600);
    this.server = server;
    // a started thread ready for the next mount that needs one (serving-thread.ts)
    keepSpareThreads(DEFAULT_THREAD_KIND);
    this.armIdle();
  }

  private onConnection(c: Socket): void {
    const timing = mountTimingOn() ? new MountTiming() : undefined;
    let text = '';
    c.setEncoding('utf8');
    c.on('error', () => {});
    c.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > MAX_LINE) {
        this.reply(c, { ok: false, code: 'E2BIG', message: 'request too long' });
        return;
      }
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      c.removeAllListeners('data');
      let req: Request;
      try {
        req = JSON.parse(text.slice(0, nl)) as Request;
      } catch {
        this.reply(c, { ok: false, code: 'EPROTO', message: 'malformed request' });
        return;
      }
      timing?.mark('request');
      const timed = timing && req?.op === 'mount' ? timing : undefined;
      const replied = (r: Reply): void => {
        this.reply(c, r);
        if (!timed) return;
        timed.mark('reply');
        this.log(`mount ${(req as MountRequest).mountpoint}: ${timed.line()}${r.ok ? '' : ` (failed: ${r.code})`}`);
      };
      (timed ? this.mount(req as MountRequest, timed) : this.handle(req)).then(replied, (e: unknown) => replied({ ok: false, code: codeOf(e), message: messageOf(e) }));
    });
  }

  private reply(c: Socket, r: Reply): void {
    if (!c.destroyed) c.end(JSON.stringify(r) + '\n');
  }

  async handle(req: Request): Promise<Reply> {
    switch (req?.op) {
      case 'mount':
        return this.mount(req);
      case 'umount':
        return this.umount(req.mountpoint, req.lazy ?? false);
      case 'list':
        return { ok: true, mounts: [...this.mounts.values()].map((m) => m.info) };
      case 'info':
        return { ok: true, status: this.status() };
      case 'restart':
        return this.restart();
      default:
        return { ok: false, code: 'EINVAL', message: `unknown request '${String((req as { op?: unknown })?.op)}'` };
    }
  }

  status(): DaemonStatus {
    const m = process.memoryUsage();
    let live = 0;
    const mounts = [...this.mounts.values()].map((s) => {
      const requests = s.session.requests();
      live += requests;
      const transport = s.session.transport();
      return { ...s.info, requests, thread: s.session.thread, lowerListingsRead: s.session.lowerListingsRead(), udba: s.session.udba(), ...(transport ? { transport } : {}) };
    });
    return {
      pid: process.pid,
      startedAt: this.startedAt,
      mounts,
      memory: { rss: m.rss, heapUsed: m.heapUsed, external: m.external },
      requests: this.endedRequests + live,
      mountsServed: this.mountsServed,
      threads: threadCount(),
      idleMs: this.o.idleMs,
    };
  }

  /** The supervisor's restart count when this daemon took over (a mount's count starts from it). */
  private restartsSeen = 0;

  /** Why a new mount would not be supervised (null: it will be, if the kernel allows). */
  private unsupervised(options: string): string | null {
    if (!this.o.supervisor) return 'the daemon runs without a supervisor (LAYERFS_SUPERVISOR=0)';
    try {
      const o = splitOptions(options);
      if (o.supervise === false) return 'supervise=off';
      // a ring's entries die with the process that registered them: a new daemon could not take them
      if (o.uring ?? defaultUring()) return 'uring: the io_uring transport cannot be handed to a new daemon';
    } catch {
      /* startSession reports bad options */
    }
    return null;
  }

  /** Tell the supervisor of a live mount, and say in its info whether it survives a daemon crash. */
  private supervise(s: Session, req: { cwd: string; debug?: boolean; token?: string }, restarts: number, last?: Handover, carried?: Pick<MountBlob, 'branches' | 'remountToken'>): string | undefined {
    const link = this.o.supervisor;
    let warning: string | undefined;
    const off = this.unsupervised(s.info.options);
    if (link && off === null && s.resend && s.init) {
      // a taken-over mount keeps the branch list its live changes left (supervised-remount.ts)
      const blob: MountBlob = { info: s.info, cwd: req.cwd, via: s.via, init: s.init, restarts, ...(req.debug ? { debug: true } : {}), ...(req.token ? { token: req.token } : {}), ...carried };
      link.register(s.info.id, s.fd, blob);
      const served = this.mounts.get(s.info.id);
      if (served) served.blob = blob;
      s.info.supervision = restartsLine((last?.restarts ?? restarts) - restarts, last?.reason, last?.at);
    } else {
      const why =
        off ??
        `the kernel's FUSE protocol 7.${s.init?.minor ?? '?'} has no FUSE_NOTIFY_RESEND (needs 7.40, Linux 6.9)${process.env.LAYERFS_TEST_NO_RESEND === '1' ? ' [LAYERFS_TEST_NO_RESEND]' : ''}`;
      s.info.supervision = `restarts: not supervised (${why})`;
      if (link) warning = `${s.info.mountpoint}: not supervised: ${why}; a daemon crash ends this mount`;
    }
    try {
      writeMountInfo(s.info);
    } catch {
      /* the info stays as first written */
    }
    return warning;
  }

  /** Serve the mounts a dead (or upgraded) daemon served, handed over by the supervisor. */
  async resume(h: Handover): Promise<void> {
    this.restartsSeen = h.restarts;
    await Promise.all(h.mounts.map((m) => this.resumeOne(m, h)));
  }

  private async resumeOne(m: HandedMount, h: Handover): Promise<void> {
    const b = m.blob;
    const branchState = resumableState(b, (l) => this.log(l));
    try {
      const s = await startSession({
        options: b.info.options,
        mountpoint: b.info.mountpoint,
        cwd: b.cwd,
        debug: b.debug === true,
        id: b.info.id,
        source: b.info.source,
        supervision: { journal: journalPath(b.info.id) },
        resume: { fd: m.fd, init: b.init, info: b.info, via: b.via, ...(branchState ? { branchState } : {}), ...(b.changing ? { changing: true } : {}) },
      });
      this.adopt(s, b.token);
      const carried = { ...(b.branches ? { branches: b.branches } : {}), ...(b.remountToken ? { remountToken: b.remountToken } : {}) };
      this.supervise(s, { cwd: b.cwd, ...(b.debug ? { debug: true } : {}), ...(b.token ? { token: b.token } : {}) }, b.restarts, h, carried);
    } catch (e) {
      this.log(`${b.info.mountpoint}: cannot serve it again after the restart: ${messageOf(e)}`);
    }
  }

  /** Count a live session in, and out when it ends. */
  private adopt(s: Session, token: string | undefined): void {
    const id = s.info.id;
    this.mounts.set(id, { session: s, info: s.info, ...(token ? { token } : {}) });
    this.mountsServed++;
    void s.done.then((r) => {
      this.endedRequests += r.requests || s.requests();
      this.mounts.delete(id);
      try {
        this.o.supervisor?.unregister(id);
      } catch {
        /* the supervisor is gone */
      }
      if (r.error) this.log(`${s.info.mountpoint}: serving stopped: ${r.error}`);
      this.afterEnd();
    });
  }

  /**
   * `layerfs daemon restart`: stop taking requests, let every serving thread finish the request in
   * hand and stop, then exit; the supervisor starts the new build and hands it every mount.
   */
  private async restart(): Promise<Reply> {
    const link = this.o.supervisor;
    if (!link) return { ok: false, code: 'ENOTSUP', message: 'the daemon runs without a supervisor (LAYERFS_SUPERVISOR=0): a restart would end every mount' };
    const lost = [...this.mounts.values()].filter((m) => !m.session.resend).map((m) => m.info.mountpoint);
    if (lost.length > 0) return { ok: false, code: 'EBUSY', message: `not supervised, a restart would end them: ${lost.join(', ')}` };
    if (this.pending.size > 0) return { ok: false, code: 'EBUSY', message: 'a mount is in progress; try again' };
    this.stopping = true;
    setImmediate(() => void this.handOver(link));
    return { ok: true, pid: process.pid };
  }

  private async handOver(link: SupervisorLink): Promise<void> {
    this.disarmIdle();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
    dropSpareThreads();
    await drainAll();
    link.upgrade();
    this.log('restart: every mount handed to the supervisor');
    process.exit(0);
  }

  private async mount(req: MountRequest, timing?: MountTiming): Promise<Reply> {
    if (this.stopping) return { ok: false, code: 'ESHUTDOWN', message: 'the layerfs daemon is shutting down; try again' };
    if (typeof req.mountpoint !== 'string' || typeof req.options !== 'string' || typeof req.cwd !== 'string') {
      return { ok: false, code: 'EINVAL', message: 'mount request needs options, mountpoint and cwd' };
    }
    if (isRemount(req.options)) {
      const served = this.find(resolve(req.cwd, req.mountpoint));
      return remount(req, served, served && remountRecord(this.o.supervisor, served, (l) => this.log(l), (at) => this.testDie(at)));
    }
    const token = typeof req.token === 'string' && req.token !== '' ? req.token : undefined;
    if (token) {
      // sent again by a client whose first try reached a daemon that died before answering
      for (const m of this.mounts.values()) if (m.token === token) return { ok: true, id: m.info.id, pid: process.pid };
    }
    const key = resolve(req.cwd, req.mountpoint);
    if (this.pending.has(key)) return { ok: false, code: 'EBUSY', message: `mount point ${key} is busy (being mounted)` };
    this.pending.add(key);
    this.disarmIdle();
    try {
      // a mount whose daemon died between mount(2) and handing its fd to the supervisor is dead
      // (ENOTCONN): the first try of this very request may have left it
      if (await detachDeadMount(key)) this.log(`${key}: detached a dead layerfs mount left there`);
      const id = newMountId();
      const supervised = this.unsupervised(req.options) === null;
      const s = await startSession({
        id,
        ...(supervised ? { supervision: { journal: journalPath(id), ...(process.env.LAYERFS_TEST_NO_RESEND === '1' ? { pretendNoResend: true } : {}) } } : {}),
        options: req.options,
        mountpoint: req.mountpoint,
        cwd: req.cwd,
        debug: req.debug === true,
        ...(timing ? { timing: (phase: string) => timing.mark(phase) } : {}),
        ...(req.source !== undefined ? { source: req.source } : {}),
        ...(this.o.testHooks && req.unionModule ? { unionModule: req.unionModule } : {}),
      });
      this.testDie('mounted');
      this.adopt(s, token);
      const notSupervised = this.supervise(s, req, this.restartsSeen);
      this.testDie('registered');
      const warning = [unknownOptionsWarning(req.options), notSupervised].filter((w) => w).join('; ');
      return { ok: true, id, pid: process.pid, ...(warning ? { warning } : {}) };
    } catch (e) {
      return { ok: false, code: codeOf(e), message: messageOf(e) };
    } finally {
      this.pending.delete(key);
      this.afterEnd();
    }
  }

  /**
   * Test hook (LAYERFS_DAEMON_TEST_HOOKS=1): when the file $LAYERFS_TEST_DIE_FILE says `mounted`
   * (after mount(2), before the supervisor holds the fd) or `registered` (before the reply), the
   * daemon removes it and kills itself there; remounts: supervised-remount.ts.
   */
  private testDie(at: 'mounted' | 'registered' | 'remount-switched' | 'remount-registered'): void {
    const file = this.o.testHooks ? process.env.LAYERFS_TEST_DIE_FILE : undefined;
    if (!file) return;
    try {
      if (readFileSync(file, 'utf8').trim() !== at) return;
      unlinkSync(file);
    } catch {
      return;
    }
    process.kill(process.pid, 'SIGKILL');
  }

  private find(mountpoint: string): Served | undefined {
    const abs = resolve(mountpoint);
    let real = abs;
    try {
      real = realpathSync(abs);
    } catch {
      /* dead mount: compare the plain path */
    }
    for (const m of this.mounts.values()) if (m.info.mountpoint === abs || m.info.mountpoint === real) return m;
    return undefined;
  }

  private async umount(mountpoint: string, lazy: boolean): Promise<Reply> {
    const m = this.find(mountpoint);
    if (!m) return { ok: false, code: 'EINVAL', message: `${resolve(mountpoint)} is not a layerfs mount point` };
    try {
      await m.session.unmount(lazy);
    } catch (e) {
      const code = codeOf(e);
      return { ok: false, code, message: code === 'EBUSY' ? `${m.info.mountpoint}: target is busy` : messageOf(e) };
    }
    if (!lazy) await m.session.done;
    return { ok: true, id: m.info.id };
  }

  private disarmIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private armIdle(): void {
    this.disarmIdle();
    if (this.mounts.size > 0 || this.pending.size > 0) return;
    if (this.stopping) {
      void this.shutdown();
      return;
    }
    this.idleTimer = setTimeout(() => void this.shutdown(), this.o.idleMs);
  }

  private afterEnd(): void {
    if (this.mounts.size === 0 && this.pending.size === 0) this.armIdle();
  }

  /** Unmount everything lazily; the daemon exits once every session ended. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    for (const m of this.mounts.values()) m.session.unmount(true).catch((e: unknown) => this.log(`umount ${m.info.mountpoint}: ${messageOf(e)}`));
    this.afterEnd();
  }

  private shuttingDown = false;
  private async shutdown(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.disarmIdle();
    dropSpareThreads();
    const server = this.server;
    this.server = null;
    // stop taking requests first, then remove the files (a client arriving now starts a new daemon)
    if (server) await new Promise<void>((r) => server.close(() => r()));
    rmSync(this.o.paths.socket, { force: true });
    try {
      if (Number(readFileSync(this.o.paths.pid, 'utf8').trim()) === process.pid) rmSync(this.o.paths.pid, { force: true });
    } catch {
      /* gone */
    }
    // an empty log says nothing: leave the runtime dir as we found it (a log with lines stays)
    try {
      if (statSync(this.o.paths.log).size === 0) rmSync(this.o.paths.log, { force: true });
    } catch {
      /* none */
    }
    this.exitResolve();
  }
}
