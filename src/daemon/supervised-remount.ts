/**
 * Live branch changes of a supervised mount (remount.ts; README "Surviving a daemon crash"): the
 * supervisor's blob of the mount (supervised.ts MountBlob) must name the branch list the mount
 * has NOW, or a daemon taking over serves the one it was made with (an added layer gone, a deleted
 * one back, other branch ids and inode numbers). The mount is registered again around each change,
 * and the reply to the remount request waits for it:
 *
 * 1. before the switch: the blob as it was, marked `changing`;
 * 2. the switch (serving thread, between two requests), then the kernel told to look names up again;
 * 3. after it: the blob with the new list (engine BranchState: brids, inode slots and table) and
 *    the request's token, `changing` cleared; only then the reply. A failed change: step 3 with
 *    the old blob.
 *
 * A daemon dying between 1 and 3 leaves a blob that says a change may be half known: the kernel
 * may hold names looked up in either list. The successor serves the OLD list (the client got no
 * answer: the change is not acknowledged) and tells the kernel to look every cached name up again
 * (FUSE_NOTIFY_INC_EPOCH, supervise-serve.ts), so no dentry of the new list is trusted; the client,
 * which resends a request whose daemon died unanswered (client.ts, same token), then makes the
 * change on the successor. A death after 3 leaves the new list and the token: the resent request
 * is answered as done, not made twice (an add: made twice would fail "already a branch").
 */
import type { BranchState } from '../engine/types.js';
import type { Session } from '../fuse/session.js';
import type { MountBlob, SupervisorLink } from './supervised.js';

/** What the daemon keeps of a supervised mount: the blob the supervisor holds now. */
export interface SupervisedMount {
  session: Session;
  blob?: MountBlob;
}

export interface RemountRecord {
  /** Whether `token` is the remount this mount made last (a resent request). */
  made(token: string | undefined): boolean;
  /** Step 1: before the switch. */
  changing(): void;
  /** Step 3 after a change: the list it left (absent for a union that cannot say). */
  changed(state: BranchState | undefined, token: string | undefined): void;
  /** Step 3 after a failed change: as before. */
  unchanged(): void;
}

/**
 * The record for mount `m` (null when it is not supervised: nothing to keep). `die`: the daemon's
 * test hook, called at `remount-switched` (the switch made, the blob still says `changing`) and
 * `remount-registered` (the new list registered, no reply yet).
 */
export function remountRecord(
  link: SupervisorLink | null | undefined,
  m: SupervisedMount,
  log: (line: string) => void,
  die: (at: 'remount-switched' | 'remount-registered') => void = () => {},
): RemountRecord | null {
  if (!link || !m.blob) return null;
  const id = m.session.info.id;
  const register = (b: MountBlob): void => {
    try {
      link.register(id, m.session.fd, b);
      m.blob = b;
    } catch (e) {
      // the supervisor is gone (no takeover will come) or the blob is too big for it
      log(`${m.session.info.mountpoint}: the supervisor did not take the new branch list: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const settled = (): MountBlob => {
    const { changing: _, ...b } = m.blob!;
    return b;
  };
  return {
    made: (token) => token !== undefined && token !== '' && m.blob?.remountToken === token,
    changing: () => register({ ...m.blob!, changing: true }),
    changed: (state, token) => {
      die('remount-switched');
      register({ ...settled(), info: m.session.info, ...(state ? { branches: state } : {}), ...(token ? { remountToken: token } : {}) });
      die('remount-registered');
    },
    unchanged: () => register(settled()),
  };
}

/**
 * The branch state of a handed-over blob as a successor may open it: an inode table left in a
 * branch that is no longer one (deleted while the table stayed there) is opened by its path, and a
 * path under the mount point (the mount covered that branch) would wait on this very mount, which
 * nobody serves yet: that table is left, the successor numbers from a table in memory.
 */
export function resumableState(b: MountBlob, log: (line: string) => void): BranchState | undefined {
  const s = b.branches;
  if (!s || s.xino === null) return s;
  const mnt = b.info.mountpoint;
  const held = s.branches.some((br) => s.xino!.startsWith(br.path + '/'));
  if (held || !(s.xino === mnt || s.xino.startsWith(mnt === '/' ? '/' : mnt + '/'))) return s;
  log(`${mnt}: the inode table ${s.xino} lies under the mount point and in no branch: numbers from a table in memory`);
  return { ...s, xino: null };
}
