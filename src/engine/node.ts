/**
 * Engine objects handed to the transports: nodes (identities, not paths), open files, open dirs.
 */
import { joinRel } from '../branch/index.js';
import type { DirEntry, DirHandleLike, FileHandleLike, UnionNodeLike } from './types.js';

import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK } from '../sys/constants.js';

export { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK } from '../sys/constants.js';

/** T with its read-only properties writable (for a class's own transitions). */
type Writable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A merged node: one name in the union (hard links are separate nodes sharing `ino`).
 * `layers` caches the lookup: the branch indices holding this path, topmost first (directories:
 * every branch that contributes until an opaque one; others: only the topmost). `rel` is its path
 * relative to every branch root. Both are recomputed when `gen` falls behind the union's.
 *
 * Read-only from outside: the state changes only through the named transitions below
 * (resolved, rootResolved, parentMoved, copiedUp, markedMerged, renamed, removed, ...).
 */
export class UnionNode implements UnionNodeLike {
  readonly ino: number;
  /** The directory holding its (last) name; null for the root. */
  readonly parent: UnionNode | null;
  readonly name: string;
  /** S_IF* type bits. */
  readonly type: number;
  /** Path relative to every branch root. */
  readonly rel: string;
  /** Branch indices holding it, topmost first. */
  readonly layers: readonly number[];
  /** The union's generation `layers` and `rel` were resolved at. */
  readonly gen: number;
  /** Index entry (rw-relative) this lower, multiply linked file reads through; see hardlinks.ts. */
  readonly alias: string | null = null;
  /** A directory made by a redirect rename: reports nlink 1 like other merged dirs. */
  readonly marked: boolean = false;
  /** The last name was removed (it may live on through open handles). */
  readonly unlinked: boolean = false;
  private copiedUpGen = 0;
  private mentionsMap: Map<string, number> | null = null;
  private mentionsLayers: readonly number[] | null = null;
  private mentionsRel = '';
  private kids: Map<string, UnionNode> | null = null;
  private opened: Set<FileHandle> | null = null;

  constructor(ino: number, parent: UnionNode | null, name: string, type: number, rel: string, layers: readonly number[], gen: number) {
    this.ino = ino;
    this.parent = parent;
    this.name = name;
    this.type = type;
    this.rel = rel;
    this.layers = layers;
    this.gen = gen;
  }

  /** The node as its transitions see it: the fields read-only to everyone else. */
  private get w(): Writable<UnionNode> {
    return this;
  }

  // ---- transitions ---------------------------------------------------------------------------

  /** Lookup found it (again) at generation `gen`: where it lives, what it is. */
  resolved(layers: readonly number[], type: number, alias: string | null, marked: boolean, gen: number): void {
    this.w.layers = layers;
    this.w.type = type;
    this.w.alias = alias;
    this.w.marked = marked;
    this.w.gen = gen;
  }

  /** The root's layers, re-resolved at generation `gen`. */
  rootResolved(layers: readonly number[], gen: number): void {
    this.w.layers = layers;
    this.w.gen = gen;
  }

  /** Its parent's path changed (a rename above it): its own follows. */
  parentMoved(): void {
    if (this.parent) this.w.rel = joinRel(this.parent.rel, this.name);
  }

  /** Copied up into writable branch `t` (default 0) at generation `gen`: a directory stays merged with what it had. */
  copiedUp(gen: number, t = 0): void {
    this.w.alias = null;
    this.w.layers = this.isDir ? [...this.layers.filter((bi) => bi < t), t, ...this.layers.filter((bi) => bi > t)] : [t];
    this.w.gen = gen;
  }

  /** A directory of the rw branch was checked for a redirect rename's origin mark at `gen` (see copiedUpSince). */
  copyUpChecked(gen: number): void {
    this.copiedUpGen = gen;
  }

  /** Whether copyUpChecked ran at generation `gen`: until the next rename a create in it needs no copy-up check. */
  copiedUpSince(gen: number): boolean {
    return this.copiedUpGen === gen;
  }

  /** Marked as a redirect-renamed directory copy: merged from now on. */
  markedMerged(): void {
    this.w.marked = true;
  }

  /** Moved to `name` in `parent` (`rel` its new path). */
  renamed(parent: UnionNode, name: string, rel: string): void {
    this.w.parent = parent;
    this.w.name = name;
    this.w.rel = rel;
  }

  /** Its last name is gone (unlink, rmdir, replaced by a rename, or no longer found). */
  removed(): void {
    this.w.unlinked = true;
  }

  /**
   * The lower-mentions map of this directory (namei lowerMentions: name -> position in `layers`
   * of the first lower layer holding NAME or `.wh.NAME`) built for its current layers and path;
   * null: they do not qualify; undefined: not built for them.
   */
  get mentions(): Map<string, number> | null | undefined {
    return this.mentionsLayers === this.layers && this.mentionsRel === this.rel ? this.mentionsMap : undefined;
  }

  /** Keep the lower-mentions map built for the current layers and path. */
  keepMentions(m: Map<string, number> | null): void {
    this.mentionsMap = m;
    this.mentionsLayers = this.layers;
    this.mentionsRel = this.rel;
  }

  // ---- caches --------------------------------------------------------------------------------

  /** Lookup cache of children by name (made on first use: most nodes are files). */
  get children(): Map<string, UnionNode> {
    return (this.kids ??= new Map());
  }

  /** Whether any child is cached (without making the map). */
  get hasChildren(): boolean {
    return this.kids !== null && this.kids.size > 0;
  }

  /** Open file handles (made on first open). */
  get handles(): Set<FileHandle> {
    return (this.opened ??= new Set());
  }

  /** Number of open handles (without making the set). */
  get openCount(): number {
    return this.opened === null ? 0 : this.opened.size;
  }

  get isDir(): boolean {
    return this.type === S_IFDIR;
  }

  /** Topmost branch index holding it. */
  get top(): number {
    return this.layers[0]!;
  }
}

export class FileHandle implements FileHandleLike {
  fd: number;
  readonly flags: number;
  readonly node: UnionNode;
  /** Branch index the fd was opened on. */
  readonly branch: number;
  closed = false;

  constructor(fd: number, flags: number, node: UnionNode, branch: number) {
    this.fd = fd;
    this.flags = flags;
    this.node = node;
    this.branch = branch;
  }
}

export class DirHandle implements DirHandleLike {
  readonly entries: readonly DirEntry[];
  readonly node: UnionNode;

  constructor(node: UnionNode, entries: readonly DirEntry[]) {
    this.node = node;
    this.entries = entries;
  }
}

/** DT_* for S_IF* bits. */
export function dtOf(type: number): number {
  switch (type) {
    case S_IFIFO: return 1;
    case S_IFCHR: return 2;
    case S_IFDIR: return 4;
    case S_IFBLK: return 6;
    case S_IFREG: return 8;
    case S_IFLNK: return 10;
    case S_IFSOCK: return 12;
    default: return 0;
  }
}
