/**
 * Engine objects handed to the transports: nodes (identities, not paths), open files, open dirs.
 */
import { joinRel } from '../branch/index.js';
import type { DirEntry, DirHandleLike, FileHandleLike, UnionNodeLike } from './types.js';

import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK } from '../sys/constants.js';

export { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK } from '../sys/constants.js';

/** Bits of UnionNode.bits above the S_IF* type bits (0o170000). */
const MARKED = 0o200000;
const UNLINKED = 0o400000;
const TYPE_MASK = 0o170000;

/**
 * What few nodes need (a directory's children and lower mentions, open handles, a hard-link
 * alias, the copy-up check): kept apart, made on first use, so a plain file's node stays small.
 */
class NodeExtra {
  alias: string | null = null;
  copiedUpGen = 0;
  mentionsMap: Map<string, number> | null = null;
  mentionsLayers: readonly number[] | null = null;
  mentionsRel = '';
  kids: Map<string, UnionNode> | null = null;
  opened: Set<FileHandle> | null = null;
}

/** One shared frozen array per single branch index: most nodes live in one branch (memory). */
const ONE_LAYER: (readonly number[])[] = [];

/**
 * `layers`, or the shared array of the same single index for a non-directory. A directory keeps its
 * own array: its lower-mentions map is valid for that very array (a new one after a re-resolve).
 */
function internLayers(layers: readonly number[], type: number): readonly number[] {
  if (layers.length !== 1 || (type & TYPE_MASK) === S_IFDIR) return layers;
  const i = layers[0]!;
  if (!Number.isInteger(i) || i < 0 || i > 4096) return layers;
  return (ONE_LAYER[i] ??= Object.freeze([i]));
}

/**
 * A merged node: one name in the union (hard links are separate nodes sharing `ino`).
 * `layers` caches the lookup: the branch indices holding this path, topmost first (directories:
 * every branch that contributes until an opaque one; others: only the topmost). `rel` is its path
 * relative to every branch root. Both are recomputed when `gen` falls behind the union's.
 *
 * Read-only from outside: the state changes only through the named transitions below
 * (resolved, rootResolved, parentMoved, copiedUp, markedMerged, renamed, removed, ...).
 *
 * Memory: the daemon holds one per name the kernel knows (20k after `ls -lR` of 20k files), so the
 * object has 8 fields: type and flags share one number, single-branch `layers` arrays are shared,
 * and what few nodes need lives in a NodeExtra made on first use.
 */
export class UnionNode implements UnionNodeLike {
  readonly ino: number;
  /** The directory holding its (last) name; null for the root. */
  private up: UnionNode | null;
  private nm: string;
  private path: string;
  private where: readonly number[];
  private g: number;
  /** S_IF* type bits | MARKED | UNLINKED. */
  private bits: number;
  private x: NodeExtra | null = null;

  constructor(ino: number, parent: UnionNode | null, name: string, type: number, rel: string, layers: readonly number[], gen: number) {
    this.ino = ino;
    this.up = parent;
    this.nm = name;
    this.bits = type & TYPE_MASK;
    this.path = rel;
    this.where = internLayers(layers, type);
    this.g = gen;
  }

  /** The directory holding its (last) name; null for the root. */
  get parent(): UnionNode | null {
    return this.up;
  }

  get name(): string {
    return this.nm;
  }

  /** S_IF* type bits. */
  get type(): number {
    return this.bits & TYPE_MASK;
  }

  /** Path relative to every branch root. */
  get rel(): string {
    return this.path;
  }

  /** Branch indices holding it, topmost first. */
  get layers(): readonly number[] {
    return this.where;
  }

  /** The union's generation `layers` and `rel` were resolved at. */
  get gen(): number {
    return this.g;
  }

  /** Index entry (rw-relative) this lower, multiply linked file reads through; see hardlinks.ts. */
  get alias(): string | null {
    return this.x === null ? null : this.x.alias;
  }

  /** A directory made by a redirect rename: reports nlink 1 like other merged dirs. */
  get marked(): boolean {
    return (this.bits & MARKED) !== 0;
  }

