/**
 * Engine objects handed to the transports: nodes (identities, not paths), open files, open dirs.
 */
import type { DirEntry, DirHandleLike, FileHandleLike, UnionNodeLike } from './types.js';

import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK } from '../sys/constants.js';

export { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK } from '../sys/constants.js';

/**
 * A merged node: one name in the union (hard links are separate nodes sharing `ino`).
 * `layers` caches the lookup: the branch indices holding this path, topmost first (directories:
 * every branch that contributes until an opaque one; others: only the topmost). `rel` is its path
 * relative to every branch root. Both are recomputed when `gen` falls behind the union's.
 */
export class UnionNode implements UnionNodeLike {
  ino: number;
  parent: UnionNode | null;
  name: string;
  /** S_IF* type bits. */
  type: number;
  rel: string;
  layers: number[];
  gen: number;
  private kids: Map<string, UnionNode> | null = null;
  private opened: Set<FileHandle> | null = null;
  /** Index entry (rw-relative) this lower, multiply linked file reads through; see hardlinks.ts. */
  alias: string | null = null;
  /** A directory made by a redirect rename: reports nlink 1 like other merged dirs. */
  marked = false;
  /**
   * core.gen at which this rw directory was last copied up (checked for a redirect rename's origin
   * mark): until the next rename, a create in it needs no copy-up check (no syscall).
   */
  copiedUpGen = 0;
  /**
   * Directory with many lower layers: name -> position in `layers` of the first lower layer that
   * holds NAME or `.wh.NAME` (namei.ts), built for `mentionsFor`/`mentionsRel` (null: not built).
   */
  mentions: Map<string, number> | null = null;
  mentionsFor: number[] | null = null;
  mentionsRel = '';
  /** The last name was removed (it may live on through open handles). */
  unlinked = false;

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

  constructor(ino: number, parent: UnionNode | null, name: string, type: number, rel: string, layers: number[], gen: number) {
    this.ino = ino;
    this.parent = parent;
    this.name = name;
    this.type = type;
    this.rel = rel;
    this.layers = layers;
    this.gen = gen;
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
