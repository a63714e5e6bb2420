/**
 * udba (AUFS's "user's direct branch access"): what the union does about changes made directly in
 * a branch directory, behind the mount's back.
 *
 * - `none` (default): nothing. The lower listings and cached lookups stay as they were; such
 *   changes show late or never (AUFS udba=none, overlayfs: undefined).
 * - `reval`: re-check on access. Each directory a lookup or readdir goes through is re-checked at
 *   most once per REVAL_INTERVAL_MS: one lstat of it in each branch it lives in (plus the writable
 *   one); when a stamp (inode, mtime, ctime) or the set of branches differs from the last check,
 *   what the union cached about its entries is dropped (`dirChanged`). The transport keeps the
 *   kernel's caches short (REVAL_TIMEOUT) so that the kernel asks again.
 * - `notify`: the transport watches the branch directories the kernel knows (inotify, see
 *   fuse/udba-watch.ts) and hands each event to `BranchChanges.event`, which drops exactly what the
 *   event makes stale and says what the kernel must drop; the long kernel timeouts stay.
 *
 * The union never writes a lower branch, so every event there is a change from outside. In the
 * writable branch most events are the union's own writes: `event` recognises the entry events
 * whose outcome the union already knows (a name it created, one it removed) and asks for nothing.
 */
import { ST, fdPath, joinRel, statArray } from '../branch/index.js';
import { FsError } from '../errors/index.js';
import { closeSync } from 'node:fs';
import { O_ACCMODE, O_DIRECTORY, O_PATH } from '../sys/constants.js';
import { OPQ, PRIVATE, WH, WH_META } from '../format/index.js';
import type { Core } from './core.js';
import type { UnionNode } from './node.js';
import { splitOptionList } from './params.js';

export type UdbaMode = 'none' | 'reval' | 'notify';

export const UDBA_MODES: readonly UdbaMode[] = ['none', 'reval', 'notify'];

/**
 * Kernel cache timeouts (entries, attributes, negative entries) in seconds with udba=reval: short,
 * not zero (zero makes the kernel ask for every path component of every access: ~17 requests per
 * entry of `ls -lR`). A change made in a branch shows within about this long (AUFS reval's lazy check).
 */
export const REVAL_TIMEOUT = 1;

/** A directory's stamps are checked at most once in this many ms (udba=reval). */
export const REVAL_INTERVAL_MS = 500;

/** The udba mode named in a mount option string (`udba=...`), without parsing the rest. */
export function udbaModeOf(options: string): UdbaMode {
  let mode: UdbaMode = 'none';
  for (const raw of splitOptionList(options)) {
    const opt = raw.trim();
    if (opt.startsWith('udba=')) mode = parseUdba(opt.slice(5));
  }
  return mode;
}

/** `none|reval|notify`; anything else is a one-line EINVAL naming the option. */
export function parseUdba(v: string | undefined): UdbaMode {
  if (v === 'none' || v === 'reval' || v === 'notify') return v;
  throw new FsError('EINVAL', 'mount', undefined, undefined, `udba must be none, reval or notify, not '${v ?? ''}'`);
}

/** What the kernel must be told after one branch event. */
export interface KernelDrop {
  /** The directory whose entry changed (drop its attributes and listing, and the dentry `name`). */
  dir: UnionNode | null;
  /** The name in `dir` whose dentry (positive or negative) is stale. */
  name: string | null;
  /** A node whose attributes (size, mtime, mode, nlink...) are stale. */
  node: UnionNode | null;
  /** More names of `dir` whose dentries are stale (the directory's merge changed). */
  names?: string[];
}

const NOTHING: KernelDrop = { dir: null, name: null, node: null };

/** Event kinds, as BranchChanges.event understands them (the transport maps inotify bits to these). */
export const EV_CREATE = 1; // a name appeared (created, moved in)
export const EV_DELETE = 2; // a name went (deleted, moved away)
export const EV_CONTENT = 3; // a file's data or attributes changed
export const EV_SELF = 4; // the watched directory itself changed (attributes, xattrs such as opaque)