  /** The last name was removed (it may live on through open handles). */
  get unlinked(): boolean {
    return (this.bits & UNLINKED) !== 0;
  }

  private get extra(): NodeExtra {
    return (this.x ??= new NodeExtra());
  }

  // ---- transitions ---------------------------------------------------------------------------

  /** Lookup found it (again) at generation `gen`: where it lives, what it is. */
  resolved(layers: readonly number[], type: number, alias: string | null, marked: boolean, gen: number): void {
    this.where = internLayers(layers, type);
    this.bits = (type & TYPE_MASK) | (marked ? MARKED : 0) | (this.bits & UNLINKED);
    if (alias !== null) this.extra.alias = alias;
    else if (this.x !== null) this.x.alias = null;
    this.g = gen;
  }

  /** The root's layers, re-resolved at generation `gen`. */
  rootResolved(layers: readonly number[], gen: number): void {
    this.where = layers;
    this.g = gen;
  }

  /** Its parent's path changed (a rename above it): its own follows. */
  parentMoved(): void {
    if (this.up) this.path = joinRel(this.up.rel, this.nm);
  }

  /** Copied up into the rw branch (index 0) at generation `gen`: a directory stays merged with what it had. */
  copiedUp(gen: number): void {
    if (this.x !== null) this.x.alias = null;
    this.where = this.isDir ? [0, ...this.where] : internLayers([0], this.bits);
    this.g = gen;
  }

  /** A directory of the rw branch was checked for a redirect rename's origin mark at `gen` (see copiedUpSince). */
  copyUpChecked(gen: number): void {
    this.extra.copiedUpGen = gen;
  }

  /** Whether copyUpChecked ran at generation `gen`: until the next rename a create in it needs no copy-up check. */
  copiedUpSince(gen: number): boolean {
    return this.x !== null && this.x.copiedUpGen === gen;
  }

  /** Marked as a redirect-renamed directory copy: merged from now on. */
  markedMerged(): void {
    this.bits |= MARKED;
  }

  /** Moved to `name` in `parent` (`rel` its new path). */
  renamed(parent: UnionNode, name: string, rel: string): void {
    this.up = parent;
    this.nm = name;
    this.path = rel;
  }

  /** Its last name is gone (unlink, rmdir, replaced by a rename, or no longer found). */
  removed(): void {
    this.bits |= UNLINKED;
  }

  /**
   * The lower-mentions map of this directory (namei lowerMentions: name -> position in `layers`
   * of the first lower layer holding NAME or `.wh.NAME`) built for its current layers and path;
   * null: they do not qualify; undefined: not built for them.
   */
  get mentions(): Map<string, number> | null | undefined {
    const x = this.x;
    if (x === null) return undefined;
    return x.mentionsLayers === this.where && x.mentionsRel === this.path ? x.mentionsMap : undefined;
  }

  /** Keep the lower-mentions map built for the current layers and path. */
  keepMentions(m: Map<string, number> | null): void {
    const x = this.extra;
    x.mentionsMap = m;
    x.mentionsLayers = this.where;
    x.mentionsRel = this.path;
  }

  // ---- caches --------------------------------------------------------------------------------

  /** Lookup cache of children by name (made on first use: most nodes are files). */
  get children(): Map<string, UnionNode> {
    return (this.extra.kids ??= new Map());
  }

  /** Whether any child is cached (without making the map). */
  get hasChildren(): boolean {
    return this.x !== null && this.x.kids !== null && this.x.kids.size > 0;
  }

  /** Open file handles (made on first open). */
  get handles(): Set<FileHandle> {
    return (this.extra.opened ??= new Set());
  }

  /** Number of open handles (without making the set). */
  get openCount(): number {
    return this.x === null || this.x.opened === null ? 0 : this.x.opened.size;
  }

  get isDir(): boolean {
    return (this.bits & TYPE_MASK) === S_IFDIR;
  }

  /** Topmost branch index holding it. */
  get top(): number {
    return this.where[0]!;
  }
}

export class FileHandle implements FileHandleLike {
  fd: number;
  readonly flags: number;
  readonly node: UnionNode;
  /** Branch index the fd was opened on (Core.setBranches moves it with its branch). */
  branch: number;
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
