/**
 * The thin client every way of mounting goes through: connect to this user's and mount
 * namespace's daemon (starting it, detached, when there is none), send one request, return the
 * reply. Loads only node built-ins and the runtime-dir paths: no engine, no commander.
 *
 * Starting is race-safe without a lock on the client side: any number of clients may spawn a
 * daemon; each daemon first takes the pid file with O_EXCL (see server.ts), and those that lose
 * exit at once, so exactly one listens. Clients just retry connecting until one answers.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { ensureRunDir } from '../fuse/runtime-dir.js';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { errnoCode, isCode } from '../errors/index.js';
import { daemonPaths, type DaemonPaths } from './paths.js';
import { MAX_LINE, type Reply, type Request } from './protocol.js';

const DAEMON_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
// dist/src/daemon/client.js -> <repo>/build/Release/layerfs-supervisor
const SUPERVISOR = fileURLToPath(new URL('../../../build/Release/layerfs-supervisor', import.meta.url));

/** The supervisor program, unless $LAYERFS_SUPERVISOR=0 or it is not built (then the daemon runs alone). */
function supervisorProgram(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.LAYERFS_SUPERVISOR === '0') return null;
  return existsSync(SUPERVISOR) ? SUPERVISOR : null;
}

/** A failure with an errno code and the daemon's one-line message. */
export class DaemonError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'DaemonError';
  }
}

type Sent = { reply: Reply } | { refused: true } | { lost: DaemonError };

/**
 * One request over one connection; `refused` when nothing listens, `lost` when the daemon took the
 * request and closed (or reset) the connection without answering: it died meanwhile.
 */
function exchange(socket: string, req: Request, timeoutMs: number): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let text = '';
    let settled = false;
    const done = (v: Sent | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      c.destroy();
      if (v instanceof Error) reject(v);
      else resolve(v);
    };
    const timer = setTimeout(() => done(new DaemonError('ETIMEDOUT', `the layerfs daemon did not answer in ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.write(JSON.stringify(req) + '\n'));
    c.on('data', (chunk: string) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl >= 0) {
        try {
          done({ reply: JSON.parse(text.slice(0, nl)) as Reply });
        } catch {
          done(new DaemonError('EPROTO', 'the layerfs daemon sent a malformed reply'));
        }
      } else if (text.length > MAX_LINE) done(new DaemonError('EPROTO', 'the layerfs daemon sent an overlong reply'));
    });
    c.on('error', (e) => {
      if (isCode(e, 'ENOENT', 'ECONNREFUSED')) done({ refused: true });
      else if (isCode(e, 'ECONNRESET', 'EPIPE')) done({ lost: new DaemonError(errnoCode(e)!, `cannot reach the layerfs daemon: ${e.message}`) });
      else done(new DaemonError(errnoCode(e) ?? 'EIO', `cannot reach the layerfs daemon: ${e.message}`));
    });
    c.on('close', () => done({ lost: new DaemonError('EPIPE', 'the layerfs daemon closed the connection without answering') }));
  });
}

/**
 * Start a daemon, detached, its stderr in its log: under the supervisor (README "Surviving a daemon
 * crash"), which starts it, or alone.
 */
function spawnDaemon(p: DaemonPaths): void {
  ensureRunDir();
  const log = openSync(p.log, 'a', 0o600);
  try {
    const sup = supervisorProgram();
    const [cmd, args] = sup ? [sup, [p.supervisorPid, p.pid, process.execPath, DAEMON_MAIN]] : [process.execPath, [DAEMON_MAIN]];
    const child = spawn(cmd, args, { cwd: '/', detached: true, stdio: ['ignore', log, log] });
    child.on('error', () => {});
    child.unref();
  } finally {
    closeSync(log);
  }
}

export interface RequestOptions {
  /** Start the daemon when none answers (default true; false: `refused` gives null). */
  start?: boolean;
  timeoutMs?: number;
}

/**
 * Connections lost before an answer after which a request is given up (a daemon that keeps dying on
 * it). 3 was too few: podman's mounts under kill -9 every 150-600 ms (test/restart) lost three in a
 * row without any request at fault; 8 takeovers are ~2-3 s of a poison request's damage.
 */
export const MAX_LOST = 8;

/**
 * Whether a request may be sent again after the daemon died before answering it: a mount carrying
 * a token (the new daemon answers one it already made), an unmount (stopMount checks the kernel's
 * table when the daemon no longer knows it), list and info; never a restart.
 */
function resendable(req: Request): boolean {
  if (req.op === 'mount') return typeof req.token === 'string' && req.token !== '';
  return req.op === 'umount' || req.op === 'list' || req.op === 'info';
}

/** A fresh mount-request token (protocol.ts MountRequest.token). */
export function mountToken(): string {
  return globalThis.crypto.randomUUID();
}

/**
 * Send a request to the daemon, starting it if needed. Resolves with the reply (which may be a
 * failure reply), or null when no daemon runs and `start` is false. When the daemon dies before it
 * answers, a resendable request is sent again (a supervised daemon is replaced within a second).
 */
export async function request(req: Request, o: RequestOptions = {}): Promise<Reply | null> {
  const p = daemonPaths();
  const timeoutMs = o.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let spawnedAt = 0;
  let wait = 5;
  let lost = 0;
  let lostAt = 0;
  for (;;) {
    const r = await exchange(p.socket, req, Math.max(1, deadline - Date.now()));
    if ('reply' in r) return r.reply;
    if ('lost' in r) {
      if (!resendable(req) || ++lost >= MAX_LOST || Date.now() > deadline) throw r.lost;
      lostAt = Date.now();
      await new Promise((res) => setTimeout(res, 50));
      continue;
    }
    if (o.start === false) {
      // the daemon died under the request: its supervisor (if any) starts the next within a second
      if (lost === 0 || Date.now() - lostAt > 3000) return null;
      await new Promise((res) => setTimeout(res, 50));
      continue;
    }
    const now = Date.now();
    if (now > deadline) throw new DaemonError('ETIMEDOUT', `the layerfs daemon did not start (see ${p.log})`);
    // (re)spawn at most every 2 s: a daemon that lost the pid-file race exits; the winner listens soon
    if (now - spawnedAt > 2000) {
      spawnDaemon(p);
      spawnedAt = now;
    }
    await new Promise((res) => setTimeout(res, wait));
    wait = Math.min(wait * 2, 100);
  }
}

/** The reply's payload, or a DaemonError carrying its code and one-line message. */
export async function call(req: Request, o: RequestOptions = {}): Promise<Extract<Reply, { ok: true }>> {
  const r = await request(req, o);
  if (r === null) throw new DaemonError('ESRCH', 'no layerfs daemon runs');
  if (!r.ok) throw new DaemonError(r.code, r.message);
  return r;
}
