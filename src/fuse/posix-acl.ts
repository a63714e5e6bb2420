/**
 * POSIX ACLs through the mount (FUSE_POSIX_ACL), as fuse-overlayfs negotiates them unless `noacl`.
 *
 * With FUSE_POSIX_ACL the kernel keeps each inode's ACLs (it asks GETXATTR
 * system.posix_acl_access/_default once per inode, not once per `ls -l`) and enforces them in its
 * permission checks; it turns default_permissions on for the mount by itself, so it is asked for
 * only where default_permissions is on (root mounts, by default). The kernel no longer applies the
 * caller's umask then (the VFS leaves it to the filesystem) and applies no default ACL either: with
 * FUSE_DONT_MASK the request carries the mode as asked and the umask apart, and the engine makes the
 * new entry as the kernel does for a local filesystem (engine/acl.ts: the parent's default ACL,
 * else the umask). Without DONT_MASK the fuse module strips the umask itself and a default ACL
 * could never be honoured, so both are asked together and used only when both are granted.
 *
 * Not asked for with a `noacl` union or with an ownership translation (uidmapping=, squash_to_*,
 * xattr_permissions=): the ids inside stored ACLs would not be translated.
 */
import type { Ctx } from '../engine/types.js';
import { Init } from './abi.js';

/** The INIT flags to ask for when ACLs are wanted. */
export const ACL_INIT_FLAGS = Init.POSIX_ACL | Init.DONT_MASK;

/** Whether the granted INIT flags mean: the umask and default ACLs are ours to apply. */
export function aclGranted(flags: number): boolean {
  return (flags & ACL_INIT_FLAGS) === ACL_INIT_FLAGS;
}

/** The context of a create-type request: with the caller's umask when the kernel left it to us. */
export function createCtx(ctx: Ctx, umask: number, granted: boolean): Ctx {
  return granted ? { ...ctx, umask } : ctx;
}
