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

interface Slot<N> {
  node: N;
  nlookup: number;
}

/**
 * Hard links: the engine gives each name its own node, so the kernel holds one inode per name.
 * `sameIno` lists the other ids of one inode number, so the transport can refresh their cached
 * attributes after a change through one of them.
 */
export class NodeTable<N extends { readonly ino: number }> {
  private readonly byId = new Map<number, Slot<N>>();
  private readonly idOf = new Map<N, number>();
  /** Ids per inode number: a plain id for the usual one, an array only for hard links (memory). */
  private readonly idsByIno = new Map<number, number | number[]>();
  /** Retired ids still held by the kernel, per node. */
  private readonly retired = new Map<N, number[]>();
  private nextId = ROOT_ID + 1;

  constructor(
    root: N,
    private readonly onForget: (node: N) => void = () => {},
    /** A node got its first id (the kernel knows it from now on). */
    private readonly onNew: ((node: N) => void) | null = null,
  ) {
    this.byId.set(ROOT_ID, { node: root, nlookup: 1 });
    this.idOf.set(root, ROOT_ID);
  }

  /** The node behind an id, or undefined for an id the kernel should not have. */
  get(nodeid: number): N | undefined {
    return this.byId.get(nodeid)?.node;
  }

  /** The id the kernel knows `node` by, if any (counts nothing). */
  idFor(node: N): number | undefined {
    return this.idOf.get(node);
  }

  /** Id for a node the kernel is about to receive; counts one lookup. */
  add(node: N): number {
    const known = this.idOf.get(node);
    if (known !== undefined) {
      const slot = this.byId.get(known);
      if (slot) slot.nlookup++;
      return known;
    }
    const id = this.nextId++;
    this.byId.set(id, { node, nlookup: 1 });
    this.idOf.set(node, id);
    const ids = this.idsByIno.get(node.ino);
    if (ids === undefined) this.idsByIno.set(node.ino, id);
    else if (typeof ids === 'number') this.idsByIno.set(node.ino, [ids, id]);
    else ids.push(id);
    if (this.onNew !== null && !this.retired.has(node)) this.onNew(node);
    return id;
  }

  /** Every node the kernel holds an id for. */
  *known(): IterableIterator<N> {
    for (const s of this.byId.values()) yield s.node;
  }

  /** The kernel dropped `n` references to `nodeid`. */
  forget(nodeid: number, n: number): void {
    if (nodeid === ROOT_ID) return;
    const slot = this.byId.get(nodeid);
    if (!slot) return;
    slot.nlookup -= n;
    if (slot.nlookup > 0) return;
    this.byId.delete(nodeid);
    if (this.idOf.get(slot.node) === nodeid) this.idOf.delete(slot.node);
    else this.dropRetired(slot.node, nodeid);
    const ids = this.idsByIno.get(slot.node.ino);
    if (ids === nodeid) this.idsByIno.delete(slot.node.ino);
    else if (typeof ids === 'object') {
      const rest = ids.filter((i) => i !== nodeid);
      if (rest.length > 1) this.idsByIno.set(slot.node.ino, rest);
      else if (rest.length === 1) this.idsByIno.set(slot.node.ino, rest[0]!);
      else this.idsByIno.delete(slot.node.ino);
    }
    if (!this.idOf.has(slot.node) && !this.retired.has(slot.node)) this.onForget(slot.node);
  }

  /**
   * Stop handing out `nodeid` for its node: the next `add` of the node makes a new id. The kernel
   * keeps using the old one for what it already holds. False for the root or an unknown id.
   */
  retire(nodeid: number): boolean {
    if (nodeid === ROOT_ID) return false;
    const slot = this.byId.get(nodeid);
    if (!slot || this.idOf.get(slot.node) !== nodeid) return false;
    this.idOf.delete(slot.node);
    const list = this.retired.get(slot.node);
    if (list) list.push(nodeid);
    else this.retired.set(slot.node, [nodeid]);
    return true;
  }

  /** Every id the kernel holds for `node`: the current one first, then retired ones. */
  idsFor(node: N): number[] {
    const cur = this.idOf.get(node);
    const old = this.retired.get(node) ?? [];
    return cur === undefined ? [...old] : [cur, ...old];
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
    const slot = this.byId.get(nodeid);
    if (!slot) return [];
    const ids = this.idsByIno.get(slot.node.ino);
    return typeof ids === 'object' ? ids.filter((i) => i !== nodeid) : [];
  }

  /** Every id the kernel holds, with its node (retired ids included). */
  *entries(): IterableIterator<[number, N]> {
    for (const [id, slot] of this.byId) yield [id, slot.node];
  }

  /** Lookup count of an id (0 when unknown). */
  lookups(nodeid: number): number {
    return this.byId.get(nodeid)?.nlookup ?? 0;
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
