/**
 * Whiteouts, opaque markers and name rules, in both on-disk formats.
 * AUFS: `.wh.NAME` (empty file) hides NAME below; a dir holding `.wh..wh..opq` hides all below.
 * overlay: a char device 0/0 named NAME; xattr trusted.overlay.opaque=y on the dir.
 * Both are always read; `format` chooses which is written.
 */
import type { Stats } from 'node:fs';
import type { Branch } from '../branch/index.js';
import { joinRel } from '../branch/index.js';
import { FsError, isCode } from '../errors/index.js';
import type { WhiteoutFormat } from './types.js';
import { S_IFCHR } from './node.js';

export const WH = '.wh.';
export const OPQ = '.wh..wh..opq';
/**
 * Prefix of every AUFS meta name: the opaque marker, AUFS's own `.wh..wh.aufs`/`.plnk`/`.orph` and our
 * PRIVATE state. Never a whiteout of a name (`.wh.` names cannot be created through the union).
 */
export const WH_META = '.wh..wh.';
/** Prefix of our private names in the rw branch root (never visible). */
export const PRIVATE = '.wh..wh.layerfs';
export const OVL_OPAQUE = 'trusted.overlay.opaque';
/** Marks a directory copied by a redirect rename: still a merged directory to its users (nlink 1). */
export const MERGED_XATTR = 'trusted.layerfs.merged';
/**
 * Marks a lower-only subdirectory inside a redirect rename's copy: overlayfs still reads it from below
 * (through the renamed parent's redirect) and makes it merged (nlink 1) at its first copy-up.
 */
export const ORIGIN_XATTR = 'trusted.layerfs.origin';

/** Validate a single name. `create`: EINVAL for `.wh.` names; else ENOENT (lookup). */
export function checkName(name: string, create: boolean, syscall: string): void {
  if (name === '' || name.includes('/') || name.includes('\0')) throw new FsError(create ? 'EINVAL' : 'ENOENT', syscall, name);
  if (Buffer.byteLength(name) > 255) throw new FsError('ENAMETOOLONG', syscall, name);
  if (name.startsWith(WH)) throw new FsError(create ? 'EINVAL' : 'ENOENT', syscall, name);
  if (create && (name === '.' || name === '..')) throw new FsError('EEXIST', syscall, name);
}

/**
 * The NAME that an AUFS whiteout entry `.wh.NAME` hides, or undefined when `entry` is no whiteout
 * (an ordinary name, or a `.wh..wh.*` meta name).
 */
export function whiteoutTarget(entry: string): string | undefined {
  if (!entry.startsWith(WH) || entry.startsWith(WH_META)) return undefined;
  return entry.slice(WH.length);
}

export function isOverlayWhiteout(st: { mode: number; rdev: number }): boolean {
  return (st.mode & 0o170000) === S_IFCHR && st.rdev === 0;
}

/** Whether dir `rel` of branch `b` is opaque (either format). */
export function isOpaque(b: Branch, rel: string): boolean {
  return b.lstat(joinRel(rel, OPQ)) !== null || hasOpaqueXattr(b, rel);
}

/** Whether dir `rel` of branch `b` carries overlayfs's opaque mark (trusted.overlay.opaque=y). */
export function hasOpaqueXattr(b: Branch, rel: string): boolean {
  const v = b.tryGetxattr(rel, OVL_OPAQUE);
  return v !== undefined && v.length === 1 && v[0] === 0x79; // 'y'
}

/** Is NAME in dir `dirRel` of `b` hidden by a whiteout in `b` (either format)? */
export function hasWhiteout(b: Branch, dirRel: string, name: string, st?: Stats | null): boolean {
  const s = st === undefined ? b.lstat(joinRel(dirRel, name)) : st;
  if (s && isOverlayWhiteout(s)) return true;
  return b.lstat(joinRel(dirRel, WH + name)) !== null;
}

export function writeWhiteout(rw: Branch, dirRel: string, name: string, format: WhiteoutFormat): void {
  if (format === 'overlay') {
    rw.mknod(joinRel(dirRel, name), S_IFCHR, 0);
  } else {
    try {
      rw.createEmpty(joinRel(dirRel, WH + name), 0o444);
    } catch (e) {
      // `.wh.` + a name of 252..255 bytes is too long: only the overlay format can say it.
      if (isCode(e, 'ENAMETOOLONG')) rw.mknod(joinRel(dirRel, name), S_IFCHR, 0);
      else if (!isCode(e, 'EEXIST')) throw e;
    }
  }
}

/** Remove any whiteout for NAME in `rw`'s dir. Returns whether one was there. */
export function removeWhiteout(
  rw: Branch,
  dirRel: string,
  name: string,
  known?: { nameSeen: boolean; overlayWh: boolean; whSeen: boolean; aufsWh: boolean },
): boolean {
  let had = false;
  // `known`: what the lookup just before saw in the rw branch (namei RwProbe): no second lstat
  const st = known?.nameSeen && !known.overlayWh ? null : rw.lstat(joinRel(dirRel, name));
  if (st && isOverlayWhiteout(st)) {
    rw.unlink(joinRel(dirRel, name));
    had = true;
  }
  if (known?.whSeen && !known.aufsWh) return had;
  if (rw.lstat(joinRel(dirRel, WH + name)) !== null) {
    rw.unlink(joinRel(dirRel, WH + name));
    had = true;
  }
  return had;
}

export function setOpaque(rw: Branch, rel: string, format: WhiteoutFormat): void {
  if (format === 'overlay') rw.setxattr(rel, OVL_OPAQUE, Buffer.from('y'), 0);
  else {
    // The marker is a file inside the dir; adding it must not change the dir's times, as
    // overlayfs's xattr does not (a renamed lower dir keeps its mtime).
    const before = rw.lstatBig(rel);
    try {
      rw.createEmpty(joinRel(rel, OPQ), 0o444);
    } catch (e) {
      if (!isCode(e, 'EEXIST')) throw e;
      return;
    }
    if (before) rw.setTimes(rel, before);
  }
}

/** Remove every whiteout and opaque marker inside `rw`'s dir `rel` (before rmdir). */
export function clearMarkers(rw: Branch, rel: string): void {
  for (const d of rw.readdir(rel)) {
    const p = joinRel(rel, d.name);
    if (d.name.startsWith(WH)) rw.unlink(p);
    else if (d.isCharacterDevice()) {
      const st = rw.lstat(p);
      if (st && isOverlayWhiteout(st)) rw.unlink(p);
    }
  }
}

/**
 * Xattr names layerfs keeps to itself: overlay's markers (`trusted.overlay.*`) and any name with a
 * `.layerfs.` component (`trusted.layerfs.merged`, `trusted.layerfs.origin`, ...). Names that merely
 * contain "layerfs" (`user.layerfs-notes`) are the user's. The union hides private names, and the
 * store never carries them in a layer (import, commit, export).
 */
export function isPrivateXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.includes('.layerfs.');
}
