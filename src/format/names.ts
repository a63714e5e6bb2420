/**
 * The names layerfs writes into and reads from branches, in both on-disk formats.
 * AUFS: `.wh.NAME` (empty file) hides NAME below; a dir holding `.wh..wh..opq` hides all below.
 * overlay: a char device 0/0 named NAME hides NAME; xattr trusted.overlay.opaque=y makes a dir opaque
 * (user.overlay.opaque=y with `userxattr`, the rootless default).
 * Both are always read; the union's `whiteout` option chooses which is written (engine/whiteout.ts).
 */
import { S_IFCHR, S_IFMT } from '../sys/constants.js';

/** Prefix of an AUFS whiteout: `.wh.NAME` hides NAME. */
export const WH = '.wh.';
/** AUFS opaque marker: a dir holding it hides everything below it. */
export const OPQ = '.wh..wh..opq';
/**
 * Prefix of every AUFS meta name: the opaque marker, AUFS's own `.wh..wh.aufs`/`.plnk`/`.orph` and our
 * PRIVATE state. Never a whiteout of a name (`.wh.` names cannot be created through the union).
 */
export const WH_META = '.wh..wh.';
/** Prefix of our private names in the rw branch root (never visible). */
export const PRIVATE = '.wh..wh.layerfs';
/** overlayfs's opaque xattr on a dir; the value `y` marks it opaque. */
export const OVL_OPAQUE = 'trusted.overlay.opaque';
/** Marks a directory copied by a redirect rename: still a merged directory to its users (nlink 1). */
export const MERGED_XATTR = 'trusted.layerfs.merged';
/**
 * Marks a lower-only subdirectory inside a redirect rename's copy: overlayfs still reads it from below
 * (through the renamed parent's redirect) and makes it merged (nlink 1) at its first copy-up.
 */
export const ORIGIN_XATTR = 'trusted.layerfs.origin';

/** The private xattrs the engine writes on branch files, under one namespace. */
export interface MarkerXattrs {
  /** overlayfs's opaque mark on a dir (value `y`). */
  opaque: string;
  /** See MERGED_XATTR. */
  merged: string;
  /** See ORIGIN_XATTR. */
  origin: string;
  /** The hard-link index's count (engine/hardlinks.ts). */
  hardlink: string;
}

/** As root: `trusted.*` (only CAP_SYS_ADMIN reads or writes them; what kernel overlayfs uses). */
export const TRUSTED_MARKERS: MarkerXattrs = {
  opaque: OVL_OPAQUE,
  merged: MERGED_XATTR,
  origin: ORIGIN_XATTR,
  hardlink: 'trusted.layerfs.hardlink',
};

/**
 * Without real root (`userxattr`, as kernel overlayfs's option of that name): `user.*`, which a
 * normal user may write on files and directories they own (trusted.* is refused, EPERM).
 */
export const USER_MARKERS: MarkerXattrs = {
  opaque: 'user.overlay.opaque',
  merged: 'user.layerfs.merged',
  origin: 'user.layerfs.origin',
  hardlink: 'user.layerfs.hardlink',
};

export function markerXattrs(userxattr: boolean | undefined): MarkerXattrs {
  return userxattr ? USER_MARKERS : TRUSTED_MARKERS;
}

/**
 * The NAME that an AUFS whiteout entry `.wh.NAME` hides, or undefined when `entry` is no whiteout
 * (an ordinary name, or a `.wh..wh.*` meta name).
 */
export function whiteoutTarget(entry: string): string | undefined {
  if (!entry.startsWith(WH) || entry.startsWith(WH_META)) return undefined;
  return entry.slice(WH.length);
}

/** An overlay-format whiteout: a char device with device number 0/0. */
export function isOverlayWhiteout(st: { mode: number; rdev: number }): boolean {
  return (st.mode & S_IFMT) === S_IFCHR && st.rdev === 0;
}

/** Whether a value of OVL_OPAQUE marks its dir opaque (exactly `y`). */
export function isOpaqueValue(v: Buffer | undefined): boolean {
  return v !== undefined && v.length === 1 && v[0] === 0x79; // 'y'
}

/**
 * Xattr names layerfs keeps to itself: overlay's markers (`trusted.overlay.*`, and `user.overlay.*`
 * with `userxattr`, as kernel overlayfs hides them then) and any name with a `.layerfs.` component
 * (`trusted.layerfs.merged`, `user.layerfs.origin`, ...). Names that merely contain "layerfs"
 * (`user.layerfs-notes`) are the user's. The union hides private names, and the store never carries
 * them in a layer (import, commit, export; it passes `userxattr` true: neither namespace's markers).
 */
export function isPrivateXattr(name: string, userxattr = false): boolean {
  return name.startsWith('trusted.overlay.') || name.includes('.layerfs.') || (userxattr && name.startsWith('user.overlay.'));
}
