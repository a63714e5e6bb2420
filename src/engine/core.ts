/**
 * Shared state of one union: branches, the rw branch and work dir, the inode table, the node
 * cache and its generation. The operation modules (copy-up, dir-ops, rename, ...) work on it.
 */
import { Branch, ST, XINO_OPEN_FLAGS, joinRel } from '../branch/index.js';
import { FsError } from '../errors/index.js';
import { findAlias } from './hardlinks.js';
import { InodeTable } from './inode-table.js';
import { LowerIndex } from './lower-index.js';
import { GONE, cachedLookup, lookupScratch, lowerHas, resolveChild, resolveRoot, type LookupData } from './namei.js';
import { S_IFDIR, S_IFMT, UnionNode, type FileHandle } from './node.js';
import type { UnionOptions } from './types.js';
import { PRIVATE, markerXattrs, type MarkerXattrs } from '../format/index.js';
import { validateOptions } from './validate.js';
import { checkName } from './whiteout.js';
import { Placement } from './placement.js';
import { MissMemory } from './miss-memory.js';
import { stateInodeTable } from './branch-state.js';

export const WORK_NAME = PRIVATE + '.work';
export const XINO_NAME = PRIVATE + '.xino';

/** The hidden work dir inside the rw branch (made when missing), its crash leftovers dropped. */
function openWorkDir(rw: Branch): Branch {
  if (!rw.exists(WORK_NAME)) rw.mkdir(WORK_NAME, 0o700);
  const work = rw.sub(WORK_NAME, 'rw', -1);
  // Leftovers of a crash: half-built copy-ups. Never visible, safe to drop.
  for (const n of work.readdirNames('')) if (n.startsWith('cu-')) work.removeTree(n);
  return work;
}

export class Core {
  readonly options: UnionOptions;
  /** The private xattrs' names: trusted.* as root, user.* with `userxattr`. */
  readonly markers: MarkerXattrs;
  /** Topmost first. Replaced (never changed in place) by setBranches on a live branch change. */
  branches: Branch[];
  /** The topmost writable branch (always index 0), or null for a read-only union. */
  rw: Branch | null;
  /** Where copy-ups to branch 0 are built before being renamed into place. */
  work: Branch | null;
  /**
   * The writable branches (rw, the topmost ones) and where new names and copy-ups go (create=,
   * cpup=); rebuilt from the branch list (placement.ts) by setBranches.
   */
  placement: Placement;
  readonly xino: InodeTable;
  readonly root: UnionNode;
  /** Listings of the branches the union never writes (all but rw): lookups are map hits there. */
  lowerIndex: LowerIndex;
  /** Open files of the union (a branch with open files cannot leave it: EBUSY). */
  readonly openFiles = new Set<FileHandle>();
  /** Told when a node's attributes change as a side effect (see UnionOps.setInvalidator). */
  invalidator: ((node: UnionNode) => void) | null = null;
  /** udba=reval: re-checks a directory's stamps before its cached entries are used (engine/udba.ts). */
  udbaCheck: ((dir: UnionNode) => void) | null = null;
  /** Bumped by operations that move names around (rename); nodes re-resolve lazily. */
  gen = 1;
  private tmpSeq = 0;
  /** The directories (st_dev:st_ino of the root) of the branches the union was mounted with (see mergedDirIno). */
  readonly mountBranches: ReadonlySet<string>;
  /** The stat arrays lookups fill (LookupData.nums points into it). */
  private readonly scratch = lookupScratch();
  /** Negative lookups a create-type op right after them may use instead of searching again (miss-memory.ts). */
  readonly misses = new MissMemory();

