/**
 * Copy-up (like overlayfs copy_up.c): before the first change to a node held only by a lower
 * branch, copy it into a writable branch (cpup= policy, placement.ts), parents first. Each entry is built in the work dir
 * (contents by reflink / copy_file_range / read-write, then owner, mode, xattrs, ns times) and
 * renamed into place, so a crash never shows a half-built file. Lower branches are only read.
 */
import type { Branch } from '../branch/index.js';
import { ST, fdops, statArray } from '../branch/index.js';
import { isCode } from '../errors/index.js';
import type { Core } from './core.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type UnionNode } from './node.js';
import { indexCopy, indexEnabled } from './hardlinks.js';
import { cpupTargets, placeEach } from './place-ops.js';
import { copyFile, copyXattrList, type CopyAttrs } from './copy-file.js';

/** Copy xattrs from src entry to dst entry (copyXattrList's rules) by path. */
function copyXattrs(src: Branch, srcRel: string, setter: (name: string, value: Buffer) => void, userxattr = false): void {
  copyXattrList(src.listxattr(srcRel), (n) => src.tryGetxattr(srcRel, n), setter, userxattr);
}

/**
 * Whether copy-ups are made durable before they become visible (fsync of the copy before the
 * rename into place), as kernel overlayfs does unless mounted `volatile`.
 */
function durable(core: Core): boolean {
  return core.options.volatile !== true;
}

/** One entry to copy through the work dir (copyEntry). */
export interface CopyPlan {
  /** The entry to copy. */
  from: Branch;
  fromRel: string;
  /** Where the finished copy is renamed to. */
  to: Branch;
  toRel: string;
  /** Copy a regular file's contents (false: the caller truncates it anyway). */
  data: boolean;
  /**
   * How a regular file's data is made durable before the copy becomes visible (unless the union
   * is `volatile`): 'fsync' each file before its rename into place; 'syncfs': the caller syncs the
   * work dir's filesystem once (syncWork) before making the copies visible (Copied.unsynced).
   */
  durability: 'fsync' | 'syncfs';
  /** A regular file's mode/times to set instead of the source's (a setattr folded in, see CopyAttrs). */
  attrs?: CopyAttrs;
  /** The directory of `toRel` held open in `to` (Branch.holdDir), with the entry's name in it. */
  toDir?: { fd: number; name: string };
}

/**
 * The numbers a copy-up takes (a Float64Array costs ~0.8 us to make in V8, a copy-up took three):
 * the source's lstat and the parent's times. The engine is synchronous and a copy-up never starts
 * another while these are live.
 */
const sourceNums = statArray();
const parentNums = statArray();

/** What copyEntry made. */
export interface Copied {
  /** lstat of the new entry (slots in ST; a regular file's is copyFile's scratch: read it before the next copy). */
  st: Float64Array;
  /** lstat of the source (slots in ST: times as seconds + nanoseconds, exact; scratch: read it before the next copy). */
  source: Float64Array;
  /** Its data waits for the caller's syncWork (durability 'syncfs'). */
  unsynced: boolean;
}

/**
 * Copy an entry as `plan` says, through the work dir: directories empty; contents, owner, mode,
 * xattrs and ns times.
 */
export function copyEntry(core: Core, plan: CopyPlan): Copied {
  const { from, fromRel, to, toRel } = plan;
  const work = core.workFor(to);
  // from the branch's root fd (no /proc path walked), into numbers
  const source = sourceNums;
  if (!from.lstatInto(fromRel, source)) throw Object.assign(new Error('copy-up source vanished'), { code: 'ENOENT' });
  const type = source[ST.mode]! & S_IFMT;
  const mode = source[ST.mode]! & 0o7777;
  if (type === S_IFREG) {
    const flushed = plan.data && source[ST.size]! > 0 && durable(core);
    const flush = !flushed ? 'none' : plan.durability === 'fsync' ? 'fsync' : 'writeback';
    const st = copyFile({
      from,
      fromRel,
      work,
      to,
      toRel,
      st: source,
      toDir: plan.toDir,
      data: plan.data,
      flush,
      attrs: plan.attrs,
      userxattr: false, // as before: a file's user.overlay.* are copied (only a directory's would hide entries)
      tmpName: () => core.tmpName(),
    });
    return { st, source, unsynced: flush === 'writeback' };
  }
  const tmp = core.tmpName();
  try {
    if (type === S_IFDIR) work.mkdir(tmp, 0o700);
    else if (type === S_IFLNK) work.symlink(from.readlink(fromRel), tmp);
    else work.mknod(tmp, type | mode, source[ST.rdev]!);
    work.lchown(tmp, source[ST.uid]!, source[ST.gid]!);
    if (type !== S_IFLNK) work.chmod(tmp, mode);
    copyXattrs(from, fromRel, (n, v) => work.setxattr(tmp, n, v, 0), core.options.userxattr);
    work.utimens(tmp, source[ST.atimeSec]!, source[ST.atimeNsec]!, source[ST.mtimeSec]!, source[ST.mtimeNsec]!);
    to.renameFrom(work, tmp, toRel);
  } catch (e) {
    try {
      work.removeTree(tmp);
    } catch {
      /* best effort */
    }
    throw e;
  }
  return { st: lstatOf(to, toRel), source, unsynced: false };
}

