/**
 * Remembers which extended attributes a node does not have, so the GETXATTRs the kernel forwards
 * for every `ls -l` (security.selinux, system.posix_acl_access, and _default for directories) are
 * answered again without a syscall.
 *
 * Only absence is remembered (ENODATA, EOPNOTSUPP), per engine node (a WeakMap: a forgotten node
 * takes its entries with it, and a node id reused for another node starts empty), for as long as
 * the kernel may cache the node's attributes (attr_timeout): a change made beneath the union shows
 * after that time, as attribute changes do. Any request that may change a node (or, through hard
 * links or copy-up, another node) drops everything at once: `changed()`.
 */
import { Op } from './abi.js';

/** Opcodes after which remembered absences may be wrong. */
const CHANGING = new Uint8Array(64);
for (const op of [
  Op.SETATTR,
  Op.SYMLINK,
  Op.MKNOD,
  Op.MKDIR,
  Op.UNLINK,
  Op.RMDIR,
  Op.RENAME,
  Op.RENAME2,
  Op.LINK,
  Op.OPEN,
  Op.CREATE,
  Op.WRITE,
  Op.SETXATTR,
  Op.REMOVEXATTR,
  Op.FALLOCATE,
]) {
  CHANGING[op] = 1;
}

export function changesNodes(opcode: number): boolean {
  return opcode < CHANGING.length ? CHANGING[opcode] === 1 : true;
}

interface Absent {
  /** Negative errno to answer. */
  errno: number;
  /** performance.now() deadline. */
  until: number;
}

export class XattrAbsence<N extends object> {
  private map = new WeakMap<N, Map<string, Absent>>();

  /** @param ttlMs how long an absence may be trusted (0: never remembered). */
  constructor(private readonly ttlMs: number) {}

  /** The remembered negative errno for `name` on `node`, or 0. */
  get(node: N, name: string): number {
    if (this.ttlMs <= 0) return 0;
    const a = this.map.get(node)?.get(name);
    if (!a) return 0;
    if (performance.now() < a.until) return a.errno;
    this.map.get(node)?.delete(name);
    return 0;
  }

  remember(node: N, name: string, errno: number): void {
    if (this.ttlMs <= 0) return;
    let m = this.map.get(node);
    if (!m) this.map.set(node, (m = new Map()));
    m.set(name, { errno, until: performance.now() + this.ttlMs });
  }

  /** Something changed: forget every remembered absence. */
  changed(): void {
    this.map = new WeakMap();
  }
}