  constructor(options: UnionOptions) {
    validateOptions(options);
    this.options = options;
    this.markers = markerXattrs(options.userxattr);
    let rootTimes: ReturnType<Branch['lstatBig']> = null;
    // Every branch root is opened (held as a directory fd) here, before a mount goes live: from
    // now on nothing resolves a branch by its path (see branch/branch.ts).
    const opened: Branch[] = [];
    let work: Branch | null = null;
    let placement: Placement | null = null;
    try {
      this.branches = options.branches.map((b, i) => {
        const br = new Branch(b.path, b.perm, b.attrs, i, b.id);
        opened.push(br);
        return br;
      });
      this.rw = this.branches[0]!.writable ? this.branches[0]! : null;
      this.mountBranches = new Set(options.branchState?.mountRoots ?? this.branches.map((b) => `${b.dev}:${b.rootIno}`));
      // Our private files made in the rw root (hidden work dir, inode table) must not change the
      // root's times: overlayfs leaves its upper dir alone at mount (podman's diff, tests, make...).
      rootTimes = this.rw?.lstatBig('') ?? null;
      if (this.rw) {
        if (options.workdir !== undefined) {
          work = new Branch(options.workdir, 'rw', [], -1);
          // Leftovers of a crash: half-built copy-ups. Never visible, safe to drop.
          for (const n of work.readdirNames('')) if (n.startsWith('cu-')) work.removeTree(n);
        } else work = openWorkDir(this.rw);
      }
      this.work = work;
      placement = new Placement(this.branches, { create: options.create, cpup: options.cpup, work0: work });
      this.placement = placement;
      this.lowerIndex = new LowerIndex(this.branches, this.branches.map((b) => !b.writable));
      const devs = this.branches.map((b) => b.dev);
      // a union rebuilt after live branch changes: the inode table and slots it had (branch-state.ts)
      if (options.branchState) this.xino = stateInodeTable(options.branchState, this.branches, devs, XINO_NAME);
      else if (options.xino !== undefined || !this.rw) this.xino = new InodeTable(options.xino ?? null, undefined, devs);
      else this.xino = new InodeTable(this.rw.hostPath(XINO_NAME), this.rw.open(XINO_NAME, XINO_OPEN_FLAGS, 0o600), devs);
    } catch (e) {
      for (const b of opened) b.close();
      work?.close();
      placement?.close();
      throw e;
    }
    if (this.rw && rootTimes) {
      const now = this.rw.lstatBig('');
      if (now && now.mtimeNs !== rootTimes.mtimeNs) this.rw.setTimes('', rootTimes);
    }
    this.root = new UnionNode(1, null, '', S_IFDIR, '', resolveRoot(this.branches, this.markers.opaque), this.gen);
    if (options.branchState) this.lastBranchId = options.branchState.lastBrid;
  }

  /**
   * THE place where the branch list of a live union changes (engine/branch-set.ts calls it with a
   * checked plan): `next` is the new list (Branch objects of kept branches reused, new ones
   * opened), `from[i]` the old index of next[i] (-1: new). Between two requests, so every request
   * sees one list or the other. What depends on the list follows here: the rw branch and work
   * dir, the lower listings, the inode table's filesystems, open files' branch indices, and the
   * generation (every cached node re-resolves on its next use). Branches no longer in `next` are
   * the caller's to close.
   */
  setBranches(next: Branch[], from: readonly number[]): void {
    const oldRw = this.rw;
    const rw = next[0]!.writable ? next[0]! : null;
    if (rw !== oldRw) {
      // a new rw branch gets its own hidden work dir (a given workdir= only serves the rw branch
      // of its filesystem); made before anything changes, so a failure leaves the union as it was
      let work: Branch | null = null;
      if (rw) {
        const times = rw.lstatBig('');
        work = this.options.workdir !== undefined && this.work && this.work.dev === rw.dev ? this.work : openWorkDir(rw);
        const now = rw.lstatBig('');
        if (times && now && now.mtimeNs !== times.mtimeNs) rw.setTimes('', times);
      }
      if (this.work !== work) this.work?.close();
      this.work = work;
    }
    // where new names and copy-ups go, over the new list (made before the switch: may fail)
    const placement = new Placement(next, { create: this.options.create, cpup: this.options.cpup, work0: this.work });
    const oldIndex = this.lowerIndex;
    this.lowerIndex = new LowerIndex(next, next.map((b) => !b.writable));
    // a branch the union wrote until now: listings of it kept for other unions may be stale
    if (oldRw && next.includes(oldRw) && oldRw !== rw) this.lowerIndex.clear();
    else {
      const wrote = new Set(this.branches.filter((b) => b.writable).map((b) => b.root));
      if (next.some((b) => !b.writable && wrote.has(b.root))) this.lowerIndex.clear();
    }
    oldIndex.close();
    for (const b of next) this.xino.addFilesystem(b.dev);
    const to = new Map<number, number>();
    from.forEach((f, i) => f >= 0 && to.set(f, i));
    for (const fh of this.openFiles) fh.branch = to.get(fh.branch) ?? -1;
    this.branches = next;
    this.rw = rw;
    this.placement.close();
    this.placement = placement;
    this.gen++;
    this.branchesGen = this.gen;
    this.misses.clear();
    // the switch is made: nothing below may undo it (a failing lookup is tried again on next use)
    try {
      this.ensure(this.root);
      this.settleDirs(this.root);
    } catch {
      /* the failing directory re-resolves (and reports) on its next use */
    }
  }

