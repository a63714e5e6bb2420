/**
 * Engine objects handed to the transports: nodes (identities, not paths), open files, open dirs.
 */
import { joinRel } from '../branch/index.js';
import type { DirEntry, DirHandleLike, FileHandleLike, UnionNodeLike } from './types.js';

import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK } from '../sys/constants.js';

export { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK } from '../sys/constants.js';

/**
 * A merged node: one name in the union (hard links are separate nodes sharing `ino`).
 * `layers` caches the lookup: the branch indices holding this path, topmost first (directories:
 * every branch that contributes until an opaque one; others: only the topmost). `rel` is its path
 * relative to every branch root. Both are recomputed when `gen` falls behind the union's.
 *
 * Read-only from outside: the state changes only through the named transitions below
 * (resolved, unresolvable, copiedUp, markedMerged, renamed, removed, ...).
 */
export class UnionNode implements UnionNodeLike {
  readonly ino: number;
  #parent: UnionNode | null;
  #name: string;
  #type: number;
  #rel: string;
  #layers: readonly number[];
  #gen: number;
  #alias: string | null = null;
  #marked = false;
  #copiedUpGen = 0;
  #mentions: Map<string, number> | null = null;
  #mentionsLayers: readonly number[] | null = null;
  #mentionsRel = '';
  #unlinked = false;
  private kids: Map<string, UnionNode> | null = null;
  private opened: Set<FileHandle> | null = null;

  constructor(ino: number, parent: UnionNode | null, name: string, type: number, rel: string, layers: readonly number[], gen: number) {
    this.ino = ino;
    this.#parent = parent;
    this.#name = name;
    this.#type = type;
    this.#rel = rel;
    this.#layers = layers;
    this.#gen = gen;
  }

  /** The directory holding its (last) name; null for the root. */
  get parent(): UnionNode | null {
    return this.#parent;
  }

  get name(): string {
    return this.#name;
  }

  /** S_IF* type bits. */
  get type(): number {
    return this.#type;
  }

  /** Path relative to every branch root. */
  get rel(): string {
    return this.#rel;
  }

  /** Branch indices holding it, topmost first. */
  get layers(): readonly number[] {
    return this.#layers;
  }

  /** The union's generation `layers` and `rel` were resolved at. */
  get gen(): number {
    return this.#gen;
  }

  /** Index entry (rw-relative) this lower, multiply linked file reads through; see hardlinks.ts. */
  get alias(): string | null {
    return this.#alias;
  }

  /** A directory made by a redirect rename: reports nlink 1 like other merged dirs. */
  get marked(): boolean {
    return this.#marked;
  }

  /** The last name was removed (it may live on through open handles). */
  get unlinked(): boolean {
    return this.#unlinked;
  }

  // ---- transitions ---------------------------------------------------------------------------

  /** Lookup found it (again) at generation `gen`: where it lives, what it is. */
  resolved(layers: readonly number[], type: number, alias: string | null, marked: boolean, gen: number): void {
    this.#layers = layers;
    this.#type = type;
    this.#alias = alias;
    this.#marked = marked;
    this.#gen = gen;
  }

  /** The root's layers, re-resolved at generation `gen`. */
  rootResolved(layers: readonly number[], gen: number): void {
    this.#layers = layers;
    this.#gen = gen;
  }

  /** Its parent's path changed (a rename above it): its own follows. */
  parentMoved(): void {
    if (this.#parent) this.#rel = joinRel(this.#parent.rel, this.#name);
  }

  /** Copied up into the rw branch (index 0) at generation `gen`: a directory stays merged with what it had. */
  copiedUp(gen: number): void {
    this.#alias = null;
    this.#layers = this.isDir ? [0, ...this.#layers] : [0];
    this.#gen = gen;
  }

  /** A directory of the rw branch was checked for a redirect rename's origin mark at `gen` (see copiedUpSince). */
  copyUpChecked(gen: number): void {
    this.#copiedUpGen = gen;
  }

  /** Whether copyUpChecked ran at generation `gen`: until the next rename a create in it needs no copy-up check. */
  copiedUpSince(gen: number): boolean {
    return this.#copiedUpGen === gen;
  }

  /** Marked as a redirect-renamed directory copy: merged from now on. */
  markedMerged(): void {
    this.#marked = true;
  }

  /** Moved to `name` in `parent` (`rel` its new path). */
  renamed(parent: UnionNode, name: string, rel: string): void {
    this.#parent = parent;
    this.#name = name;
    this.#rel = rel;
  }

  /** Its last name is gone (unlink, rmdir, replaced by a rename, or no longer found). */
  removed(): void {
    this.#unlinked = true;
  }

  /**
   * The lower-mentions map of this directory (namei lowerMentions: name -> position in `layers`
   * of the first lower layer holding NAME or `.wh.NAME`) built for its current layers and path;
   * null: they do not qualify; undefined: not built for them.
   */
  get mentions(): Map<string, number> | null | undefined {
    return this.#mentionsLayers === this.#layers && this.#mentionsRel === this.#rel ? this.#mentions : undefined;
  }

  /** Keep the lower-mentions map built for the current layers and path. */
  keepMentions(m: Map<string, number> | null): void {
    this.#mentions = m;
    this.#mentionsLayers = this.#layers;
    this.#mentionsRel = this.#rel;
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
    return this.#type === S_IFDIR;
  }

  /** Topmost branch index holding it. */
  get top(): number {
    return this.#layers[0]!;
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
