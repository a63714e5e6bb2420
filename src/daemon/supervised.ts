/**
 * The daemon's side of the supervisor (native/supervisor.c; README "Surviving a daemon crash"):
 * when started by it ($LAYERFS_SUPERVISOR_FD), the daemon first reads what it is handed (the mounts
 * a dead daemon served: fd + blob each, then "go"; a standby daemon waits here, already started),
 * then tells the supervisor of each mount that goes live (its fd and what a successor needs to
 * serve it again: the blob) and of each that ends.
 */
import { join } from 'node:path';
import type { InitOut } from '../fuse/codec.js';
import type { BranchState } from '../engine/types.js';
import type { MountVia } from '../fuse/mount.js';
import { runDir, type MountInfo } from '../fuse/runtime-dir.js';
import { seqRecv, seqSend } from '../sys/supervise.js';

/** What a successor needs to serve a mount again without a new INIT. */
export interface MountBlob {
  info: MountInfo;
  cwd: string;
  via: MountVia;
  init: InitOut;
  debug?: boolean;
  /** The supervisor's restart count when the mount was made (its own count is the difference). */
  restarts: number;
  /** The mount request's token (protocol.ts): a client resending it after a crash gets this mount. */
  token?: string;
  /**
   * The branch list live changes (remount add:/del:/mod:) left, with brids, inode slots and table
   * (engine/branch-state.ts); absent: none made, the list is the one `info.options` names.
   */
  branches?: BranchState;
  /** Registered just before a branch change: a daemon that died now may have made it or not. */
  changing?: boolean;
  /** The token of the last remount made: that request sent again is answered, not made twice. */
  remountToken?: string;
}

export interface HandedMount {
  id: string;
  fd: number;
  blob: MountBlob;
}

export interface Handover {
  mounts: HandedMount[];
  /** Daemon restarts so far, why the last one (`killed by SIGKILL`, `exit 1`, `upgrade`), when. */
  restarts: number;
  reason: string;
  at: string;
}

const MSG_MAX = 256 * 1024;

/** The journal file of a supervised mount. */
export function journalPath(id: string): string {
  return join(runDir(), 'mounts', `${id}.journal`);
}

/** One line for `layerfs info`: `restarts: N (last: REASON at TIME); supervised, passthrough off`. */
export function restartsLine(count: number, reason?: string, at?: string): string {
  return `restarts: ${count}${count > 0 && reason ? ` (last: ${reason} at ${at})` : ''}; supervised, passthrough off`;
}

export class SupervisorLink {
  private readonly buf = Buffer.alloc(MSG_MAX);

  private constructor(readonly sock: number) {}

  /** The link when this daemon was started by the supervisor, else null. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): SupervisorLink | null {
    const fd = Number(env.LAYERFS_SUPERVISOR_FD);
    if (!Number.isInteger(fd) || fd < 0) return null;
    delete env.LAYERFS_SUPERVISOR_FD; // not for the daemon's children
    return new SupervisorLink(fd);
  }

  /** Block until the supervisor says go; what it handed over. */
  waitForGo(): Handover {
    const mounts: HandedMount[] = [];
    for (;;) {
      const { n, fd } = seqRecv(this.sock, this.buf);
      if (n === 0) process.exit(0); // the supervisor is gone: nothing to serve for
      const kind = String.fromCharCode(this.buf[0]!);
      if (kind === 'A') {
        const nul = this.buf.indexOf(0, 1);
        const id = this.buf.toString('utf8', 1, nul);
        try {
          mounts.push({ id, fd, blob: JSON.parse(this.buf.toString('utf8', nul + 1, n)) as MountBlob });
        } catch {
          /* unreadable: the mount is left to the kernel (its fd stays with the supervisor) */
        }
      } else if (kind === 'G') {
        const [count, reason, at] = this.buf.toString('utf8', 1, n).split('\t');
        return { mounts, restarts: Number(count) || 0, reason: reason ?? '-', at: at ?? '-' };
      }
    }
  }

  private send(text: string, fd = -1): void {
    const len = this.buf.write(text, 0, 'utf8');
    if (len >= MSG_MAX) throw new Error('supervisor message too long');
    seqSend(this.sock, this.buf, len, fd);
  }

  /** A mount is live: the supervisor holds its fd from now on. */
  register(id: string, fd: number, blob: MountBlob): void {
    this.send(`A${id}\0${JSON.stringify(blob)}`, fd);
  }

  /** A mount ended: the supervisor lets go of its fd. */
  unregister(id: string): void {
    this.send(`D${id}`);
  }

  /** This daemon exits next, on purpose: start a new one (a new build) and hand it the mounts. */
  upgrade(): void {
    this.send('R');
  }
}