  /** The next free AUFS branch id (64 up; ids of branches that left are not reused). */
  nextBranchId(): number {
    return Math.max(63, this.lastBranchId, ...this.branches.map((b) => b.id)) + 1;
  }

  /** The generation of the last branch change: nodes resolved before it check their identity (replaced). */
  private branchesGen = 0;

  /** Highest branch id given so far (nextBranchId). */
  lastBranchId = 0;

  requireRw(syscall: string): Branch {
    if (!this.rw) throw new FsError('EROFS', syscall);
    return this.rw;
  }

  /** Whether branch `bi` is writable: an entry there is changed in place, never copied up. */
  isUpper(bi: number): boolean {
    return this.branches[bi]!.writable;
  }

  /** The work dir on the filesystem of writable branch `b` (copies to `b` are built there). */
  workFor(b: Branch): Branch {
    const i = b.writable ? this.branches.indexOf(b) : -1;
    return i >= 0 ? this.placement.workOf(i) : this.work!;
  }

  /** A fresh name in the work dir. */
  tmpName(): string {
    return `cu-${process.pid}-${++this.tmpSeq}`;
  }

  /**
   * Our inode number for the real entry `st` of branch `bi`. The number does not depend on the
   * branch's position; `bi` only says whether the file is in the rw branch (see InodeTable).
   */
  inoOf(st: { dev: number; ino: number }, bi: number): number {
    // a file of any writable branch is `upper` to the table (a number a copy-up claimed is not reused)
    return this.xino.inoFor(st.dev, st.ino, this.branches[bi]!.writable);
  }

  /**
   * The number of a directory kept in the rw branch that merges a directory below (`lowerBi`):
   * the lower directory's, as overlayfs reports for a merged directory. Recorded, so it stays when
   * the lower one goes (a branch removed) and costs one lstat once per directory and table.
   * Only for a lower branch the union was mounted with (known by its root directory, so a permission
   * change on the live union keeps it one): a directory of the rw branch that a branch added to the
   * live union merges keeps the number it had (its own), as every visible file does.
   */
  mergedDirIno(dev: number, ino: number, lowerBi: number, rel: string): number {
    const had = this.xino.get(dev, ino);
    if (had !== undefined) return had;
    const lower = this.branches[lowerBi]!;
    if (!this.mountBranches.has(`${lower.dev}:${lower.rootIno}`)) return this.xino.inoFor(dev, ino, true);
    const low = lower.lstat(rel);
    if (!low || !low.isDirectory()) return this.xino.inoFor(dev, ino, true);
    const n = this.xino.inoFor(low.dev, low.ino, false);
    this.xino.set(dev, ino, n);
    return n;
  }

  /**
   * The number of a listed entry of `dir` whose topmost copy `st` is in branch `bi`: what a lookup
   * would give (a directory of the rw branch merging one below: the lower one's, see mergedDirIno).
   */
  entryIno(dir: UnionNode, name: string, bi: number, st: { dev: number; ino: number; mode: number }): number {
    if (bi === 0 && this.rw !== null && (st.mode & S_IFMT) === S_IFDIR && this.xino.get(st.dev, st.ino) === undefined) {
      if (lowerHas(this.branches, dir, name, this.lowerIndex)) {
        const n = this.lookupData(dir, name).node;
        if (n) return n.ino;
      }
    }
    return this.inoOf(st, bi);
  }

