/**
 * Which opens may skip FLUSH (FOPEN_NOFLUSH in the OPEN/CREATE reply, kernel 5.16+).
 *
 * The kernel sends FLUSH on every close(2) of a descriptor of the file, and close waits for the
 * answer: a shell's `echo x > f` closes its file twice (the dup2 to stdout, then putting stdout
 * back), so 3000 files made by a container cost 6000 FLUSH round trips, a third of its requests
 * (measured: 6000 of 21086 requests). fuse-overlayfs has no flush handler (ENOSYS once, then the
 * kernel stops asking). Our FLUSH does something in one case only: after passthrough writes the
 * kernel never told us about, the other names of a hard-linked file (separate kernel inodes)
 * learn the new size and times (ops.ts `flush`). The engine's own flush has nothing to do (data
 * goes straight to the host fd). So every other open is answered with NOFLUSH:
 * - read-only opens;
 * - opens served through us (no passthrough): each WRITE invalidates the other names itself;
 * - passthrough write opens of a file the kernel knows by no other name. A name linked while the
 *   file is open is told at LINK, and RELEASE tells the other names once more (ops.ts `release`
 *   does that for every passthrough write open).
 * Without writeback caching (ours), NOFLUSH makes the kernel return from close at once.
 */
import { O_ACCMODE } from '../sys/constants.js';
import { Fopen } from './abi.js';

/**
 * The open_flags bit to add to an OPEN/CREATE reply: Fopen.NOFLUSH when this open's FLUSH would do
 * nothing, else 0. `passthrough`: the reply makes the kernel write the backing file itself;
 * `otherNames`: how many other node ids the kernel holds for the file's inode.
 */
export function noFlushBit(openFlags: number, passthrough: boolean, otherNames: number): number {
  if ((openFlags & O_ACCMODE) === 0 || !passthrough) return Fopen.NOFLUSH;
  return otherNames === 0 ? Fopen.NOFLUSH : 0;
}
