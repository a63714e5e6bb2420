/**
 * udba=notify: watches, with inotify, the branch directories of every directory the kernel knows
 * (each node id of a directory: one watch per branch it lives in), and turns each event into what
 * the engine drops (engine/udba.ts BranchChanges) and what the kernel is told: NOTIFY_INVAL_ENTRY
 * for the parent and name (a new name replaces a negative dentry, a removed one goes), and
 * NOTIFY_INVAL_INODE for a changed file's attributes or a directory's attributes and cached listing.
 * The kernel's long cache timeouts stay.
 *
 * Why inotify rather than fanotify: fanotify's directory-entry events (FAN_REPORT_DFID_NAME) need
 * CAP_SYS_ADMIN and mark a whole filesystem or mount (every change on a shared /var would wake the
 * daemon), while inotify works without privilege, per directory, for exactly the directories the
 * kernel holds. Its limit (fs.inotify.max_user_watches) is handled: past it, the directories left
 * without a watch are re-checked on access as with udba=reval (Reval with `covers`), and the mount's
 * kernel timeouts turn short for what it hands out from then on.
 *
 * The notifications are not written from the serving thread: NOTIFY_INVAL_ENTRY takes the parent
 * directory's inode lock, which a request of that directory waiting for this very thread's reply
 * may hold (a deadlock). They go to `send` (the main thread writes them, session.ts).
 *
 * Watches come and go with the kernel's references: added when a directory node gets its first id,
 * dropped when its last id is forgotten; after an event that may change which branches a directory
 * lives in, the watched ones are brought up to date, and a branch a known directory newly lives in
 * is listed after its watch is added (what was made there before the watch is not missed).
 */
import {
  IN_ATTRIB, IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_EXCL_UNLINK, IN_IGNORED, IN_ISDIR,
  IN_MODIFY, IN_MOVED_FROM, IN_MOVED_TO, IN_MOVE_SELF, IN_ONLYDIR, IN_Q_OVERFLOW, Inotify,
} from '../sys/inotify.js';
import { isCode } from '../errors/index.js';
import { EV_CONTENT, EV_CREATE, EV_DELETE, EV_SELF, REVAL_TIMEOUT, type BranchChanges, type KernelDrop } from '../engine/udba.js';
import type { UnionNode } from '../engine/node.js';

/** Every change (IN_MODIFY covers writes and truncates: IN_CLOSE_WRITE would only repeat it). */
const MASK =
  IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |
  IN_ONLYDIR | IN_EXCL_UNLINK;

/** What the kernel is told: [1, nodeid, pages (1: also the cached pages/listing)] or [2, parent nodeid, name]. */
export type Notice = [1, number, number] | [2, number, string];

/**
 * Kernel memory per watch, as the kernel itself budgets it when it sizes max_user_watches (a mark
 * plus the inode it pins: about 1 KiB on 64-bit). docs/performance.md has what was measured.
 */
export const WATCH_BYTES = 1024;

export interface WatcherDeps {
  changes: BranchChanges;
  root: UnionNode;
  /** The node ids the kernel holds for a node. */
  idsFor(node: UnionNode): number[];
  /** Every node the kernel holds (for an overflow). */
  known(): Iterable<UnionNode>;
  /** Merged names of a directory (for an overflow: negative dentries of names that appeared). */
  names(dir: UnionNode): string[];
  /** Names of directory `dir` in branch `bi` (a branch a known directory newly lives in). */
  namesIn(dir: UnionNode, bi: number): string[];
  send(notices: Notice[]): void;
  /** The watch limit was reached once: directories without a watch are re-checked from now on. */
  onLimit(isUnwatched: (dir: UnionNode) => boolean): void;
  /** An event changed attributes or xattrs somewhere (absent-xattr answers are stale). */
  onAttrib?(): void;
  /** The inotify instance (tests pass one that fails as the kernel may); default a new one. */
  inotify?: InotifyLike;
}

/** What the watcher uses of sys/inotify's Inotify. */
export type InotifyLike = Pick<Inotify, 'fd' | 'add' | 'remove' | 'read' | 'close'>;

