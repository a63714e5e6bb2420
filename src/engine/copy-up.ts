/**
 * Copy-up (like overlayfs copy_up.c): before the first change to a node held only by a lower
 * branch, copy it into the rw branch, parents first. Each entry is built in the work dir
 * (contents by reflink / copy_file_range / read-write, then owner, mode, xattrs, ns times) and
 * renamed into place, so a crash never shows a half-built file. Lower branches are only read.
 */
import type { BigIntStats, Stats } from 'node:fs';
import type { Branch } from '../branch/index.js';
import { fdops, nsParts } from '../branch/index.js';
import { isCode } from '../errors/index.js';
import type { Core } from './core.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type UnionNode } from './node.js';
import { MERGED_XATTR, ORIGIN_XATTR, isPrivateXattr } from '../format/index.js';
import { indexCopy } from './hardlinks.js';
import { O_CREAT, O_EXCL, O_RDONLY, O_WRONLY } from '../sys/constants.js';

/** Copy xattrs (except ours) from src entry to dst entry. Unsupported ones are skipped. */
function copyXattrs(src: Branch, srcRel: string, setter: (name: string, value: Buffer) => void): void {
  for (const name of src.listxattr(srcRel)) {
    if (isPrivateXattr(name)) continue;
    const v = src.tryGetxattr(srcRel, name);
    if (v === undefined) continue;
    try {
      setter(name, v);
    } catch (e) {
      if (!isCode(e, 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EACCES')) throw e;
    }
  }
}

/**
 * Whether copy-ups are made durable before they become visible (fsync of the copy before the
 * rename into place), as kernel overlayfs does unless mounted `volatile`.
 */
function durable(core: Core): boolean {
  return core.options.volatile !== true;
}

/**
 * Copy entry `srcRel` of `src` to `dstRel` of `dst` through the work dir. Directories are copied
 * empty. `noData`: skip file contents (the caller truncates anyway). A regular file's data is
 * fsync'ed before the rename into place (unless `volatile`), or, when `deferSync` is given, that
 * is left to the caller (syncWork before the copy is visible) and `deferSync.needed` is set.
 * Returns the new entry's lstat; `source.st` gets the source's (bigint) lstat.
 */
export function copyEntry(
  core: Core,
  src: Branch,
  srcRel: string,
  dst: Branch,
  dstRel: string,
  noData = false,
  deferSync?: { needed: boolean },
  source?: { st?: BigIntStats },
): Stats {
  const work = core.work!;
  const st = src.lstatBig(srcRel);
  if (source) source.st = st ?? undefined;
  if (!st) throw Object.assign(new Error('copy-up source vanished'), { code: 'ENOENT' });
  const tmp = core.tmpName();
  const type = Number(st.mode) & S_IFMT;
  const mode = Number(st.mode) & 0o7777;
  try {
    if (type === S_IFREG) {
      const hasData = !noData && st.size > 0n && durable(core);
      copyFile(src, srcRel, work, tmp, st, noData, hasData && !deferSync, hasData);
      if (hasData && deferSync) deferSync.needed = true;
    } else {
      if (type === S_IFDIR) work.mkdir(tmp, 0o700);
      else if (type === S_IFLNK) work.symlink(src.readlink(srcRel), tmp);
      else work.mknod(tmp, type | mode, Number(st.rdev));
      work.lchown(tmp, Number(st.uid), Number(st.gid));
      if (type !== S_IFLNK) work.chmod(tmp, mode);
      copyXattrs(src, srcRel, (n, v) => work.setxattr(tmp, n, v, 0));
      work.setTimes(tmp, st);
    }
    dst.renameFrom(work, tmp, dstRel);
  } catch (e) {
    try {
      work.removeTree(tmp);
    } catch {
      /* best effort */
    }
    throw e;
  }
  return dst.lstat(dstRel)!;
}

/**
 * Build the regular file `tmp` in the work dir: data (reflink / copy_file_range / read-write,
 * holes kept), owner, mode, xattrs, ns times; with `sync`, fsync'ed last, so that once renamed
 * into place a crash cannot show it half copied (delayed allocation would otherwise commit the
 * rename before the data). `writeback`: start writing big data out while copying (a fsync follows).
 */
function copyFile(
  src: Branch,
  srcRel: string,
  work: Branch,
  tmp: string,
  st: BigIntStats,
  noData: boolean,
  sync: boolean,
  writeback: boolean,
): void {
  const sfd = noData ? -1 : src.open(srcRel, O_RDONLY);
  try {
    const dfd = work.open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o600);
    try {
      if (sfd >= 0) {
        fdops.copyData(sfd, dfd, Number(st.size), {
          caps: work.copyCaps(Number(st.dev)),
          sparse: st.blocks * 512n < st.size,
          writeback,
        });
      }
      fdops.fchown(dfd, Number(st.uid), Number(st.gid));
      fdops.fchmod(dfd, Number(st.mode) & 0o7777);
      copyXattrs(src, srcRel, (n, v) => fdops.fsetxattr(dfd, n, v, 0));
      const [as, an] = nsParts(st.atimeNs);
      const [ms, mn] = nsParts(st.mtimeNs);
      fdops.futimens(dfd, as, an, ms, mn);
      if (sync) fdops.copySys.fsync(dfd);
    } finally {
      fdops.close(dfd);
    }
  } finally {
    if (sfd >= 0) fdops.close(sfd);
  }
}

/**
 * Make copies built with deferSync durable: one syncfs of the work dir's filesystem (the data
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
 * Make sure `node` has its topmost copy in the rw branch (parents first). Keeps its inode number
 * by recording the new real inode in the table.
 */
export function copyUp(core: Core, node: UnionNode, syscall: string, noData = false): void {
  const rw = core.requireRw(syscall);
  core.ensure(node);
  if (node.layers[0] === 0) {
    originCopiedUp(core, node);
    return;
  }
  const parent = node.parent;
  if (parent) copyUp(core, parent, syscall);
  const src = core.top(node);
  // Adding the copy changes the parent's times; put them back (the merged dir did not change).
  const pst = parent ? rw.lstatBig(parent.rel) : null;
  let st: Stats;
  if (node.alias !== null) {
    // Another name of this file was copied up: link to it, all names stay one file.
    rw.link(node.alias, node.rel);
    st = rw.lstat(node.rel)!;
  } else {
    const source: { st?: BigIntStats } = {};
    st = copyEntry(core, src, node.rel, rw, node.rel, noData, undefined, source);
    // A lower file with other names (rare): index the copy so they find it (needs a plain Stats).
    if (node.type === S_IFREG && source.st && source.st.nlink > 1n) {
      const lowerSt = src.lstat(node.rel);
      if (lowerSt) indexCopy(core, lowerSt, rw, node.rel);
    }
  }
  if (parent && pst) rw.setTimes(parent.rel, pst);
  core.xino.set(st.dev, st.ino, node.ino);
  node.alias = null;
  node.layers = node.isDir ? [0, ...node.layers] : [0];
  node.gen = core.gen;
  // A directory copied up for a child's sake is now merged (nlink 1): cached attributes are stale.
  if (node.isDir && core.invalidator) core.invalidator(node);
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
  const toSync = { needed: false };
  const walk = (n: UnionNode, tmpRel: string): void => {
    const { b: src, rel: srcRel } = core.real(n); // an indexed hard link reads its copied-up twin
    // A non-directory already in the rw branch is linked, not copied: it stays the same file (other
    // hard links, open handles, st_ino); the caller removes the old names.
    const inRw = !n.isDir && n.alias === null && n.layers[0] === 0 && src === core.rw;
    if (inRw) work.linkFrom(src, srcRel, tmpRel);
    const st = inRw ? work.lstat(tmpRel)! : copyEntry(core, src, srcRel, work, tmpRel, false, toSync);
    core.xino.set(st.dev, st.ino, n.ino);
    if (n.isDir) {
      const dirMode = st.mode & 0o7777;
      // Make sure we can write into it while filling; restore mode after.
      if ((dirMode & 0o700) !== 0o700) work.chmod(tmpRel, dirMode | 0o700);
      for (const c of listChildren(n)) walk(c, tmpRel + '/' + c.name);
      // What overlayfs would show as merged: the renamed dir (upper + redirect) and dirs merged before.
      if (n === node || n.layers.length > 1) markMerged(work, tmpRel);
      else if (n.layers[0] !== 0) markXattr(work, tmpRel, ORIGIN_XATTR);
      if ((dirMode & 0o700) !== 0o700) work.chmod(tmpRel, dirMode);
      const big = src.lstatBig(srcRel);
      if (big) work.setTimes(tmpRel, big);
    }
  };
  try {
    walk(node, rootTmp);
    if (toSync.needed) syncWork(work);
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

/** Mark a redirect-renamed directory copy (see MERGED_XATTR); needs root, else left unmarked. */
function markMerged(work: Branch, rel: string): void {
  markXattr(work, rel, MERGED_XATTR);
}

/**
 * A change in or to rw directory `node` that overlayfs would make by copying it up: a copied
 * lower-only subdir of a redirect rename (ORIGIN_XATTR) becomes merged (nlink 1) now, as there.
 */
export function originCopiedUp(core: Core, node: UnionNode): void {
  if (!node.isDir || node.marked || node.layers.length !== 1 || node.layers[0] !== 0) return;
  const rw = core.rw;
  if (!rw || rw.tryGetxattr(node.rel, ORIGIN_XATTR) === undefined) return;
  markMerged(rw, node.rel);
  try {
    rw.removexattr(node.rel, ORIGIN_XATTR);
  } catch (e) {
    if (!isCode(e, 'ENODATA', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP')) throw e;
  }
  node.marked = true;
  if (core.invalidator) core.invalidator(node);
}

function markXattr(work: Branch, rel: string, name: string): void {
  try {
    work.setxattr(rel, name, Buffer.from('y'), 0);
  } catch (e) {
    if (!isCode(e, 'EPERM', 'ENOTSUP', 'EOPNOTSUPP')) throw e;
  }
}