/**
 * Engine side of udba: drops cached lookups and lower listings made stale by a change in a branch.
 * No FUSE here: tests drive it directly.
 */
export class BranchChanges {
  private readonly st = statArray();

  constructor(private readonly core: Core) {}

  /** Whether the union itself writes branch `bi` (its events may be the union's own). */
  private unionWrites(bi: number): boolean {
    return this.core.branches[bi]?.writable === true;
  }

  /** The branches holding directory node `dir` (where to watch it). */
  watchBranches(dir: UnionNode): readonly number[] {
    this.core.ensure(dir);
    if (dir.unlinked || !dir.isDir) return [];
    return dir.layers;
  }

  /**
   * fn(path) with a path of directory node `dir` in branch `bi` for inotify_add_watch: the magic
   * link of an O_PATH fd opened beneath the branch root (no symlink or `..` on the way can lead
   * outside the branch), closed after. Throws the open's FsError when it is gone there.
   */
  atWatchPath<T>(dir: UnionNode, bi: number, fn: (path: string) => T): T {
    const fd = this.core.branches[bi]!.open(dir.rel, O_PATH | O_DIRECTORY);
    try {
      return fn(fdPath(fd));
    } finally {
      closeSync(fd);
    }
  }

  /** Current layers of a node (after re-resolving it if stale). */
  layersOf(node: UnionNode): readonly number[] {
    this.core.ensure(node);
    return node.unlinked ? [] : node.layers;
  }

  /**
   * Event `kind` about entry `name` of directory node `dir` in branch `bi` (`isDir`: the entry is,
   * or was, a directory). Drops what is stale and says what the kernel must drop.
   */
  event(dir: UnionNode, bi: number, kind: number, name: string, isDir: boolean): KernelDrop {
    if (dir.unlinked) return NOTHING;
    // what lookups found missing in it may be there now (even an event of the union's own: cheap)
    this.core.misses.changed(dir);
    if (kind === EV_SELF) {
      // attributes or xattrs of the directory in that branch (opaque?), or it went away there:
      // when the branches it merges changed, everything below it is stale (and the kernel's
      // entries of its children); else only its attributes
      const before = dir.layers;
      dir.stale();
      this.core.ensure(dir);
      if (!dir.unlinked && sameLayers(before, dir.layers)) return { dir: null, name: null, node: dir };
      return this.merged(dir, bi);
    }
    if (name === OPQ) return this.merged(dir, bi);
    if (name.startsWith(WH_META)) return NOTHING; // our private names, AUFS's own (.wh..wh.plnk ...)
    if (dir.parent === null && name.startsWith(PRIVATE)) return NOTHING;
    const whiteout = name.startsWith(WH);
    const target = whiteout ? name.slice(WH.length) : name;
    const child = dir.children.get(target) ?? null;
    const live = child !== null && !child.unlinked;
    if (kind === EV_CONTENT) {
      if (whiteout || !live) return NOTHING;
      // written through the mount (open for writing there): the kernel made the writes itself
      if (this.unionWrites(bi) && writtenThrough(child!)) return NOTHING;
      return { dir: null, name: null, node: child };
    }
    if (this.unionWrites(bi) && this.known(child, live, kind, whiteout)) return NOTHING;
    this.listingChanged(dir, bi);
    if (child !== null) {
      if (child.isDir || isDir) {
        this.staleTree(child);
        this.forgetListingsUnder(joinRel(dir.rel, target));
      } else if (live) this.refile(dir, target, child);
      else child.stale();
    }
    return { dir, name: target, node: live ? child : null };
  }

