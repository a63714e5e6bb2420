/**
 * The names layerfs writes into and reads from branches, in both on-disk formats.
 * AUFS: `.wh.NAME` (empty file) hides NAME below; a dir holding `.wh..wh..opq` hides all below.
 * overlay: a char device 0/0 named NAME hides NAME; xattr trusted.overlay.opaque=y makes a dir opaque.
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
 * Xattr names layerfs keeps to itself: overlay's markers (`trusted.overlay.*`) and any name with a
 * `.layerfs.` component (`trusted.layerfs.merged`, `trusted.layerfs.origin`, ...). Names that merely
 * contain "layerfs" (`user.layerfs-notes`) are the user's. The union hides private names, and the
 * store never carries them in a layer (import, commit, export).
 */
export function isPrivateXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.includes('.layerfs.');
}
