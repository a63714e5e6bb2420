/**
 * After a daemon crash: the node ids and handles the kernel still holds, found again from the
 * journal the dead daemon left (node-journal.ts), lazily (recovery pays nothing per held id; the
 * first request naming an id resolves it).
 *
 * - A node id: its (parent id, name) resolved from the root down, by lookups in the union. An id
 *   whose name was removed (unlinked, replaced) or that no longer resolves stays unknown: the
 *   kernel gets ESTALE and looks its path up again.
 * - An open file: opened again on its node with the flags of the first open (less O_CREAT,
 *   O_EXCL, O_TRUNC). A file open but unlinked before the crash has no name to be found by: its
 *   handle answers EBADF after the restart.
 * - An open directory: opened again (a new snapshot of its listing; offsets go on from there).
 *
 * The journal names an id by (parent id, name) as they were when the dead daemon wrote it, so it
 * stays right only while every name change is journaled for every id of the node renamed or
 * removed. A daemon journals changes for the ids in its table only: before the first request that
 * changes names (rename, unlink, rmdir, link, create, mkdir, mknod, symlink: `settle`), every id
 * and handle still pending is resolved into the table, so that request and all later ones journal
 * them. An id that no longer resolves is dropped from the journal at once: kept, it could be found
 * again as another file made later under its old name.
 */
import type { Ctx } from '../engine/types.js';
import { O_CREAT, O_EXCL, O_TRUNC } from '../sys/constants.js';
import type { JournalState, MoveKind } from './node-journal.js';
import { Op, ROOT_ID } from './abi.js';

/** The journal calls FuseOps makes (NodeJournal; absent for unsupervised mounts). */
export interface OpsJournal {
  named(id: number, parent: number, name: string): void;
  dropped(id: number): void;
  fileOpened(fh: number, id: number, flags: number): void;
  fileClosed(fh: number): void;
  /** After fileOpened: its passthrough state (passthrough-resume.ts). */
  fileMode?(fh: number, backingId: number, file: string): void;
  dirOpened(fh: number, id: number): void;
  dirClosed(fh: number): void;
  /** A rename's intent, then its end (rename-intent.ts). */
  moving?(kind: MoveKind, id: number, parent: number, name: string): void;
  moved?(): void;
}

/** What the restorer needs of FuseOps. */
export interface RestoreTarget<N, F, D> {
  root: N;
  lookup(parent: N, name: string): N;
  open(node: N, flags: number, ctx: Ctx): F;
  opendir(node: N, ctx: Ctx): D;
  adoptNode(id: number, node: N): void;
  adoptFile(fh: number, file: F, id: number): void;
  adoptDir(fh: number, node: N, dh: D, id: number): void;
  known(id: number): N | undefined;
  /** An id that did not resolve: the journal drops it. */
  lost(id: number): void;
}

const ROOT_CTX: Ctx = { uid: 0, gid: 0, pid: 0 };

/** Requests that change names: the pending ids and handles are settled before them. */
export const NAMING_OPS: ReadonlySet<number> = new Set([
  Op.RENAME,
  Op.RENAME2,
  Op.UNLINK,
  Op.RMDIR,
  Op.LINK,
  Op.CREATE,
  Op.MKDIR,
  Op.MKNOD,
  Op.SYMLINK,
  Op.TMPFILE,
]);

export class Restorer<N, F, D> {
  private readonly names: JournalState['names'];
  private readonly files: JournalState['files'];
  private readonly dirs: JournalState['dirs'];
  /** Ids that did not resolve (not asked again). */
  private readonly lost = new Set<number>();
  resolved = 0;

  constructor(
    state: JournalState,
    private readonly t: RestoreTarget<N, F, D>,
  ) {
    this.names = state.names;
    this.files = state.files;
    this.dirs = state.dirs;
  }

  /** Anything left to resolve. */
  get pending(): number {
    return this.names.size + this.files.size + this.dirs.size;
  }

  /** The node of an id the table does not know, if the journal names it. */
  node(id: number, depth = 0): N | undefined {
    if (id === ROOT_ID) return this.t.root;
    const known = this.t.known(id);
    if (known !== undefined) return known;
    const e = this.names.get(id);
    if (e === undefined || this.lost.has(id) || depth > 4096) return undefined;
    this.names.delete(id);
    const parent = this.node(e.parent, depth + 1);
    let node: N | undefined;
    if (parent !== undefined) {
      try {
        node = this.t.lookup(parent, e.name);
      } catch {
        node = undefined;
      }
    }
    if (node === undefined) {
      this.lost.add(id);
      this.t.lost(id);
      return undefined;
    }
    this.t.adoptNode(id, node);
    this.resolved++;
    return node;
  }

  /**
   * Resolve every pending id and reopen every pending handle (before a request that changes names;
   * see the module comment).
   */
  settle(): void {
    for (const id of [...this.names.keys()]) this.node(id);
    for (const fh of [...this.files.keys()]) this.file(fh);
    for (const fh of [...this.dirs.keys()]) this.dir(fh);
  }

  /** The kernel forgot an id before it was asked for. */
  forget(id: number): void {
    this.names.delete(id);
    this.lost.delete(id);
  }

  /** The kernel released a handle not reopened yet: not to be reopened. */
  closed(fh: number): void {
    this.files.delete(fh);
  }

  /** Reopen a file handle the dead daemon gave out; false when it cannot be. */
  file(fh: number): boolean {
    const f = this.files.get(fh);
    if (f === undefined) return false;
    this.files.delete(fh);
    const node = this.node(f.id);
    if (node === undefined) return false;
    try {
      this.t.adoptFile(fh, this.t.open(node, f.flags & ~(O_CREAT | O_EXCL | O_TRUNC), ROOT_CTX), f.id);
      return true;
    } catch {
      return false;
    }
  }

  dir(fh: number): boolean {
    const id = this.dirs.get(fh);
    if (id === undefined) return false;
    this.dirs.delete(fh);
    const node = this.node(id);
    if (node === undefined) return false;
    try {
      this.t.adoptDir(fh, node, this.t.opendir(node, ROOT_CTX), id);
      return true;
    } catch {
      return false;
    }
  }
}