/** The line `layerfs info` shows for a mount's udba mode and, with notify, its watches. */
export function udbaLine(
  mode: string, watches: number, dirs: number, unwatched: number, limitHit: boolean, maxWatches: number | null, entryTimeout: number = REVAL_TIMEOUT,
): string {
  if (mode === 'reval') return `udba=reval: directories re-checked on access (kernel entry timeout ${entryTimeout} s)`;
  if (mode !== 'notify') return 'udba=none: changes made directly in a branch are not looked for';
  let s = `udba=notify: ${watches} inotify watches on ${dirs} directories (~${Math.ceil((watches * WATCH_BYTES) / 1024)} KiB kernel memory)`;
  if (limitHit) s += `; inotify watch limit (${maxWatches ?? '?'}) reached: ${unwatched} directories re-checked on access (reval)`;
  return s;
}

export class BranchWatcher {
  private readonly ino: InotifyLike;
  private readonly byWd = new Map<number, { node: UnionNode; bi: number }>();
  private readonly watches = new Map<UnionNode, Map<number, number>>();
  /** Directories the kernel knows that have no watch (the limit was reached). */
  readonly unwatched = new Set<UnionNode>();
  limitHit = false;
  /** Watches held now. */
  count = 0;
  events = 0;
  overflows = 0;
  private out: Notice[] = [];
  private seen = new Set<string>();

  constructor(private readonly d: WatcherDeps) {
    this.ino = d.inotify ?? new Inotify();
    this.added(d.root);
  }

  get fd(): number {
    return this.ino.fd;
  }

  /** Directories with at least one watch. */
  get dirs(): number {
    return this.watches.size;
  }

  /** The kernel got a node (its first id): watch it if a directory. */
  added(node: UnionNode): void {
    if (node.isDir) this.sync(node, false);
  }

  /** The kernel forgot a node (its last id): its watches go. */
  forgotten(node: UnionNode): void {
    this.unwatched.delete(node);
    const m = this.watches.get(node);
    if (!m) return;
    this.watches.delete(node);
    for (const wd of m.values()) this.dropWd(wd, node);
  }

  private dropWd(wd: number, node: UnionNode): void {
    const w = this.byWd.get(wd);
    if (w && w.node === node) {
      this.byWd.delete(wd);
      this.ino.remove(wd);
      this.count--;
    }
  }

  /** Bring the watches of a known directory in line with the branches it lives in now. */
  private sync(node: UnionNode, rescan: boolean): void {
    const want = this.d.changes.watchBranches(node);
    let m = this.watches.get(node);
    const had = m !== undefined;
    const keep = new Set<number>();
    for (const bi of want) {
      keep.add(bi);
      if (m?.has(bi)) continue;
      let wd: number;
      try {
        // the magic link of a dir fd opened beneath the branch: followed by design (it is the dir)
        wd = this.d.changes.atWatchPath(node, bi, (path) => this.ino.add(path, MASK));
      } catch (e) {
        if (isCode(e, 'ENOSPC')) this.limit(node);
        continue; // gone meanwhile (ENOENT, ENOTDIR): the parent's watch reports it
      }
      if (!m) this.watches.set(node, (m = new Map()));
      m.set(bi, wd);
      if (!this.byWd.has(wd)) this.count++;
      this.byWd.set(wd, { node, bi });
      // a branch this known directory newly lives in: what was made there before the watch
      if (had && rescan) this.rescan(node, bi);
    }
    if (m) {
      for (const [bi, wd] of m) {
        if (keep.has(bi)) continue;
        m.delete(bi);
        this.dropWd(wd, node);
      }
      if (m.size === 0) this.watches.delete(node);
    }
  }

  private limit(node: UnionNode): void {
    this.unwatched.add(node);
    if (this.limitHit) return;
    this.limitHit = true;
    this.d.onLimit((dir) => this.unwatched.has(dir));
  }

  private rescan(node: UnionNode, bi: number): void {
    this.d.changes.dirChanged(node, bi);
    this.dropFor({ dir: node, name: null, node: null });
    for (const name of this.d.namesIn(node, bi)) this.dropFor({ dir: node, name, node: null });
  }

  /** Queue the kernel notifications for one drop (deduplicated within a batch). */
  private dropFor(k: KernelDrop): void {
    if (k.dir) {
      for (const id of this.d.idsFor(k.dir)) {
        this.push(`i${id}`, [1, id, 1]);
        if (k.name !== null) this.push(`e${id}/${k.name}`, [2, id, k.name]);
        if (k.names) for (const n of k.names) this.push(`e${id}/${n}`, [2, id, n]);
      }
    }
    if (k.node) for (const id of this.d.idsFor(k.node)) this.push(`i${id}`, [1, id, k.node.isDir ? 1 : 0]);
  }

