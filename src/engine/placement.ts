/**
 * Where a write goes when the union has several writable branches (AUFS's create= and cpup=
 * policies). One Placement per branch list: it owns the list of writable branches, their work dirs
 * (a copy-up is built on the filesystem it lands on) and the free-space cache. Nothing about it is
 * cached elsewhere: when the branch list changes, build a new one from the new list (and close the old).
 *
 * What each policy decides (AUFS's aufs(5) semantics; "writable" = branches with perm rw, which
 * layerfs keeps as the topmost ones, so "above a lower branch" means "any writable branch"):
 *
 * create= (a new name: create, mkdir, mknod, symlink; link and rename keep the source's branch)
 *   tdp     the topmost writable branch where the parent directory exists; when it exists on none,
 *           the parent is copied up bottom-up: to the writable branch nearest above it (the lowest
 *           writable one). Errors are returned (no fall-over). The default.
 *   rr      round robin over the writable branches.
 *   mfs[:SEC]   the writable branch with the most free space (statfs f_bavail); the answer is kept
 *               SEC seconds (default 30, 0 = ask every time).
 *   mfsrr:LOW   mfs, but when that branch has less than LOW bytes free: round robin.
 *   pmfs[:SEC]  tdp, but when the parent exists on several writable branches: the one of them with
 *               the most free space.
 *   pmfsrr:LOW  pmfs, but round robin when the chosen branch has less than LOW bytes free.
 * cpup= (a copy-up of a file found only on a read-only branch; also where such a name's whiteout goes)
 *   tdp     as create=tdp (the default); errors are returned.
 *   bup     the writable branch nearest above the file where the parent exists; else as bu.
 *   bu      the writable branch nearest above the file, whether the parent exists there or not.
 *   (A file with several hard links goes to branch 0 whatever the policy: the hard-link index
 *   that keeps its names one file lives there; see copy-up.ts.)
 *
 * Fall-over (layerfs's addition, for pooling disks): with every policy but tdp, ENOSPC, EDQUOT or
 * EROFS from one branch moves the operation to the next candidate in the policy's order (mfs:
 * next most free; rr: next in turn; bu/bup: next writable branch upwards); the failed branch
 * counts as full until the cache expires. The partial file is removed first (see place-ops.ts).
 */
import { Branch } from '../branch/index.js';
import { PRIVATE } from '../format/index.js';
import { DEFAULT_CPUP, DEFAULT_CREATE, type CpupKind, type CreatePolicy } from './placement-policy.js';

/** The name of the work dir inside a writable branch (the same as Core's WORK_NAME). */
const WORK_NAME = PRIVATE + '.work';

export class Placement {
  /** Indices of the writable branches, topmost first. */
  readonly writable: readonly number[];
  readonly create: CreatePolicy;
  readonly cpup: CpupKind;
  private readonly branches: readonly Branch[];
  /** Work dir per writable branch index (index 0's may be the union's `workdir=`). */
  private readonly works = new Map<number, Branch>();
  /** Work dirs this Placement opened (closed by close()). */
  private readonly owned: Branch[] = [];
  private rrNext = 0;
  /** statfs answers: free bytes and when they were taken (ms). */
  private readonly free = new Map<number, { bytes: number; at: number }>();
  /** mfs: the branch last chosen and until when it is kept. */
  private held: { bi: number; until: number } | null = null;
  private readonly now: () => number;

