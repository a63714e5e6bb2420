/**
 * Node ids <-> engine nodes, with the kernel's lookup counts.
 *
 * Every reply that hands the kernel an entry (LOOKUP, MKNOD, MKDIR, SYMLINK, LINK, CREATE and each
 * READDIRPLUS entry other than `.`/`..`) adds one lookup; FORGET/BATCH_FORGET subtract. When the
 * count reaches zero the id is dropped and the engine is told (`forget`). Id 1 is the root and is
 * never dropped. Ids are never reused within a session, so one generation number (1) suffices for
 * nodeid:generation to stay unique for the life of the mount.
 *
 * An id can be retired (`retire`): it keeps working for the kernel's open files and references until
 * forgotten, but the next entry handed out for its node gets a new id (a new kernel inode; see
 * passthrough.ts). The engine is told to forget a node only when none of its ids is left.
 */
import { ROOT_ID } from './abi.js';

export const GENERATION = 1;

/** Lookup count of an id adopted after a restart: more than the kernel will ever forget. */
const PINNED = 2 ** 40;

/**
 * Hard links: the engine gives each name its own node, so the kernel holds one inode per name.
 * `sameIno` lists the other ids of one inode number, so the transport can refresh their cached
 * attributes after a change through one of them.
 *
 * Memory (one entry per node the kernel holds: 20k after an `ls -lR` of 20k files): two map entries
 * per id. `byId` maps id -> node; `byIno` maps inode number -> id (an array only for hard links and
 * retired ids), which also answers "the id of this node" (the id of its inode number whose node it
 * is), so no node -> id map is kept; lookup counts live in `counts` only when not 1 (the usual
 * count of a name looked up once), and retired ids in two small maps.
 */
export class NodeTable<N extends { readonly ino: number }> {
  private readonly byId = new Map<number, N>();
  /** Lookup counts other than 1 (absent: 1). */
  private readonly counts = new Map<number, number>();
  /** Ids per inode number: a plain id for the usual one, an array for hard links and retired ids. */
  private readonly byIno = new Map<number, number | number[]>();
  /** Retired ids (still held by the kernel, never handed out again), and per node. */
  private readonly retiredIds = new Set<number>();
  private readonly retired = new Map<N, number[]>();
  private nextId = ROOT_ID + 1;

  constructor(
    root: N,
    private readonly onForget: (node: N) => void = () => {},
    /** A node got its first id (the kernel knows it from now on). */
    private readonly onNew: ((node: N) => void) | null = null,
  ) {
    this.byId.set(ROOT_ID, root);
    this.byIno.set(root.ino, ROOT_ID);
  }

  /** The node behind an id, or undefined for an id the kernel should not have. */
  get(nodeid: number): N | undefined {
    return this.byId.get(nodeid);
  }

  /** The id the kernel knows `node` by, if any (counts nothing). */
  idFor(node: N): number | undefined {
    const ids = this.byIno.get(node.ino);
    if (ids === undefined) return undefined;
    if (typeof ids === 'number') return this.byId.get(ids) === node && !this.retiredIds.has(ids) ? ids : undefined;
    for (const id of ids) if (this.byId.get(id) === node && !this.retiredIds.has(id)) return id;
    return undefined;
  }

  /** Id for a node the kernel is about to receive; counts one lookup. */
  add(node: N): number {
    const known = this.idFor(node);
    if (known !== undefined) {
      this.counts.set(known, (this.counts.get(known) ?? 1) + 1);
      return known;
    }
    const id = this.nextId++;
    this.byId.set(id, node);
    const ids = this.byIno.get(node.ino);
    if (ids === undefined) this.byIno.set(node.ino, id);
    else if (typeof ids === 'number') this.byIno.set(node.ino, [ids, id]);
    else ids.push(id);
    if (this.onNew !== null && !this.retired.has(node)) this.onNew(node);
    return id;
  }

  /**
   * A node id a dead daemon handed out, found again after a restart (restore.ts): the kernel's
   * lookup count is not known, so the id stays until unmount (PINNED lookups).
   */
  adopt(id: number, node: N): void {
    this.byId.set(id, node);
    this.counts.set(id, PINNED);
    const ids = this.byIno.get(node.ino);
    if (ids === undefined) this.byIno.set(node.ino, id);
    else if (typeof ids === 'number') this.byIno.set(node.ino, [ids, id]);
    else ids.push(id);
    this.reserve(id);
  }

  /** Never hand out ids up to `id` (a dead daemon's). */
  reserve(id: number): void {
    if (id >= this.nextId) this.nextId = id + 1;
  }

