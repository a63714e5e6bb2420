/**
 * The mode of a new entry when the caller's umask is left to us (FUSE with POSIX ACLs: the kernel
 * then neither applies the umask nor a default ACL, see fuse/ops.ts), as the kernel's
 * posix_acl_create does for a local filesystem and overlayfs does through its upper one:
 *
 * - the parent (in the rw branch, where the entry is made; a copy-up copied its ACLs) has a default
 *   ACL: the umask is ignored; the entry's mode is the requested mode masked by that ACL, the ACL
 *   becomes the entry's access ACL (and a directory's default ACL too). The host filesystem does
 *   exactly that when the entry is made in such a directory (it ignores the daemon's umask there),
 *   so the engine keeps the mode the host gave and must not chmod it to the requested one (that
 *   would widen the ACL mask);
 * - no default ACL: requested mode & ~umask.
 *
 * Without a umask in the context (no ACLs negotiated, the in-process API) the mode is final.
 */
import type { Branch } from '../branch/index.js';
import type { Ctx } from './types.js';

export const ACL_ACCESS = 'system.posix_acl_access';
export const ACL_DEFAULT = 'system.posix_acl_default';

export interface NewMode {
  /** The mode to create with (and to set, unless `inherit`). */
  mode: number;
  /** The parent has a default ACL: the host derives the mode; keep what it made. */
  inherit: boolean;
}

/** How to give `mode` to a new entry of the rw branch's directory `parentRel` for `ctx`. */
export function newMode(rw: Branch, parentRel: string, mode: number, ctx: Ctx): NewMode {
  if (ctx.umask === undefined) return { mode, inherit: false };
  if (rw.tryGetxattr(parentRel, ACL_DEFAULT) !== undefined) return { mode, inherit: true };
  return { mode: mode & ~(ctx.umask & 0o777), inherit: false };
}
