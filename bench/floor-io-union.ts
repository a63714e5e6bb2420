/**
 * floor-io (issue 14): the Node floor (floor-union.ts: our transport over an in-memory tree)
 * doing the disk work of floor-c-io (native/floor-server.c, its `io` mode), call for call, through
 * the calls the engine itself makes (the native addon and node:fs, as src/engine/copy-file.ts):
 * - LOOKUP: one fstatat of the backing file (its lower, or the upper once copied up);
 * - SETATTR of a lower regular file: a durable copy-up into the upper dir first (parent dirs made
 *   with mkdirat with their mode and owner, then source open + fstat, an O_TMPFILE in the work
 *   dir, copy_file_range, fchown, fchmod with the new mode, futimens, fsync, linkat into place);
 *   then the rest of the change on the upper file (fchmodat, fchownat, truncate) and in memory.
 * What it leaves out of a union's copy-up, as floor-c-io does: the whiteout probes, xattrs, the
 * parent dir's times, the inode-number record, resolution beneath the branch root. So the gap
 * between floor-c-io and floor-io is what Node costs for the same work; the gap between floor-io
 * and layerfs is what the union's semantics and engine add on top.
 */
import { fdops, statArray, ST } from '../src/branch/index.js';
import { codeOf, fsErr, isCode } from '../src/errors/index.js';
import { AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW, O_DIRECTORY, O_NOFOLLOW, O_PATH, O_RDONLY, O_TMPFILE, O_WRONLY } from '../src/sys/constants.js';
import { copyFileRange, fchmodat, fchownat, fstatatInto, futimens, linkat, mkdirat, openat2 } from '../src/sys/native.js';
import type { Attr, SetAttr } from '../src/engine/types.js';
import { MemUnion, type MemNode } from '../test/fuse/mem-union.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** Where a node's backing file is: `branch` an index into the branch fds (the last: the upper). */
interface Backing {
  rel: string;
  branch: number;
}

export interface IoDirs {
  lowers: string[];
  upper: string;
  work: string;
}

export class IoUnion extends MemUnion {
  private readonly fds: number[];
  private readonly upper: number;
  private readonly work: number;
  private readonly backing = new Map<MemNode, Backing>();
  private readonly st = statArray();
  /** Upper dirs made (or found there) so far. */
  private readonly made = new Set<string>();

  constructor(private readonly dirs: IoDirs) {
    super();
    const open = (p: string): number => openat2(-100, p, O_PATH | O_DIRECTORY, 0, 0);
    this.fds = [...dirs.lowers, dirs.upper].map(open);
    this.upper = this.fds.length - 1;
    this.work = open(dirs.work);
    this.backing.set(this.root, { rel: '.', branch: this.upper });
  }

  /** Record where `node` (at `rel`) is: lower `branch`, the topmost holding it (the engine's lookup at mount). */
  place(node: MemNode, rel: string, branch: number): void {
    this.backing.set(node, { rel, branch });
  }

  override lookup(parent: MemNode, name: string): MemNode {
    const n = super.lookup(parent, name);
    const b = this.backing.get(n);
    if (b) {
      const st = this.st;
      const r = fstatatInto(this.fds[b.branch]!, b.rel, st, AT_SYMLINK_NOFOLLOW);
      if (r < 0) throw fsErr(codeOf(-r), 'lookup', b.rel);
      // what the backing file is now (the size stays the one read at mount)
      n.mode = st[ST.mode]!;
      n.uid = st[ST.uid]!;
      n.gid = st[ST.gid]!;
      n.mtime = st[ST.mtimeSec]! + st[ST.mtimeNsec]! / 1e9;
    }
    return n;
  }

  override setattr(n: MemNode, set: SetAttr): Attr {
    const b = this.backing.get(n);
    if (b && (n.mode & S_IFMT) === S_IFREG) {
      const up = this.fds[this.upper]!;
      const copied = b.branch !== this.upper;
      if (copied) this.copyUp(b, set.mode);
      // then the change on the upper file (its mode already when copied with it)
      if (set.mode !== undefined && !copied) fchmodat(up, b.rel, set.mode & 0o7777, 0);
      if (set.uid !== undefined || set.gid !== undefined) fchownat(up, b.rel, set.uid ?? -1, set.gid ?? -1, AT_SYMLINK_NOFOLLOW);
      if (set.size !== undefined) {
        const fd = openat2(up, b.rel, O_WRONLY | O_NOFOLLOW, 0, 0);
        try {
          fdops.ftruncate(fd, set.size);
        } finally {
          fdops.close(fd);
        }
      }
    }
    return super.setattr(n, set);
  }

  private copyUp(b: Backing, mode: number | undefined): void {
    this.parents(b.rel);
    const src = openat2(this.fds[b.branch]!, b.rel, O_RDONLY | O_NOFOLLOW, 0, 0);
    let tmp = -1;
    try {
      const r = fstatatInto(src, '', this.st, AT_EMPTY_PATH);
      if (r < 0) throw fsErr(codeOf(-r), 'fstat', b.rel);
      const st = this.st;
      tmp = openat2(this.work, '.', O_TMPFILE | O_WRONLY, 0o600, 0);
      for (let done = 0, size = st[ST.size]!; done < size; ) {
        const r = copyFileRange(src, done, tmp, done, size - done);
        if (r === 0) break;
        done += r;
      }
      fdops.fchown(tmp, st[ST.uid]!, st[ST.gid]!);
      fdops.fchmod(tmp, mode !== undefined ? mode & 0o7777 : st[ST.mode]! & 0o7777);
      futimens(tmp, st[ST.atimeSec]!, st[ST.atimeNsec]!, st[ST.mtimeSec]!, st[ST.mtimeNsec]!);
      fdops.fsync(tmp, false);
      linkat(tmp, '', this.fds[this.upper]!, b.rel, AT_EMPTY_PATH);
    } finally {
      fdops.close(src);
      if (tmp >= 0) fdops.close(tmp);
    }
    b.branch = this.upper;
  }

  /** The dirs above `rel` in the upper, made where missing (as the C floor: mkdirat, EEXIST fine). */
  private parents(rel: string): void {
    for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) {
      const d = rel.slice(0, i);
      if (this.made.has(d)) continue;
      const up = this.fds[this.upper]!;
      const lower = this.dirs.lowers.findIndex((_, k) => fstatatInto(this.fds[k]!, d, this.st, AT_SYMLINK_NOFOLLOW) === 0);
      const mode = lower < 0 ? 0o755 : this.st[ST.mode]! & 0o7777;
      try {
        mkdirat(up, d, mode);
        if (lower >= 0) {
          // with its owner (fchownat drops set-id bits: the mode after)
          fchownat(up, d, this.st[ST.uid]!, this.st[ST.gid]!, AT_SYMLINK_NOFOLLOW);
          if (mode & 0o7000) fchmodat(up, d, mode, 0);
        }
      } catch (e) {
        if (!isCode(e, 'EEXIST')) throw e;
      }
      this.made.add(d);
    }
  }
}