  private push(key: string, n: Notice): void {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.out.push(n);
  }

  /** The inotify fd is readable: handle what is queued. */
  handle(): void {
    let overflowed = false;
    let attrib = false;
    /** Known directories whose branches may have changed: their watches are brought up to date after the batch. */
    const touched = new Set<UnionNode>();
    const dirNamed = (dir: UnionNode, name: string): void => {
      const c = this.d.changes.dirOfEntry(dir, name);
      if (c !== null) touched.add(c);
    };
    for (let evs = this.ino.read(); evs.length > 0; evs = this.ino.read()) {
      for (const ev of evs) {
        this.events++;
        if (ev.mask & IN_Q_OVERFLOW) {
          this.overflow();
          overflowed = true;
          continue;
        }
        const w = this.byWd.get(ev.wd);
        if (!w) continue;
        if (ev.mask & IN_IGNORED) {
          this.byWd.delete(ev.wd);
          this.count--;
          const m = this.watches.get(w.node);
          if (m && m.get(w.bi) === ev.wd) m.delete(w.bi);
          touched.add(w.node);
          continue;
        }
        const isDir = (ev.mask & IN_ISDIR) !== 0;
        if (ev.mask & IN_ATTRIB) attrib = true;
        let k: KernelDrop;
        if (ev.name === '') {
          k = this.d.changes.event(w.node, w.bi, EV_SELF, '', true);
          touched.add(w.node);
        } else if (ev.mask & (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM)) {
          k = this.d.changes.event(w.node, w.bi, ev.mask & (IN_CREATE | IN_MOVED_TO) ? EV_CREATE : EV_DELETE, ev.name, isDir);
          dirNamed(w.node, ev.name);
        } else if (isDir && ev.mask & IN_ATTRIB) {
          // a subdirectory's attributes or xattrs (opaque?): as if its own watch had said it
          const child = w.node.children.get(ev.name);
          k = child ? this.d.changes.event(child, w.bi, EV_SELF, '', true) : { dir: null, name: null, node: null };
          if (child) touched.add(child);
        } else {
          k = this.d.changes.event(w.node, w.bi, EV_CONTENT, ev.name, isDir);
        }
        this.dropFor(k);
      }
    }
    if (attrib) this.d.onAttrib?.();
    if (overflowed) this.resync();
    else if (touched.size > 0) this.resyncUnder(touched);
    this.flush();
  }

  /** The known directories at and below `tops` brought up to date (their branches may have changed). */
  private resyncUnder(tops: Set<UnionNode>): void {
    const done = new Set<UnionNode>();
    for (const top of tops) {
      const todo = [top];
      for (let n = todo.pop(); n !== undefined; n = todo.pop()) {
        if (done.has(n)) continue;
        done.add(n);
        if (this.watches.has(n) || this.unwatched.has(n)) {
          this.unwatched.delete(n);
          this.sync(n, true);
        }
        if (n.hasChildren) for (const c of n.children.values()) if (c.isDir) todo.push(c);
      }
    }
  }


  /**
   * The branch list changed (a branch added, removed or moved: the indices in the watches are
   * stale): every watch dropped and made again from the union's branches as they are now.
   */
  rebuild(): void {
    const nodes = [...this.watches.keys(), ...this.unwatched];
    for (const n of nodes) this.forgotten(n);
    this.d.changes.everything();
    for (const n of nodes) this.sync(n, false);
  }

  /** After events that may move directories between branches: every watched one brought up to date. */
  private resync(): void {
    for (const node of [...this.watches.keys()]) this.sync(node, true);
    for (const node of [...this.unwatched]) {
      this.unwatched.delete(node);
      this.sync(node, true);
    }
  }

  /** The event queue overflowed: anything may have changed. */
  private overflow(): void {
    this.overflows++;
    this.d.changes.everything();
    for (const n of this.d.known()) {
      this.dropFor({ dir: null, name: null, node: n });
      if (!n.isDir) continue;
      let names: string[];
      try {
        names = this.d.names(n);
      } catch {
        continue; // gone: its parent's entry is dropped
      }
      for (const name of names) this.dropFor({ dir: n, name, node: null });
      for (const name of n.children.keys()) this.dropFor({ dir: n, name, node: null });
    }
  }

  private flush(): void {
    if (this.out.length === 0) return;
    const out = this.out;
    this.out = [];
    this.seen = new Set();
    this.d.send(out);
  }


  close(): void {
    this.ino.close();
  }
}
