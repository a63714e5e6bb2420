/**
 * What the kernel is told to drop besides what a request's own reply tells it.
 *
 * Cache timeouts (entry, attr, negative) default to an hour (session.ts): the kernel keeps what a
 * reply told it, and every change made through the mount reaches it. For the requests it sends, the
 * kernel updates or drops its own dentries and attributes (create/mkdir/link/rename/unlink instantiate
 * or drop names, replace negative entries, invalidate the parent; SETATTR replies carry the new
 * attributes; writes invalidate size/mtime). What a request changes elsewhere is told with
 * NOTIFY_INVAL_INODE (attributes only: no page-cache locks are taken, so this cannot deadlock; with
 * AUTO_INVAL_DATA the kernel drops stale pages itself when it sees the new size/mtime):
 * - the other names of a hard link (separate kernel inodes here) after SETATTR, WRITE, FALLOCATE,
 *   a write open (copy-up changes ctime), the FLUSH of a passthrough write open, LINK, UNLINK, a
 *   RENAME over one of them, SETXATTR and REMOVEXATTR (the kernel keeps each inode's ACLs with
 *   POSIX ACLs on, and drops them with its attributes) (`otherNames`, `linked`);
 * - from the engine, a node changed as a side effect of another request: a directory that turns
 *   merged when a child is copied up (nlink 1) (`sideEffect`).
 * Changes made to the branch directories beneath a live mount are not seen until the timeouts
 * (AUFS udba=none).
 */
import type { NodeTable } from './node-table.js';

export class Invalidation<N extends { readonly ino: number }> {
  /** `invalInode`: tell the kernel to drop its cached attributes of a node id (none: tell nothing). */
  constructor(
    private readonly nodes: NodeTable<N>,
    private readonly invalInode: ((nodeid: number) => void) | undefined,
  ) {}

  /** A change through node id `nodeid` (if known): drop the attributes of its inode's other names. */
  otherNames(nodeid: number | undefined): void {
    if (nodeid === undefined || !this.invalInode) return;
    for (const id of this.nodes.sameIno(nodeid)) this.invalInode(id);
  }

  /** `nodeid` got a new name (LINK): its link count changed, and so did its other names'. */
  linked(nodeid: number): void {
    this.invalInode?.(nodeid);
    this.otherNames(nodeid);
  }

  /** The engine changed `node` as a side effect of another request: every id the kernel holds for it. */
  sideEffect(node: N): void {
    if (!this.invalInode) return;
    for (const id of this.nodes.idsFor(node)) this.invalInode(id);
  }
}