  /** Every node the kernel holds an id for. */
  *known(): IterableIterator<N> {
    yield* this.byId.values();
  }

  /** The kernel dropped `n` references to `nodeid`. */
  forget(nodeid: number, n: number): void {
    if (nodeid === ROOT_ID) return;
    const node = this.byId.get(nodeid);
    if (node === undefined) return;
    const left = (this.counts.get(nodeid) ?? 1) - n;
    if (left > 0) {
      if (left === 1) this.counts.delete(nodeid);
      else this.counts.set(nodeid, left);
      return;
    }
    this.counts.delete(nodeid);
    this.byId.delete(nodeid);
    if (this.retiredIds.delete(nodeid)) this.dropRetired(node, nodeid);
    const ids = this.byIno.get(node.ino);
    if (ids === nodeid) this.byIno.delete(node.ino);
    else if (typeof ids === 'object') {
      const rest = ids.filter((i) => i !== nodeid);
      if (rest.length > 1) this.byIno.set(node.ino, rest);
      else if (rest.length === 1) this.byIno.set(node.ino, rest[0]!);
      else this.byIno.delete(node.ino);
    }
    if (this.idFor(node) === undefined && !this.retired.has(node)) this.onForget(node);
  }

  /**
   * Stop handing out `nodeid` for its node: the next `add` of the node makes a new id. The kernel
   * keeps using the old one for what it already holds. False for the root or an unknown id.
   */
  retire(nodeid: number): boolean {
    if (nodeid === ROOT_ID) return false;
    const node = this.byId.get(nodeid);
    if (node === undefined || this.retiredIds.has(nodeid)) return false;
    this.retiredIds.add(nodeid);
    const list = this.retired.get(node);
    if (list) list.push(nodeid);
    else this.retired.set(node, [nodeid]);
    return true;
  }

  /**
   * Every id the kernel holds for `node`: the current one first, then the others (retired ids, and
   * after a restart the dead daemon's ids adopted beside ids this daemon gave out for the node
   * before it had resolved them). What renames and removals journal: an id left out keeps its old
   * name in the journal and is lost, or found as another file, after the next restart.
   */
  idsFor(node: N): number[] {
    const ids = this.byIno.get(node.ino);
    if (ids === undefined) return [];
    const cur = this.idFor(node);
    if (typeof ids === 'number') return this.byId.get(ids) === node ? [ids] : [];
    const rest = ids.filter((id) => id !== cur && this.byId.get(id) === node);
    return cur === undefined ? rest : [cur, ...rest];
  }

  private dropRetired(node: N, nodeid: number): void {
    const list = this.retired.get(node);
    if (!list) return;
    const rest = list.filter((i) => i !== nodeid);
    if (rest.length > 0) this.retired.set(node, rest);
    else this.retired.delete(node);
  }

  /** Other ids the kernel holds for the same inode number (hard links), or none. */
  sameIno(nodeid: number): number[] {
    const node = this.byId.get(nodeid);
    if (node === undefined) return [];
    const ids = this.byIno.get(node.ino);
    return typeof ids === 'object' ? ids.filter((i) => i !== nodeid) : [];
  }

  /** Every id the kernel holds, with its node (retired ids included). */
  *entries(): IterableIterator<[number, N]> {
    yield* this.byId;
  }

  /** Lookup count of an id (0 when unknown). */
  lookups(nodeid: number): number {
    if (!this.byId.has(nodeid)) return 0;
    return this.counts.get(nodeid) ?? 1;
  }

  /** Number of ids the kernel holds, root included. */
  get size(): number {
    return this.byId.size;
  }
}

/** Open file or directory handles by number (the `fh` the kernel passes back). */
export class HandleTable<T> {
  private readonly items = new Map<number, T>();
  private next = 1;

  add(item: T): number {
    const fh = this.next++;
    this.items.set(fh, item);
    return fh;
  }

  get(fh: number): T | undefined {
    return this.items.get(fh);
  }

  /** A handle a dead daemon gave out, reopened after a restart (restore.ts). */
  adopt(fh: number, item: T): void {
    this.items.set(fh, item);
    this.reserve(fh);
  }

  /** Never give out handles up to `fh`. */
  reserve(fh: number): void {
    if (fh >= this.next) this.next = fh + 1;
  }

  remove(fh: number): T | undefined {
    const item = this.items.get(fh);
    this.items.delete(fh);
    return item;
  }

  get size(): number {
    return this.items.size;
  }

  values(): IterableIterator<T> {
    return this.items.values();
  }
}
