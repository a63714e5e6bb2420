/**
 * Where the resident daemon lives: one per user (the runtime dir, fuse/runtime-dir.ts runDir():
 * /run/layerfs for root, $XDG_RUNTIME_DIR/layerfs for a normal user, ...) and mount namespace (its inode number keys the files):
 *   <run>/daemon-<mntns>.sock   the request socket
 *   <run>/daemon-<mntns>.pid    its pid; created O_EXCL, it is also the lock one daemon holds
 *   <run>/daemon-<mntns>.log    its stderr (and the supervisor's)
 *   <run>/supervisor-<mntns>.pid the supervisor's pid (its lock), when the daemon runs under one
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { runDir } from '../fuse/runtime-dir.js';

/** Inode number of this process's mount namespace ('0' when /proc does not say). */
export function mountNamespaceKey(): string {
  try {
    return String(statSync('/proc/self/ns/mnt').ino);
  } catch {
    return '0';
  }
}

export interface DaemonPaths {
  dir: string;
  socket: string;
  pid: string;
  log: string;
  supervisorPid: string;
}

export function daemonPaths(key: string = mountNamespaceKey()): DaemonPaths {
  const dir = runDir();
  return {
    dir,
    socket: join(dir, `daemon-${key}.sock`),
    pid: join(dir, `daemon-${key}.pid`),
    log: join(dir, `daemon-${key}.log`),
    supervisorPid: join(dir, `supervisor-${key}.pid`),
  };
}

/**
 * Idle time before a daemon without mounts exits: $LAYERFS_DAEMON_IDLE_MS, default 5 min. A
 * container engine mounts once per container run (podman: one `run` after another, seconds to
 * minutes apart); a daemon started again for each costs the run ~1 s on a loaded 2-core VM
 * (measured: `podman run --rm IMAGE true` 1.8 s with a cold daemon, 0.6-0.9 s with a running one),
 * against ~60 MB held by an idle daemon meanwhile.
 */
export const DEFAULT_IDLE_MS = 300_000;

export function idleMsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.LAYERFS_DAEMON_IDLE_MS;
  if (raw === undefined || raw.trim() === '') return DEFAULT_IDLE_MS;
  const v = Number(raw);
  return Number.isFinite(v) && v >= 0 ? v : DEFAULT_IDLE_MS;
}