  /** Bring a node's cached lookup up to date (after renames). */
  ensure(node: UnionNode): void {
    if (node.gen === this.gen || node.unlinked) return;
    const parent = node.parent;
    if (!parent) {
      node.rootResolved(resolveRoot(this.branches, this.markers.opaque), this.gen);
      return;
    }
    this.ensure(parent);
    node.parentMoved();
    const f = parent.unlinked ? null : resolveChild(this.branches, parent, node.name, this.lowerIndex, this.scratch, this.markers.opaque);
    if (!f || f.type === 0) {
      node.removed();
      return;
    }
    if (node.gen < this.branchesGen && this.replaced(node, f)) {
      node.removed();
      this.replacedNodes.add(node);
      return;
    }
    if (node.gen < this.branchesGen && node.isDir) this.keepDirIno(node, f);
    node.resolved(f.layers, f.type, this.aliasOf(f, node.rel), this.isMarked(f.type, f.layers, node.rel), this.gen);
  }

  /**
   * After a branch change, whether the name of `node` now leads to another file (`f`: what a lookup
   * found): a new branch above shows its own file of that name, or the branch it came from left.
   * Then the node is dropped and a lookup makes a new one (its own number, a new kernel inode):
   * a file open through the old node keeps its file, as in overlayfs. Directories stay the same
   * node (a merged directory is one directory, whichever branches hold it).
   */
  private replaced(node: UnionNode, f: LookupData): boolean {
    if (f.type !== node.type) return true;
    if (node.isDir || !f.nums) return false;
    const top = f.layers[0]!;
    return this.xino.inoFor(f.nums[ST.dev]!, f.nums[ST.ino]!, top === 0 && this.rw !== null) !== node.ino;
  }

  /**
   * A directory whose topmost copy changed with the branch list (a new branch above holds it too,
   * or the one that did left) stays the directory it was, with its number: the new topmost copy is
   * recorded as that number, so a later lookup (after the kernel forgot it) and the next mount of
   * the union agree.
   */
  private keepDirIno(node: UnionNode, f: LookupData): void {
    if (!f.nums || node === this.root) return;
    const dev = f.nums[ST.dev]!;
    const ino = f.nums[ST.ino]!;
    if (this.xino.inoFor(dev, ino, f.layers[0] === 0 && this.rw !== null) !== node.ino) this.xino.set(dev, ino, node.ino);
  }

  /** Nodes a branch change replaced (see replaced), until forgotten. */
  private readonly replacedNodes = new WeakSet<UnionNode>();

  /**
   * Whether a request on `node` should be answered ESTALE: a branch change replaced it (its name
   * leads to another file now) and no handle holds it. A kernel still using it (a path walk done
   * before it learned of the change) then looks the name up again and finds the new node.
   */
  isStale(node: UnionNode): boolean {
    if (node.gen !== this.gen) {
      try {
        this.ensure(node);
      } catch {
        return false; // the request itself reports the error
      }
    }
    return node.unlinked && node.openCount === 0 && this.replacedNodes.has(node);
  }

  /** Re-resolve every cached directory now (see keepDirIno): the kernel may forget one before its next use. */
  private settleDirs(dir: UnionNode): void {
    if (!dir.hasChildren) return;
    for (const child of dir.children.values()) {
      if (!child.isDir || child.unlinked) continue;
      try {
        this.ensure(child);
      } catch {
        continue; // unreadable now: it re-resolves (and reports) on its next use
      }
      if (!child.unlinked) this.settleDirs(child);
    }
  }

  /** lookup: the child node NAME of `parent` (ENOENT/ENOTDIR). */
  lookup(parent: UnionNode, name: string): UnionNode {
    const node = this.lookupData(parent, name).node;
    if (!node) throw new FsError('ENOENT', 'lookup', name);
    return node;
  }

