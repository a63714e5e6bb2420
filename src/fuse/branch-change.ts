/**
 * A live branch change on the serving thread (session-worker.ts hands it the `branches` command):
 * the engine switches its branch list between two requests (engine/branch-set.ts), then the
 * kernel is told that what it cached may be wrong:
 * - FUSE_NOTIFY_INC_EPOCH (protocol 7.44): every dentry it holds, negative ones included, is
 *   looked up again on its next use, whatever entry_timeout said (no locks taken: safe from the
 *   serving thread);
 * - FUSE_NOTIFY_INVAL_INODE for every node id it holds: attributes are asked again; for
 *   directories the cached listing (FOPEN_CACHE_DIR pages) is dropped too, since a merged
 *   directory's mtime need not change when a branch below it comes or goes. File pages are not
 *   invalidated (from this thread that could wait for a page lock held by a READ queued for it),
 *   and need not be: files are opened without FOPEN_KEEP_CACHE, so the next open drops them, and a
 *   file open across the change keeps reading the file it opened (as an open file of overlayfs).
 */
import { closeSync } from 'node:fs';
import type { ResolvedChange } from '../engine/branch-changes.js';
import type { BranchState } from '../engine/types.js';
import { NotifyCode, Size } from './abi.js';
import { encodeOutHeader } from './codec.js';
import { encodeNotifyInvalInode } from './dirent-codec.js';
import type { NodeTable } from './node-table.js';

export interface BranchChangeCommand {
  t: 'branches';
  id: string;
  seq: number;
  changes: ResolvedChange[];
  /** realpath of each current branch root (asked by the main thread: paths may lead into this mount). */
  reals: string[];
  /** realpath of a new branch -> its O_PATH fd, opened by the main thread. */
  fds: Array<[string, number]>;
}

export type BranchChangeReply =
  | { t: 'branches'; id: string; seq: number; ok: true; branches: Array<{ path: string; perm: string; id: number }>; state?: BranchState; warning?: string }
  | { t: 'branches'; id: string; seq: number; ok: false; code: string; message: string };

/** What a served union offers for branch changes (the engine's Union; test unions lack it). */
export type ChangeBranches = (changes: ResolvedChange[], reals: string[], fds: Map<string, number>) => Array<{ path: string; perm: string; id: number }>;

export function encodeNotifyIncEpoch(b: Buffer): number {
  encodeOutHeader(b, Size.OUT_HEADER, NotifyCode.INC_EPOCH, 0);
  return Size.OUT_HEADER;
}

/**
 * Tell the kernel its caches may be stale after a branch change. `notify(len)` writes notifyBuf's
 * first `len` bytes to /dev/fuse. Returns a warning when the kernel lacks INC_EPOCH.
 */
export function tellKernel<N extends { readonly ino: number }>(nodes: NodeTable<N>, buf: Buffer, notify: (len: number) => void): string | undefined {
  let warning: string | undefined;
  try {
    notify(encodeNotifyIncEpoch(buf));
  } catch {
    warning = 'this kernel has no FUSE_NOTIFY_INC_EPOCH (Linux 6.16+): names it cached show the change after entry_timeout';
  }
  for (const [id, node] of nodes.entries()) {
    const dir = (node as { isDir?: boolean }).isDir === true;
    try {
      notify(encodeNotifyInvalInode(buf, id, dir ? 0 : -1, 0));
    } catch {
      /* the id was forgotten meanwhile */
    }
  }
  return warning;
}

/** Serve one `branches` command: the reply for the main thread. */
export function serveBranchChange<N extends { readonly ino: number }>(
  c: BranchChangeCommand,
  target: { change?: ChangeBranches; state?: () => BranchState; nodes?: NodeTable<N>; buf: Buffer; notify?: (len: number) => void; changed?: () => void } | undefined,
  messageOf: (e: unknown) => string,
  codeOf: (e: unknown) => string,
): BranchChangeReply {
  const fail = (code: string, message: string): BranchChangeReply => ({ t: 'branches', id: c.id, seq: c.seq, ok: false, code, message });
  if (!target?.change) {
    for (const [, fd] of c.fds) closeQuietly(fd);
    return fail('EOPNOTSUPP', 'this mount cannot change its branches');
  }
  let branches: Array<{ path: string; perm: string; id: number }>;
  try {
    branches = target.change(c.changes, c.reals, new Map(c.fds));
  } catch (e) {
    return fail(codeOf(e), messageOf(e));
  }
  target.changed?.();
  const warning = target.nodes && target.notify ? tellKernel(target.nodes, target.buf, target.notify) : undefined;
  let state: BranchState | undefined;
  try {
    state = target.state?.();
  } catch {
    /* the reply says the change is made; the daemon keeps the state it had */
  }
  return { t: 'branches', id: c.id, seq: c.seq, ok: true, branches, ...(state ? { state } : {}), ...(warning ? { warning } : {}) };
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* closed */
  }
}
