/**
 * The FUSE transport's programmatic API (for the CLI and the store):
 *   startMount({options, mountpoint, source?, debug?}) -> {id, pid} once the mount is live
 *   stopMount(mountpoint) -> unmounted and the daemon gone
 *   listMounts() -> the live mounts from the runtime dir
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkMountpoint, kernelUnmount, mountTable, FSTYPE } from './mount.js';
import { ensureRunDir, listMounts, logPath, newMountId, processAlive, type MountInfo } from './runtime-dir.js';
import type { SessionParams } from './session.js';
import { MountError } from './mount-error.js';

export { listMounts, findMount, runDir, siLines, processAlive, type MountInfo, type BranchInfo } from './runtime-dir.js';
export { startSession, type Session, type SessionParams } from './session.js';
export { splitOptions, mountTable, isMountPoint, FSTYPE } from './mount.js';

export interface StartMountOptions {
  options: string;
  mountpoint: string;
  source?: string;
  debug?: boolean;
  /** Base for relative paths (default process.cwd()). */
  cwd?: string;
  /** Give up after this long (ms, default 30 s). */
  timeoutMs?: number;
}

const DAEMON = fileURLToPath(new URL('./daemon.js', import.meta.url));

/** Spawn a detached daemon serving the mount; resolves once the mount is live. */
export function startMount(o: StartMountOptions): Promise<{ id: string; pid: number }> {
  const id = newMountId();
  const cwd = o.cwd ?? process.cwd();
  try {
    checkMountpoint(o.mountpoint, cwd); // fail fast; the daemon checks again
  } catch (e) {
    return Promise.reject(e);
  }
  const params: SessionParams = { options: o.options, mountpoint: o.mountpoint, cwd, id, debug: o.debug ?? false };
  if (o.source !== undefined) params.source = o.source;
  ensureRunDir();
  const log = openSync(logPath(id), 'a');
  const child = spawn(process.execPath, [DAEMON, JSON.stringify(params)], {
    cwd,
    detached: true,
    stdio: ['ignore', log, log, 'pipe'],
  });
  closeSync(log);
  return new Promise((resolveP, reject) => {
    let text = '';
    let settled = false;
    const pipe = child.stdio[3] as NodeJS.ReadableStream | null;
    const finish = (err: Error | null, v?: { id: string; pid: number }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      if (pipe && 'destroy' in pipe && typeof pipe.destroy === 'function') pipe.destroy();
      child.unref();
      if (err) reject(err);
      else resolveP(v!);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new MountError('ETIMEDOUT', 'the mount daemon did not get ready in time'));
    }, o.timeoutMs ?? 30_000);
    pipe?.setEncoding('utf8');
    pipe?.on('data', (chunk: string) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      let msg: { ok?: boolean; id?: string; pid?: number; code?: string; message?: string };
      try {
        msg = JSON.parse(text.slice(0, nl)) as typeof msg;
      } catch {
        msg = { ok: false, code: 'EIO', message: text.slice(0, nl) };
      }
      if (msg.ok) finish(null, { id: msg.id ?? id, pid: msg.pid ?? child.pid ?? 0 });
      else {
        // the daemon said what failed: its log holds nothing more
        rmSync(logPath(id), { force: true });
        finish(new MountError(msg.code ?? 'EIO', msg.message ?? 'mount failed'));
      }
    });
    pipe?.on('error', () => {});
    child.on('error', (e) => finish(e));
    child.on('exit', (code, sig) =>
      finish(new MountError('EIO', `the mount daemon exited (${sig ?? code}) before the mount was live; see ${logPath(id)}`)),
    );
  });
}

/** The live layerfs mount at this path (absolute), from the runtime dir or the mount table. */
function locate(mountpoint: string): { abs: string; info: MountInfo | undefined } {
  const abs = resolve(mountpoint);
  const info = listMounts().find((m) => m.mountpoint === abs);
  return { abs, info };
}

/** Unmount and wait for the daemon to exit. EINVAL when nothing of ours is mounted there. */
export async function stopMount(mountpoint: string, o: { lazy?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const { abs, info } = locate(mountpoint);
  const mounted = mountTable().some((m) => m.mountpoint === abs && m.fstype === FSTYPE);
  if (!mounted && !info) throw new MountError('EINVAL', `${abs} is not a layerfs mount point`);
  if (mounted) {
    try {
      await kernelUnmount(abs, o.lazy ?? false);
    } catch (e) {
      const code = typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'EIO';
      throw new MountError(code, code === 'EBUSY' ? `${abs}: target is busy` : (e as Error).message);
    }
  }
  if (!info) return;
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  while (processAlive(info.pid)) {
    if (Date.now() > deadline) throw new MountError('ETIMEDOUT', `daemon ${info.pid} serving ${abs} did not exit`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