  /**
   * A file's name changed in a branch: when NAME now leads to another file (removed, replaced,
   * uncovered below), the node lets go of the name as an unlink would (it lives on for open files)
   * and the next lookup makes a node for what is there now, with that file's number; when it still
   * leads to the same file (a copy below it went), the node stays and is looked up again.
   */
  private refile(dir: UnionNode, name: string, node: UnionNode): void {
    dir.children.delete(name);
    let now: UnionNode | null = null;
    try {
      now = this.core.lookupData(dir, name).node;
    } catch {
      now = null;
    }
    if (now !== null && now.ino === node.ino && now.type === node.type) {
      dir.children.set(name, node);
      node.stale();
    } else node.removed();
  }

  /**
   * The cached directory an entry event about `name` of `dir` may change the branches of: the
   * directory NAME (or the one `.wh.NAME` hides), or `dir` itself for its opaque marker; null if none.
   */
  dirOfEntry(dir: UnionNode, name: string): UnionNode | null {
    if (name === OPQ) return dir;
    const c = dir.children.get(name.startsWith(WH) ? name.slice(WH.length) : name);
    return c !== undefined && c.isDir ? c : null;
  }

  /** What a directory merges changed: its listing, its cached subtree and the kernel's entries of its children. */
  private merged(dir: UnionNode, bi: number): KernelDrop {
    this.dirChanged(dir, bi);
    this.staleTree(dir);
    return { dir, name: null, node: dir, names: [...dir.children.keys()] };
  }

  /**
   * Whether an entry event of the writable branch only says what the union already did: a name
   * it holds there now appeared, a name it no longer has went (its own create, unlink, rename,
   * copy-up). Wrong only in the safe direction: an unknown event costs an invalidation.
   */
  private known(child: UnionNode | null, live: boolean, kind: number, whiteout: boolean): boolean {
    // gen 0: made stale by an earlier event (not the union's own view); an older generation is
    // only a rename's lazy re-resolve, the name still the union's
    const current = live && child!.gen !== 0 && child!.layers[0] !== undefined && this.unionWrites(child!.layers[0]!);
    const appeared = kind === EV_CREATE;
    if (!whiteout) return appeared ? current && this.sameFile(child!) : !live;
    // a whiteout appearing: the union removed the name; going: the union made the name again
    return appeared ? !live : current;
  }

  /**
   * Whether the union's node is still the file its name now leads to (a file moved over the name
   * from outside, an atomic replace, is another file: its number differs). Directories: yes.
   */
  private sameFile(node: UnionNode): boolean {
    if (node.isDir) return true;
    const bi = node.layers[0]!;
    if (!this.core.branches[bi]!.lstatInto(node.rel, this.st)) return false;
    return this.core.inoOf({ dev: this.st[ST.dev]!, ino: this.st[ST.ino]! }, bi) === node.ino;
  }

  /** A directory's listing in branch `bi` changed: forget it (and the merged name map built from it). */
  private listingChanged(dir: UnionNode, bi: number): void {
    this.core.lowerIndex.forget(bi, dir.rel);
    dir.forgetMentions();
  }

  /**
   * udba=reval found `dir` changed: it is looked up again (its branches may differ: opaque), and
   * what was cached about its entries dropped. Whether its branches changed.
   */
  revalidated(dir: UnionNode): boolean {
    const before = dir.layers;
    dir.stale();
    this.core.ensure(dir);
    this.dirChanged(dir);
    return !sameLayers(before, dir.layers);
  }

  /** Everything cached about the entries of `dir` is stale (its listing in `bi`, or in all its branches). */
  dirChanged(dir: UnionNode, bi?: number): void {
    this.core.misses.changed(dir);
    if (bi !== undefined) this.core.lowerIndex.forget(bi, dir.rel);
    else for (const b of this.core.branches) this.core.lowerIndex.forget(b.index, dir.rel);
    dir.forgetMentions();
    for (const c of dir.children.values()) {
      if (c.isDir) this.staleTree(c);
      else c.stale();
    }
  }

