/**
 * Branch objects for a live union's changed list (engine/branch-set.ts): a branch whose permission
 * changes gets a new Branch on the same directory, its root fd opened again from the held one
 * (never by path), and a new branch joins from an O_PATH fd its caller opened.
 */
import { O_DIRECTORY, O_NOFOLLOW, O_PATH, RESOLVE_BENEATH } from '../sys/constants.js';
import * as native from '../sys/native.js';
import { Branch, type BranchPerm } from './branch.js';

/** The directory of `b` as a new Branch with another permission (b stays open; close it yourself). */
export function branchWithPerm(b: Branch, perm: BranchPerm, attrs: readonly string[], index: number): Branch {
  const fd = native.openat2(b.fd, '.', O_PATH | O_DIRECTORY | O_NOFOLLOW, 0, RESOLVE_BENEATH);
  return new Branch(b.root, perm, attrs, index, b.id, fd);
}

/** A new branch: `fd` (an O_PATH directory fd, owned from now on) if given, else `root` opened now. */
export function newBranch(root: string, perm: BranchPerm, attrs: readonly string[], index: number, id: number, fd?: number): Branch {
  return new Branch(root, perm, attrs, index, id, fd);
}
