/**
 * The resident daemon's programmatic API (for the CLI and the store):
 *   startMount({options, mountpoint, source?, cwd?}) -> {id, pid} once the mount is live
 *   stopMount(mountpoint) -> unmounted and its memory freed in the daemon
 *   daemonStatus() -> the daemon's pid, mounts, memory, requests served (null when none runs)
 */
import { resolve } from 'node:path';
import { FSTYPE, kernelUnmount } from '../fuse/mount.js';
import { mountTable } from '../sys/mountinfo.js';
import { findMountAfterTakeover } from '../fuse/runtime-dir.js';
import { errnoCode } from '../errors/index.js';
import { MountError } from '../fuse/mount-error.js';
import { call, mountToken, request, DaemonError } from './client.js';
import type { DaemonStatus } from './protocol.js';

export { DaemonError, request, call } from './client.js';
export { daemonPaths, mountNamespaceKey, DEFAULT_IDLE_MS } from './paths.js';
export type { DaemonStatus, MountStatus, Request, Reply } from './protocol.js';

export interface StartMountOptions {
  options: string;
  mountpoint: string;
  source?: string;
  /** Trace the mount's requests to the daemon's log. */
  debug?: boolean;
  /** Base for relative paths (default process.cwd()). */
  cwd?: string;
  /** Give up after this long (ms, default 60 s). */
  timeoutMs?: number;
}

/** Mount through the daemon (started when absent); resolves once the mount is live. */
export async function startMount(o: StartMountOptions): Promise<{ id: string; pid: number }> {
  try {
    const r = await call(
      {
        op: 'mount',
        options: o.options,
        mountpoint: o.mountpoint,
        cwd: o.cwd ?? process.cwd(),
        token: mountToken(),
        ...(o.debug ? { debug: true } : {}),
        ...(o.source !== undefined ? { source: o.source } : {}),
      },
      { timeoutMs: o.timeoutMs ?? 60_000 },
    );
    return { id: r.id ?? '', pid: r.pid ?? 0 };
  } catch (e) {
    if (e instanceof DaemonError) throw new MountError(e.code, e.message);
    throw e;
  }
}

/**
 * Unmount and wait until the daemon freed the mount. EINVAL when nothing of ours is mounted there.
 * The daemon unmounts it when it serves it; a mount left by a daemon that died is unmounted here.
 */
export async function stopMount(mountpoint: string, o: { lazy?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const abs = resolve(mountpoint);
  const info = await findMountAfterTakeover(abs);
  const mounted = mountTable().some((m) => m.mountpoint === abs && m.fstype === FSTYPE);
  if (!mounted && !info) throw new MountError('EINVAL', `${abs} is not a layerfs mount point`);
  if (info) {
    const r = await request({ op: 'umount', mountpoint: abs, lazy: o.lazy ?? false }, { start: false, timeoutMs: o.timeoutMs ?? 30_000 });
    if (r?.ok) return;
    if (r && !r.ok && r.code !== 'EINVAL') throw new MountError(r.code, r.message);
  }
  // asked again after a daemon died under the first request, which may have unmounted it already
  if (!mounted || !mountTable().some((m) => m.mountpoint === abs && m.fstype === FSTYPE)) return;
  try {
    await kernelUnmount(abs, o.lazy ?? false);
  } catch (e) {
    const code = errnoCode(e) ?? 'EIO';
    throw new MountError(code, code === 'EBUSY' ? `${abs}: target is busy` : (e as Error).message);
  }
}

/** The running daemon's status, or null when none runs (never starts one). */
export async function daemonStatus(): Promise<DaemonStatus | null> {
  const r = await request({ op: 'info' }, { start: false, timeoutMs: 10_000 });
  if (r === null) return null;
  if (!r.ok) throw new MountError(r.code, r.message);
  return r.status ?? null;
}
