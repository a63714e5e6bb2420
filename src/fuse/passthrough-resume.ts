/**
 * FUSE passthrough on a supervised mount, across a daemon crash. Backing registrations belong to
 * the FUSE connection, not to the daemon: while the supervisor holds /dev/fuse, the files the
 * kernel opened in passthrough mode go on reading and writing their backing files, and the ids
 * stay registered. What dies with the daemon is Passthrough's table (node id -> backing id, backing
 * file, open count), and a new daemon that did not know it would break the kernel's rule (all
 * passthrough opens of one inode name the same registration): a new open of a node held open would
 * register the file again and be refused (EBUSY).
 *
 * So every open counted by Passthrough is journaled (FMODE after its FOPEN, node-journal.ts) with
 * the backing id its node's opens share (-1: through us) and the backing file's dev:ino, and the
 * new daemon rebuilds the table from the handles still open: a new open of such a node shares the
 * registration (or is a conflict when the node's file changed), the last RELEASE closes it, a node
 * with no live open registers afresh.
 *
 * Crash windows, in the order of an open: registered, then FOPEN + FMODE journaled, then the
 * reply. Killed between the registration and FMODE: the id is known to nobody and stays registered
 * until the unmount (a leak, never a wrong id: the resent OPEN registers or shares a journaled one).
 * Killed after FMODE, before the reply: the handle is counted though the kernel never got it, so
 * its node's registration lives until the unmount. Release journals FCLOSE before the
 * registration is closed: killed between, the registration leaks; never is a closed id journaled
 * as live.
 */
import type { JournalState } from './node-journal.js';
import type { Passthrough } from './passthrough.js';

/**
 * Rebuild `pt` from the open files of a dead daemon's journal; the handles counted, with their node
 * ids (their release must be counted down, reopened or not).
 */
export function resumePassthrough(pt: Passthrough, state: JournalState): Map<number, number> {
  const counted = new Map<number, number>();
  for (const [fh, m] of state.modes) {
    const f = state.files.get(fh);
    if (f === undefined) continue;
    pt.adopt(f.id, m.backingId, m.file);
    counted.set(fh, f.id);
  }
  return counted;
}

/** What an open journals of its passthrough state. */
export interface ModeJournal {
  fileMode?(fh: number, backingId: number, file: string): void;
}

/** Journal handle `fh`'s passthrough state, when Passthrough counted it under `nodeid`. */
export function journalMode(j: ModeJournal | null, pt: Passthrough | null, fh: number, nodeid: number): void {
  if (j === null || pt === null || j.fileMode === undefined) return;
  const e = pt.entry(nodeid);
  if (e !== undefined) j.fileMode(fh, e.backingId, e.file);
}
