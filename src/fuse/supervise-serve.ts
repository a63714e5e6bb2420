/**
 * A serving thread's side of a supervised mount (docs: README "Surviving a daemon crash"): the
 * node journal kept while serving (node-journal.ts), and, for a mount taken over from a daemon that
 * died, its resumption: INIT state and journal restored into FuseOps (restore.ts), then
 * FUSE_NOTIFY_RESEND so the kernel sends again what the dead daemon read and did not answer, the
 * one it was handling served by replay.ts's rules.
 *
 * The requests a dead daemon may have done are carried in the new daemon's journal until their
 * resend has been served: a daemon killed again before that leaves them to the next one (else a
 * done append would be appended twice, a done create answer EEXIST, a done rename ENOENT).
 */
import { NotifyCode, Size } from './abi.js';
import { encodeOutHeader, type InHeader, type InitOut } from './codec.js';
import type { FuseOps } from './ops.js';
import { NodeJournal } from './node-journal.js';
import { serveReplayed, uniqueOf } from './replay.js';
import { NAMING_OPS } from './restore.js';
import { encodeNotifyIncEpoch } from './branch-change.js';

/** Protocol minor that has FUSE_NOTIFY_RESEND (Linux 6.9). */
export const RESEND_MINOR = 40;

export interface Supervision {
  /** The journal file (in the runtime dir). */
  journal: string;
  /**
   * Taking over from a dead daemon: the INIT it negotiated; `changing`: it died during a live
   * branch change, so the kernel may hold names of the old list or of the new one.
   */
  resume?: { init: InitOut; changing?: boolean };
  /** Tests: act as if the kernel had no FUSE_NOTIFY_RESEND. */
  pretendNoResend?: boolean;
}

export interface SupervisedServing {
  dispatch(hd: InHeader, b: Buffer, end: number, out: Buffer): number;
  /** After INIT: whether the mount can be supervised (else the journal is dropped). */
  initDone(init: InitOut): boolean;
  /** Resumed: ask the kernel to send the unanswered requests again. */
  resend(): void;
  close(remove: boolean): void;
}

type Ops = FuseOps<never, never, never>;

export function superviseServing(opsIn: unknown, sv: Supervision, notify: (len: number) => void, buf: Buffer): SupervisedServing {
  const ops = opsIn as Ops;
  let journal: NodeJournal | null;
  /** Inherited requests not yet served again: unique -> opcode. */
  const inflight = new Map<number, number>();
  if (sv.resume) {
    const r = NodeJournal.resume(sv.journal);
    journal = r.journal;
    ops.journal = journal;
    ops.resume(sv.resume.init, r.state);
    for (const f of r.state.inflight) inflight.set(f.unique, f.opcode);
  } else {
    journal = NodeJournal.create(sv.journal);
    ops.journal = journal;
  }
  const close = (remove: boolean): void => {
    journal?.close(remove);
    journal = null;
    ops.journal = null;
  };
  return {
    dispatch(hd, b, end, out) {
      const j = journal;
      if (j === null) return ops.dispatch(hd, b, end, out);
      const { unique, resent } = uniqueOf(b);
      // stays in the slot until the next request: its reply is written after we return
      j.begin(unique, hd.opcode);
      if (NAMING_OPS.has(hd.opcode)) ops.settle();
      if (!resent || inflight.get(unique) !== hd.opcode) return ops.dispatch(hd, b, end, out);
      const r = serveReplayed(ops, hd, b, end, out);
      inflight.delete(unique);
      j.served(unique);
      return r;
    },
    initDone(init) {
      if (init.minor >= RESEND_MINOR && !sv.pretendNoResend) return true;
      close(true);
      return false;
    },
    resend() {
      if (!sv.resume) return;
      // a branch change was under way: every cached name is looked up again (branch-change.ts)
      if (sv.resume.changing) {
        try {
          notify(encodeNotifyIncEpoch(buf));
        } catch {
          /* no INC_EPOCH (Linux < 6.16): names the kernel cached show the list after entry_timeout */
        }
      }
      encodeOutHeader(buf, Size.OUT_HEADER, NotifyCode.RESEND, 0);
      notify(Size.OUT_HEADER);
    },
    close,
  };
}
