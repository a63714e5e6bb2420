/**
 * FUSE passthrough (kernel 6.9+, protocol 7.40): the kernel reads and writes an open regular file
 * straight from its backing file, without a request to us per read or write.
 *
 * The kernel's rules shape this class:
 * - A backing file is registered on /dev/fuse with FUSE_DEV_IOC_BACKING_OPEN (CAP_SYS_ADMIN) and
 *   named by the id it returns in the OPEN/CREATE reply.
 * - All passthrough opens of one kernel inode (one node id) at a time must name the same backing
 *   registration; a second one is refused (EBUSY), and so is a non-passthrough open while any
 *   passthrough open is live (EINVAL), and a passthrough open while a cached open is live (ETXTBSY).
 *
 * So registrations are kept per node id and shared by its opens while any is open; the id is closed
 * when the last of them is released. A union adds one case a plain passthrough server never meets:
 * the file behind a node can change while it is open, when a write open copies a lower file up. The
 * read-only opens keep the lower file (as kernel overlayfs before 4.19 did), and the new open must
 * not land on the same kernel inode. That open is answered ESTALE after the node id is retired
 * (`conflict`): the VFS then repeats the path walk with LOOKUP_REVAL, our LOOKUP hands out a new
 * node id for the same engine node, the kernel makes a new inode for it and the open succeeds there.
 */
import { fstatSync } from 'node:fs';
import { ioctl } from '../sys/index.js';
import { toFsError } from '../errors/index.js';
import { FUSE_DEV_IOC_BACKING_CLOSE, FUSE_DEV_IOC_BACKING_OPEN, Fopen } from './abi.js';

/** How one open is answered: through us (`cached`) or by the kernel from `backingId`. */
export type OpenMode = { passthrough: false } | { passthrough: true; backingId: number };

interface NodeIo {
  /** Registration shared by the node id's passthrough opens; -1 for cached opens. */
  backingId: number;
  /** The backing file (st_dev:st_ino) the registration names. */
  file: string;
  opens: number;
}

/** Registers backing files on /dev/fuse; a seam for tests. */
export interface BackingDevice {
  /** Register `fd` as a backing file; its id. Throws FsError. */
  open(fd: number): number;
  close(id: number): void;
}

export function fuseBackingDevice(devFd: number): BackingDevice {
  const map = Buffer.alloc(16); // struct fuse_backing_map { i32 fd; u32 flags; u64 padding; }
  const idBuf = Buffer.alloc(4);
  return {
    open(fd) {
      map.writeInt32LE(fd, 0);
      return ioctl(devFd, FUSE_DEV_IOC_BACKING_OPEN, map);
    },
    close(id) {
      idBuf.writeUInt32LE(id, 0);
      ioctl(devFd, FUSE_DEV_IOC_BACKING_CLOSE, idBuf);
    },
  };
}

/** Errors of BACKING_OPEN that mean "never on this mount" rather than "not for this file". */
const UNSUPPORTED = new Set(['EPERM', 'ENOTTY', 'EOPNOTSUPP', 'ENOSYS']);

export class Passthrough {
  private readonly byNode = new Map<number, NodeIo>();
  /** False once the kernel has shown it cannot (old kernel, no CAP_SYS_ADMIN). */
  private usable = true;
  /** Opens served by passthrough / through us, for traces and tests. */
  readonly counts = { passthrough: 0, cached: 0, conflicts: 0, fallbacks: 0 };

  constructor(private readonly dev: BackingDevice) {}

  /**
   * Mode for a new open of node id `nodeid` whose engine handle reads/writes `fd` (a regular
   * file), or 'conflict' when this node id already serves another file (see the module comment).
   * Counts the open; `release(nodeid)` undoes it.
   */
  open(nodeid: number, fd: number): OpenMode | 'conflict' {
    const st = fstatSync(fd);
    const file = `${st.dev}:${st.ino}`;
    const cur = this.byNode.get(nodeid);
    if (cur) {
      if (cur.backingId < 0) {
        // cached opens are live: passthrough would be refused; stay cached (same file or not,
        // reads go through the handle's own fd)
        cur.opens++;
        this.counts.cached++;
        return { passthrough: false };
      }
      if (cur.file !== file) {
        this.counts.conflicts++;
        return 'conflict';
      }
      cur.opens++;
      this.counts.passthrough++;
      return { passthrough: true, backingId: cur.backingId };
    }
    let backingId = -1;
    if (this.usable) {
      try {
        backingId = this.dev.open(fd);
      } catch (e) {
        // ELOOP: the backing file's filesystem is itself stacked too deep; EBADF/others: serve this
        // open through us and keep trying for other files
        if (UNSUPPORTED.has(toFsError(e).code)) this.usable = false;
        this.counts.fallbacks++;
      }
    }
    this.byNode.set(nodeid, { backingId, file, opens: 1 });
    if (backingId < 0) {
      this.counts.cached++;
      return { passthrough: false };
    }
    this.counts.passthrough++;
    return { passthrough: true, backingId };
  }

  /** One open of `nodeid` was released. */
  release(nodeid: number): void {
    const cur = this.byNode.get(nodeid);
    if (!cur) return;
    if (--cur.opens > 0) return;
    this.byNode.delete(nodeid);
    if (cur.backingId >= 0) {
      try {
        this.dev.close(cur.backingId);
      } catch {
        // the connection is going away
      }
    }
  }

  /** The backing id (-1: through us) and backing file dev:ino that node id's live opens share. */
  entry(nodeid: number): { backingId: number; file: string } | undefined {
    const cur = this.byNode.get(nodeid);
    return cur && { backingId: cur.backingId, file: cur.file };
  }

  /**
   * After a daemon restart: one live open of `nodeid` the dead daemon answered with `backingId`
   * (-1: through us) for the backing file `file` (passthrough-resume.ts). The kernel still holds
   * the registration (it belongs to the connection): later opens share it, the last release closes it.
   */
  adopt(nodeid: number, backingId: number, file: string): void {
    const cur = this.byNode.get(nodeid);
    if (cur) cur.opens++;
    else this.byNode.set(nodeid, { backingId, file, opens: 1 });
  }

  /** Node ids with live opens (tests). */
  get liveNodes(): number {
    return this.byNode.size;
  }
}

/** What an OPEN/CREATE reply says of how the file is served: open_flags and backing id. */
export interface OpenReplyMode {
  openFlags: number;
  backingId: number;
}

/** An open served by the daemon: no open_flags, no backing file. */
export const THROUGH_US: OpenReplyMode = { openFlags: 0, backingId: 0 };

/**
 * open_flags and backing id for a new open of node id `nodeid` reading/writing `fd` (counted
 * until `release`), or 'conflict' when that id serves another file (see the module comment).
 * Without passthrough (`pt` null) or an fd, every open goes through us.
 */
export function openMode(pt: Passthrough | null, nodeid: number, fd: number): OpenReplyMode | 'conflict' {
  if (!pt || fd < 0) return THROUGH_US;
  const m = pt.open(nodeid, fd);
  if (m === 'conflict') return m;
  return m.passthrough ? { openFlags: Fopen.PASSTHROUGH, backingId: m.backingId } : THROUGH_US;
}