  /**
   * lookup answering one LookupData (node null for ENOENT: no exception on the common miss): the
   * node, and when this call searched the branches (the node was not cached), what it found there:
   * the layers, the topmost entry's lstat, the whiteout/opaque stop, what it saw in the rw branch.
   */
  lookupData(parent: UnionNode, name: string, forCreate = false): LookupData {
    this.ensure(parent);
    if (!parent.isDir) throw new FsError('ENOTDIR', 'lookup', name);
    if (name === '.') return cachedLookup(parent);
    if (name === '..') return cachedLookup(parent.parent ?? parent);
    checkName(name, false, 'lookup');
    if (this.udbaCheck !== null) this.udbaCheck(parent);
    if (parent.unlinked) return GONE;
    const cached = parent.children.get(name);
    if (cached) {
      this.ensure(cached);
      if (!cached.unlinked) return cachedLookup(cached);
      parent.children.delete(name);
    }
    // a create-type op right after the LOOKUP that found nothing: what that lookup learned (served once)
    if (forCreate) {
      const m = this.misses.take(parent, name, this.gen);
      if (m !== null) return m;
    }
    const d = resolveChild(this.branches, parent, name, this.lowerIndex, this.scratch, this.markers.opaque);
    if (d.type === 0) {
      if (!forCreate && d.searched) this.misses.remember(parent, name, d, this.gen);
      return d;
    }
    const top = d.layers[0]!;
    const nums = d.nums!;
    const rel = joinRel(parent.rel, name);
    const ino =
      d.type === S_IFDIR && top === 0 && this.rw !== null && d.layers.length > 1
        ? this.mergedDirIno(nums[ST.dev]!, nums[ST.ino]!, d.layers[1]!, rel)
        : this.xino.inoFor(nums[ST.dev]!, nums[ST.ino]!, this.branches[top]!.writable);
    const node = new UnionNode(ino, parent, name, d.type, rel, d.layers, this.gen);
    node.resolved(d.layers, d.type, this.aliasOf(d, rel), this.isMarked(d.type, d.layers, rel), this.gen);
    parent.children.set(name, node);
    d.node = node;
    return d;
  }

  /** The hard-link index entry a lower file with several links reads through, if any. */
  private aliasOf(f: LookupData, rel: string): string | null {
    const top = f.layers[0]!;
    return findAlias(this, f.type, top, f.nums!, () => this.branches[top]!.lstat(rel));
  }

  /**
   * Is this directory, held by one branch only, a copy made by a redirect rename? The mark counts
   * in any branch: after the rw branch became a lower one (`--ov=2`), the copy is still merged.
   */
  private isMarked(type: number, layers: readonly number[], rel: string): boolean {
    if (type !== S_IFDIR || layers.length !== 1) return false;
    return this.branches[layers[0]!]!.tryGetxattr(rel, this.markers.merged) !== undefined;
  }

  /** Register a node just created in a writable branch (`layers`: [its index]). */
  addCreated(parent: UnionNode, name: string, st: { dev: number; ino: number; mode: number }, layers: number[] = [0]): UnionNode {
    // A new file may reuse the real inode of a deleted copy-up: drop that stale mapping.
    this.xino.delete(st.dev, st.ino);
    this.misses.changed(parent);
    const node = new UnionNode(this.inoOf(st, layers[0]!), parent, name, st.mode & S_IFMT, joinRel(parent.rel, name), layers, this.gen);
    parent.children.set(name, node);
    return node;
  }

  /** The branch holding the node's topmost copy. */
  top(node: UnionNode): Branch {
    return this.branches[node.layers[0]!]!;
  }

  /** Where to read the node: its topmost copy, or the index entry of a hard-linked copy-up. */
  real(node: UnionNode): { b: Branch; rel: string } {
    if (node.alias !== null && this.rw) return { b: this.rw, rel: node.alias };
    return { b: this.branches[node.layers[0]!]!, rel: node.rel };
  }

  close(): void {
    this.placement.close();
    this.lowerIndex.close();
    this.xino.close();
    for (const b of this.branches) b.close();
    this.work?.close();
  }
}