/** lstat of an entry just made (slots in ST). */
function lstatOf(b: Branch, rel: string): Float64Array {
  const st = statArray();
  if (!b.lstatInto(rel, st)) throw Object.assign(new Error('copy-up result vanished'), { code: 'ENOENT' });
  return st;
}

/**
 * Make copies built with durability 'syncfs' durable: one syncfs of the work dir's filesystem (the data
 * of every file and one journal commit) instead of a fsync per file.
 */
function syncWork(work: Branch): void {
  const fd = work.openDir('');
  try {
    fdops.copySys.syncfs(fd);
  } finally {
    fdops.close(fd);
  }
}

/**
 * Make sure `node` has its topmost copy in a writable branch (parents first): one in place stays
 * there; one held only by read-only branches goes where the cpup= policy says (branch 0 with one
 * rw branch), falling over to the next branch on ENOSPC when the policy does (place-ops.ts). Keeps
 * its inode number by recording the new real inode in the table.
 * Returns the copy's lstat (ST slots, a scratch array: read it before the next copy-up) when
 * `attrs` were given to it (a regular file copied now), else null.
 */
export function copyUp(core: Core, node: UnionNode, syscall: string, noData = false, attrs?: CopyAttrs): Float64Array | null {
  core.requireRw(syscall);
  core.ensure(node);
  const top = node.layers[0]!;
  if (core.isUpper(top)) {
    if (top === 0) originCopiedUp(core, node);
    return null;
  }
  // another name of this file was copied up (the hard-link index lives on branch 0): link to it
  // there; a lower file with several names goes there too, so that its names stay one file
  const order = node.alias !== null || indexedOnTop(core, node) ? [0] : cpupTargets(core, node);
  return placeEach(core, order, core.placement.fallsOver('cpup'), syscall, (t) => copyUpTo(core, node, t, syscall, noData, attrs));
}

/** Several rw branches: whether the copy-up of `node` must go to branch 0, where the hard-link index is. */
function indexedOnTop(core: Core, node: UnionNode): boolean {
  if (!core.placement.several || node.type !== S_IFREG || !indexEnabled(core)) return false;
  const st = core.top(node).lstat(node.rel);
  return st !== null && st.nlink > 1;
}

/**
 * Make sure directory `dir` has a copy on writable branch `t` (its parents first; mode, owner,
 * xattrs and times of its topmost copy), so that a name can be made there.
 */
export function ensureDirOn(core: Core, dir: UnionNode, t: number, syscall: string): void {
  core.ensure(dir);
  if (dir.layers.includes(t)) {
    if (t === 0 && dir.layers[0] === 0) originCopiedUp(core, dir);
    return;
  }
  copyUpTo(core, dir, t, syscall, false);
}

/**
 * Copy `node`'s topmost copy to writable branch `t` (parent dirs made there first). Returns the
 * copy's lstat when `attrs` (regular files only) were given to it, else null.
 */
function copyUpTo(core: Core, node: UnionNode, t: number, syscall: string, noData: boolean, attrs?: CopyAttrs): Float64Array | null {
  const to = core.branches[t]!;
  const parent = node.parent;
  if (parent) ensureDirOn(core, parent, t, syscall);
  const src = core.top(node);
  // The parent held open for the copy-up (its times, the link into it, its times put back): its
  // path is walked once, not three times.
  const dir = parent !== null ? holdParent(to, parent.rel) : -1;
  try {
    // Adding the copy changes the parent's times; put them back (the merged dir did not change).
    if (dir >= 0) fdops.fstatInto(dir, parentNums);
    let st: Float64Array;
    let applied = false;
    if (node.alias !== null) {
      // Another name of this file was copied up: link to it, all names stay one file.
      to.link(node.alias, node.rel);
      st = lstatOf(to, node.rel);
    } else {
      const toDir = dir >= 0 ? { fd: dir, name: node.name } : undefined;
      const c = copyEntry(core, { from: src, fromRel: node.rel, to, toRel: node.rel, toDir, data: !noData, durability: 'fsync', attrs });
      st = c.st;
      applied = attrs !== undefined && (c.source[ST.mode]! & S_IFMT) === S_IFREG;
      // A lower file with other names (rare): index the copy so they find it (needs a plain Stats).
      if (t === 0 && node.type === S_IFREG && c.source[ST.nlink]! > 1) {
        const lowerSt = src.lstat(node.rel);
        if (lowerSt) {
          indexCopy(core, lowerSt, to, node.rel);
          st = lstatOf(to, node.rel); // the index's link and the recorded count changed it (nlink, ctime)
        }
      }
    }
    if (parent && dir >= 0) {
      const p = parentNums;
      to.utimensHeld(dir, parent.rel, p[ST.atimeSec]!, p[ST.atimeNsec]!, p[ST.mtimeSec]!, p[ST.mtimeNsec]!);
    }
    core.xino.set(st[ST.dev]!, st[ST.ino]!, node.ino);
    node.copiedUp(core.gen, t);
    // A directory copied up for a child's sake is now merged (nlink 1): cached attributes are stale.
    if (node.isDir && core.invalidator) core.invalidator(node);
    return applied ? st : null;
  } finally {
    if (dir >= 0) to.releaseDir(dir);
  }
}

