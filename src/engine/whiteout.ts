/**
 * Whiteouts and opaque markers on a branch, in both on-disk formats (their names: src/format), and
 * the union's name rules. Both formats are always read; `format` chooses which is written.
 */
import type { Stats } from 'node:fs';
import type { Branch } from '../branch/index.js';
import { joinRel } from '../branch/index.js';
import { FsError, isCode } from '../errors/index.js';
import type { WhiteoutFormat } from './types.js';
import { OPQ, OVL_OPAQUE, WH, isOpaqueValue, isOverlayWhiteout } from '../format/index.js';
import { S_IFCHR } from '../sys/constants.js';

/** Validate a single name. `create`: EINVAL for `.wh.` names; else ENOENT (lookup). */
export function checkName(name: string, create: boolean, syscall: string): void {
  if (name === '' || name.includes('/') || name.includes('\0')) throw new FsError(create ? 'EINVAL' : 'ENOENT', syscall, name);
  if (Buffer.byteLength(name) > 255) throw new FsError('ENAMETOOLONG', syscall, name);
  if (name.startsWith(WH)) throw new FsError(create ? 'EINVAL' : 'ENOENT', syscall, name);
  if (create && (name === '.' || name === '..')) throw new FsError('EEXIST', syscall, name);
}

/**
 * Whether dir `rel` of branch `b` is opaque (either format). `opaqueXattr`: the name of overlay's
 * mark (trusted.overlay.opaque, or user.overlay.opaque with `userxattr`).
 */
export function isOpaque(b: Branch, rel: string, opaqueXattr: string = OVL_OPAQUE): boolean {
  return b.exists(joinRel(rel, OPQ)) || hasOpaqueXattr(b, rel, opaqueXattr);
}

/** Whether dir `rel` of branch `b` carries overlayfs's opaque mark (`opaqueXattr`=y). */
export function hasOpaqueXattr(b: Branch, rel: string, opaqueXattr: string = OVL_OPAQUE): boolean {
  return isOpaqueValue(b.tryGetxattr(rel, opaqueXattr));
}

/** Is NAME in dir `dirRel` of `b` hidden by a whiteout in `b` (either format)? */
export function hasWhiteout(b: Branch, dirRel: string, name: string, st?: Stats | null): boolean {
  const s = st === undefined ? b.lstat(joinRel(dirRel, name)) : st;
  if (s && isOverlayWhiteout(s)) return true;
  return b.exists(joinRel(dirRel, WH + name));
}

export function writeWhiteout(rw: Branch, dirRel: string, name: string, format: WhiteoutFormat): void {
  if (format === 'overlay') {
    try {
      rw.mknod(joinRel(dirRel, name), S_IFCHR, 0);
      return;
    } catch (e) {
      // no right to make a device node here (before Linux 5.8 whiteouts needed CAP_MKNOD):
      // the AUFS file says the same, as fuse-overlayfs falls back
      if (!isCode(e, 'EPERM', 'EOPNOTSUPP', 'ENOTSUP')) throw e;
    }
  }
  writeAufsWhiteout(rw, dirRel, name);
}

function writeAufsWhiteout(rw: Branch, dirRel: string, name: string): void {
  try {
    rw.createEmpty(joinRel(dirRel, WH + name), 0o444);
  } catch (e) {
    // `.wh.` + a name of 252..255 bytes is too long: only the overlay format can say it.
    if (isCode(e, 'ENAMETOOLONG')) rw.mknod(joinRel(dirRel, name), S_IFCHR, 0);
    else if (!isCode(e, 'EEXIST')) throw e;
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
  if (rw.exists(joinRel(dirRel, WH + name))) {
    rw.unlink(joinRel(dirRel, WH + name));
    had = true;
  }
  return had;
}

export function setOpaque(rw: Branch, rel: string, format: WhiteoutFormat, opaqueXattr: string = OVL_OPAQUE): void {
  if (format === 'overlay') {
    try {
      rw.setxattr(rel, opaqueXattr, Buffer.from('y'), 0);
      return;
    } catch (e) {
      // trusted.* needs CAP_SYS_ADMIN, and some filesystems take no xattrs: the marker file
      if (!isCode(e, 'EPERM', 'EOPNOTSUPP', 'ENOTSUP')) throw e;
    }
  }
  writeOpaqueFile(rw, rel);
}

function writeOpaqueFile(rw: Branch, rel: string): void {
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