  /**
   * `work0`: the work dir of the topmost writable branch (Core made it, maybe from `workdir=`); the
   * other writable branches get theirs here (made when missing; leftover half copies removed).
   */
  constructor(
    branches: readonly Branch[],
    opts: { create?: CreatePolicy; cpup?: CpupKind; work0?: Branch | null; now?: () => number } = {},
  ) {
    this.branches = branches;
    this.create = opts.create ?? DEFAULT_CREATE;
    this.cpup = opts.cpup ?? DEFAULT_CPUP;
    this.now = opts.now ?? Date.now;
    this.writable = branches.flatMap((b, i) => (b.writable ? [i] : []));
    try {
      for (const bi of this.writable) {
        if (bi === this.writable[0] && opts.work0) {
          this.works.set(bi, opts.work0);
          continue;
        }
        const b = branches[bi]!;
        // our private work dir must not change the branch root's times (as Core does for branch 0)
        const before = b.lstatBig('');
        if (!b.exists(WORK_NAME)) b.mkdir(WORK_NAME, 0o700);
        const w = b.sub(WORK_NAME, 'rw', -1);
        this.owned.push(w);
        this.works.set(bi, w);
        for (const n of w.readdirNames('')) if (n.startsWith('cu-')) w.removeTree(n);
        const after = b.lstatBig('');
        if (before && after && after.mtimeNs !== before.mtimeNs) b.setTimes('', before);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** More than one writable branch: the policies matter. */
  get several(): boolean {
    return this.writable.length > 1;
  }

  /** The work dir on branch `bi`'s filesystem (a writable branch). */
  workOf(bi: number): Branch {
    const w = this.works.get(bi);
    if (!w) throw new Error(`no work dir for branch ${bi}`);
    return w;
  }

  /** Whether the policy for `what` tries the next branch after ENOSPC/EDQUOT/EROFS. */
  fallsOver(what: 'create' | 'cpup'): boolean {
    return what === 'create' ? this.create.kind !== 'tdp' : this.cpup !== 'tdp';
  }

  /**
   * The writable branches a new name under a parent held by `parentLayers` may go to, in the
   * create policy's order (first = the choice; the rest: where a fall-over goes).
   */
  createOrder(parentLayers: readonly number[]): number[] {
    const w = this.writable;
    if (w.length <= 1) return [...w];
    const withParent = w.filter((bi) => parentLayers.includes(bi));
    const tdp = withParent[0] ?? w[w.length - 1]!;
    const p = this.create;
    switch (p.kind) {
      case 'tdp':
        return [tdp];
      case 'rr':
        return this.rrOrder();
      case 'mfs':
        return this.mfsOrder(w);
      case 'mfsrr': {
        const o = this.mfsOrder(w);
        return this.freeBytes(o[0]!) < p.low ? this.rrOrder() : o;
      }
      case 'pmfs':
      case 'pmfsrr': {
        const first = withParent.length > 1 ? this.mfsOrder(withParent)[0]! : tdp;
        if (p.kind === 'pmfsrr' && this.freeBytes(first) < p.low) return this.rrOrder();
        return [first, ...this.mfsOrder(w).filter((bi) => bi !== first)];
      }
    }
  }

  /**
   * The writable branches a copy-up of an entry whose topmost copy is in (read-only) branch `srcBi`
   * may go to, in the cpup policy's order.
   */
  cpupOrder(srcBi: number, parentLayers: readonly number[]): number[] {
    const w = this.writable;
    if (w.length <= 1) return [...w];
    // nearest above the source first (bottom-up)
    const up = w.filter((bi) => bi < srcBi).reverse();
    if (up.length === 0) return [];
    switch (this.cpup) {
      case 'tdp': {
        const withParent = w.find((bi) => bi < srcBi && parentLayers.includes(bi));
        return [withParent ?? up[0]!];
      }
      case 'bup': {
        const first = up.find((bi) => parentLayers.includes(bi)) ?? up[0]!;
        return [first, ...up.filter((bi) => bi !== first)];
      }
      case 'bu':
        return up;
    }
  }

  /** Branch `bi` answered ENOSPC/EDQUOT/EROFS: it counts as full until its free space is asked again. */
  noteFull(bi: number): void {
    this.free.set(bi, { bytes: 0, at: this.now() });
    if (this.held?.bi === bi) this.held = null;
  }

  /** Free bytes of writable branch `bi` for an unprivileged writer (f_bavail), cached `sec` seconds. */
  freeBytes(bi: number): number {
    const t = this.now();
    const c = this.free.get(bi);
    if (c && t - c.at < this.create.sec * 1000) return c.bytes;
    let bytes = 0;
    try {
      const s = this.branches[bi]!.statfs();
      bytes = s.bavail * s.bsize;
    } catch {
      bytes = 0; // a branch that cannot say is chosen last
    }
    this.free.set(bi, { bytes, at: t });
    return bytes;
  }

  private rrOrder(): number[] {
    const w = this.writable;
    const k = this.rrNext % w.length;
    this.rrNext = (k + 1) % w.length;
    return [...w.slice(k), ...w.slice(0, k)];
  }

  /** `cands` by free space, most first; the first is kept `sec` seconds (AUFS mfs). */
  private mfsOrder(cands: readonly number[]): number[] {
    const t = this.now();
    const byFree = [...cands].sort((a, b) => this.freeBytes(b) - this.freeBytes(a) || a - b);
    const h = this.held;
    if (h && t < h.until && cands.includes(h.bi)) return [h.bi, ...byFree.filter((bi) => bi !== h.bi)];
    if (cands.length === this.writable.length) this.held = { bi: byFree[0]!, until: t + this.create.sec * 1000 };
    return byFree;
  }

  close(): void {
    for (const w of this.owned) w.close();
    this.owned.length = 0;
  }
}
