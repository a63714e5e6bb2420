/**
 * The daemon's request protocol: over its unix socket a client writes one JSON request line and
 * reads one JSON reply line; then the connection closes. Replies are `{ok:true, ...}` or
 * `{ok:false, code, message}` where message is the one line a client prints.
 */
import type { MountInfo } from '../fuse/runtime-dir.js';

export interface MountRequest {
  op: 'mount';
  options: string;
  mountpoint: string;
  source?: string;
  /** Base for relative paths in options and mountpoint. */
  cwd: string;
  /** Trace this mount's requests to the daemon's log. */
  debug?: boolean;
  /** Test hook, honoured only when the daemon runs with LAYERFS_DAEMON_TEST_HOOKS=1. */
  unionModule?: string;
  /**
   * A nonce the client chose for this mount. The client sends the request again when the daemon
   * died before answering (the supervisor starts a new one); the daemon answers a token it already
   * mounted with that mount instead of mounting twice.
   */
  token?: string;
}

export type Request =
  | MountRequest
  | { op: 'umount'; mountpoint: string; lazy?: boolean }
  | { op: 'list' }
  | { op: 'info' }
  /** Hand every mount to a new daemon (supervised daemons only). */
  | { op: 'restart' };

export interface MountStatus extends MountInfo {
  requests: number;
  /** The serving thread (mounts of one thread share the listings of lower layers they have in common). */
  thread: number;
  /** Lower directory listings this mount read from disk itself (not shared from another mount). */
  lowerListingsRead: number;
  /** The udba mode and, with notify, the watches held now (one line). */
  udba?: string;
  /** Which transport serves it: io_uring or /dev/fuse read/write, and why (one line). */
  transport?: string;
}

export interface DaemonStatus {
  pid: number;
  startedAt: string;
  mounts: MountStatus[];
  /** Bytes: process.memoryUsage() of the daemon (rss covers every mount's thread). */
  memory: { rss: number; heapUsed: number; external: number };
  /** Requests served, by live and ended mounts together. */
  requests: number;
  /** Mounts served since start. */
  mountsServed: number;
  /** Serving threads alive (each serves several mounts). */
  threads: number;
  idleMs: number;
}

export type Reply =
  | {
      ok: true;
      id?: string;
      pid?: number;
      /** A mount's one-line warning for the client's stderr (unknown options, ignored as fuse-overlayfs does). */
      warning?: string;
      mounts?: MountInfo[];
      status?: DaemonStatus;
    }
  | { ok: false; code: string; message: string };

/** Longest request line accepted (options strings of deep layer stacks fit easily). */
export const MAX_LINE = 1 << 20;