  /** `node` and every cached node below it re-resolve on next use (their layers may have changed). */
  staleTree(node: UnionNode): void {
    this.core.misses.clear(); // (the subtree's directories: all of them, simply)
    const todo = [node];
    for (let n = todo.pop(); n !== undefined; n = todo.pop()) {
      n.stale();
      n.forgetMentions();
      if (n.hasChildren) for (const c of n.children.values()) todo.push(c);
    }
  }

  private forgetListingsUnder(rel: string): void {
    this.core.lowerIndex.forgetUnder(rel);
  }

  /** Names of directory `dir` in branch `bi`, a whiteout as the name it hides ([] when absent there). */
  namesIn(dir: UnionNode, bi: number): string[] {
    let names: string[];
    try {
      names = this.core.branches[bi]!.readdirNames(dir.rel);
    } catch {
      return [];
    }
    const out: string[] = [];
    for (const n of names) {
      if (n.startsWith(WH_META)) continue;
      out.push(n.startsWith(WH) ? n.slice(WH.length) : n);
    }
    return out;
  }

  /** Anything may have changed (the event queue overflowed): drop every listing and cached lookup. */
  everything(): void {
    this.core.misses.clear();
    this.core.lowerIndex.clear();
    this.staleTree(this.core.root);
  }

  /** Stamps of a directory for reval: per branch it lives in (and each writable one) its index, inode, mtime and ctime. */
  stamps(dir: UnionNode): number[] {
    const out: number[] = [];
    const core = this.core;
    const visit = (bi: number): void => {
      const s = this.st;
      if (!core.branches[bi]!.lstatInto(dir.rel, s)) {
        out.push(bi, -1);
        return;
      }
      out.push(bi, s[ST.ino]!, s[ST.mtimeSec]!, s[ST.mtimeNsec]!, s[ST.ctimeSec]!, s[ST.ctimeNsec]!);
    };
    for (const bi of dir.layers) visit(bi);
    // a writable branch the directory is not in yet: a name made there would not show in its own stamps
    for (let bi = 0; bi < core.branches.length; bi++) if (core.branches[bi]!.writable && !dir.layers.includes(bi)) visit(bi);
    return out;
  }
}

function sameLayers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether the union holds the node open for writing (its writes come through the mount). */
function writtenThrough(node: UnionNode): boolean {
  if (node.openCount === 0) return false;
  for (const h of node.handles) if ((h.flags & O_ACCMODE) !== 0) return true;
  return false;
}

interface Checked {
  at: number;
  stamps: number[];
}

function sameStamps(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * udba=reval: before a lookup or readdir uses what is cached about a directory's entries, its
 * stamps are compared with the last check's (at most once per interval); on a difference the
 * cached entries are dropped. `covers` limits the checks to some directories (udba=notify past the
 * watch limit: the ones without a watch).
 */
export class Reval {
  private readonly seen = new WeakMap<UnionNode, Checked>();
  /** Checks that took stamps, and those that found a change (for tests and `layerfs info`). */
  checks = 0;
  changes = 0;

  constructor(
    private readonly changesOf: BranchChanges,
    private readonly intervalMs: number = REVAL_INTERVAL_MS,
    private readonly now: () => number = () => performance.now(),
    private readonly covers: ((dir: UnionNode) => boolean) | null = null,
  ) {}

  check(dir: UnionNode): void {
    if (this.covers !== null && !this.covers(dir)) return;
    const t = this.now();
    const had = this.seen.get(dir);
    if (had !== undefined && t - had.at < this.intervalMs) return;
    this.checks++;
    let stamps = this.changesOf.stamps(dir);
    if (had === undefined) {
      // first check: what was listed before (by this union or one sharing the layer) may predate it
      this.changesOf.dirChanged(dir);
    } else if (!sameStamps(had.stamps, stamps)) {
      this.changes++;
      // the directory itself may merge other branches now (an opaque marker made or removed)
      if (this.changesOf.revalidated(dir)) stamps = this.changesOf.stamps(dir);
    }
    this.seen.set(dir, { at: t, stamps });
  }
}