/** The parent directory `rel` held open in `to` (Branch.holdDir); -1 when it is not there (the copy then fails by path, as before). */
function holdParent(to: Branch, rel: string): number {
  try {
    return to.holdDir(rel);
  } catch (e) {
    if (isCode(e, 'ENOENT', 'ENOTDIR')) return -1;
    throw e;
  }
}

/**
 * Copy the whole merged subtree of directory `node` to `dstRel` in the rw branch (for renaming a
 * directory that also exists below). Built in the work dir, marked opaque by the caller.
 * Returns the work-dir name holding the copy (caller renames it into place).
 */
export function copyTreeToWork(core: Core, node: UnionNode, listChildren: (n: UnionNode) => UnionNode[]): string {
  const work = core.work!;
  const rootTmp = core.tmpName();
  // The files' data is made durable at once after the whole tree is copied, before the caller
  // renames the tree into place.
  let unsynced = false;
  const walk = (n: UnionNode, tmpRel: string): void => {
    const { b: src, rel: srcRel } = core.real(n); // an indexed hard link reads its copied-up twin
    // A non-directory already in the rw branch is linked, not copied: it stays the same file (other
    // hard links, open handles, st_ino); the caller removes the old names.
    const inRw = !n.isDir && n.alias === null && n.layers[0] === 0 && src === core.rw;
    if (inRw) work.linkFrom(src, srcRel, tmpRel);
    let st: Float64Array;
    if (inRw) st = lstatOf(work, tmpRel);
    else {
      const c = copyEntry(core, { from: src, fromRel: srcRel, to: work, toRel: tmpRel, data: true, durability: 'syncfs' });
      st = c.st;
      unsynced ||= c.unsynced;
    }
    core.xino.set(st[ST.dev]!, st[ST.ino]!, n.ino);
    if (n.isDir) {
      const dirMode = st[ST.mode]! & 0o7777;
      // Make sure we can write into it while filling; restore mode after.
      if ((dirMode & 0o700) !== 0o700) work.chmod(tmpRel, dirMode | 0o700);
      for (const c of listChildren(n)) walk(c, tmpRel + '/' + c.name);
      // What overlayfs would show as merged: the renamed dir (upper + redirect) and dirs merged before.
      if (n === node || n.layers.length > 1) markMerged(core, work, tmpRel);
      else if (n.layers[0] !== 0) markXattr(work, tmpRel, core.markers.origin);
      if ((dirMode & 0o700) !== 0o700) work.chmod(tmpRel, dirMode);
      const big = src.lstatBig(srcRel);
      if (big) work.setTimes(tmpRel, big);
    }
  };
  try {
    walk(node, rootTmp);
    if (unsynced) syncWork(work);
  } catch (e) {
    try {
      work.removeTree(rootTmp);
    } catch {
      /* best effort */
    }
    throw e;
  }
  return rootTmp;
}

/** Mark a redirect-renamed directory copy (see MERGED_XATTR); left unmarked where xattrs are refused. */
function markMerged(core: Core, work: Branch, rel: string): void {
  markXattr(work, rel, core.markers.merged);
}

/**
 * A change in or to rw directory `node` that overlayfs would make by copying it up: a copied
 * lower-only subdir of a redirect rename (ORIGIN_XATTR) becomes merged (nlink 1) now, as there.
 */
export function originCopiedUp(core: Core, node: UnionNode): void {
  if (!node.isDir || node.marked || node.layers.length !== 1 || node.layers[0] !== 0) return;
  const rw = core.rw;
  if (!rw || rw.tryGetxattr(node.rel, core.markers.origin) === undefined) return;
  markMerged(core, rw, node.rel);
  try {
    rw.removexattr(node.rel, core.markers.origin);
  } catch (e) {
    if (!isCode(e, 'ENODATA', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP')) throw e;
  }
  node.markedMerged();
  if (core.invalidator) core.invalidator(node);
}

function markXattr(work: Branch, rel: string, name: string): void {
  try {
    work.setxattr(rel, name, Buffer.from('y'), 0);
  } catch (e) {
    if (!isCode(e, 'EPERM', 'ENOTSUP', 'EOPNOTSUPP')) throw e;
  }
}

