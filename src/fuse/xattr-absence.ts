/**
 * Remembers which extended attributes a node does not have, so the GETXATTRs the kernel forwards
 * for every `ls -l` (security.selinux, system.posix_acl_access, and _default for directories) and
 * for every write and chown (security.capability) are answered without a syscall each.
 *
 * Two ways to know: the node's whole name list (one llistxattr answers every name: absent unless
 * listed), or one name at a time (ENODATA/EOPNOTSUPP answered before, where no list could be had).
 * Only absence is trusted: a listed name is still read with getxattr. Entries are per engine node
 * (a WeakMap: a forgotten node takes its entries with it) and live as long as the kernel may cache
 * the node's attributes (attr_timeout): a change made beneath the union shows after that time, as
 * attribute changes do.
 *
 * Through the mount, only a SETXATTR can make an absent name present; copy-up copies xattrs (it
 * can lose one, never add one), chmod/chown/write/truncate only ever remove (ACL mask, killed
 * capabilities), and new names (create, mkdir, ...) are new nodes with no entry. Requests that
 * move names between nodes (LINK: a hard link shares the file; RENAME) drop everything too, to
 * stay simple: the transport calls `changed` for SETXATTR, REMOVEXATTR, LINK and RENAME.
 */
import { errnoOf } from '../errors/index.js';

/** What `get` answers for a name the node is known to have (ask getxattr for its value). */
export const PRESENT = 1;

const ENODATA_NEG = -errnoOf('ENODATA');

/** Milliseconds on a monotonic clock (performance.now by default; tests pass their own). */
export type Clock = () => number;

interface Known {
  /** Deadline on the clock. */
  until: number;
  /** Every name the node has (from a listing), or null: only `absent` is known. */
  names: readonly string[] | null;
  /** Names known absent one by one, with the negative errno to answer. */
  absent: Map<string, number> | null;
}

export class XattrAbsence<N extends object> {
  private map = new WeakMap<N, Known>();

  /**
   * @param ttlMs how long an absence may be trusted (0: never remembered).
   * @param now the clock deadlines are kept on.
   */
  constructor(
    private readonly ttlMs: number,
    private readonly now: Clock = () => performance.now(),
  ) {}

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  /** The negative errno to answer for `name` on `node`, PRESENT when it is listed, or 0 (unknown). */
  get(node: N, name: string): number {
    if (this.ttlMs <= 0) return 0;
    const k = this.map.get(node);
    if (!k) return 0;
    if (this.now() >= k.until) {
      this.map.delete(node);
      return 0;
    }
    if (k.names !== null) return k.names.includes(name) ? PRESENT : ENODATA_NEG;
    return k.absent?.get(name) ?? 0;
  }

  /**
   * What to answer for `name` on `node` without asking getxattr: the negative errno of a name known
   * absent, PRESENT for a listed one, 0 when unknown. When the node's names are not known, one
   * listing (`list`) is taken and remembered first (null: the listing cannot tell).
   */
  answer(node: N, name: string, list: (node: N) => readonly string[] | null): number {
    const known = this.get(node, name);
    if (known !== 0 || this.ttlMs <= 0) return known;
    const names = list(node);
    if (names === null) return 0;
    this.rememberNames(node, names);
    return names.includes(name) ? PRESENT : ENODATA_NEG;
  }

  /**
   * True when the node is known to have no xattr at all (a remembered empty listing): LISTXATTR can
   * answer empty without a syscall. Only an empty list is trusted for this: through the mount a
   * name appears only by SETXATTR (which forgets everything), while a listed name may have gone.
   */
  knownEmpty(node: N): boolean {
    if (this.ttlMs <= 0) return false;
    const k = this.map.get(node);
    if (!k || k.names === null || k.names.length !== 0) return false;
    return this.now() < k.until;
  }

  /** Remember the node's whole name list (names not in it are absent: ENODATA). */
  rememberNames(node: N, names: readonly string[]): void {
    if (this.ttlMs <= 0) return;
    this.map.set(node, { until: this.now() + this.ttlMs, names, absent: null });
  }

  /** Remember one absent name (`errno` negative: -ENODATA or -EOPNOTSUPP). */
  remember(node: N, name: string, errno: number): void {
    if (this.ttlMs <= 0) return;
    let k = this.map.get(node);
    if (!k || k.names !== null || this.now() >= k.until) {
      k = { until: this.now() + this.ttlMs, names: null, absent: null };
      this.map.set(node, k);
    }
    (k.absent ??= new Map()).set(name, errno);
  }

  /** Something changed: forget every remembered absence. */
  changed(): void {
    this.map = new WeakMap();
  }
}
