/**
 * inotify (native/inotify.c): an instance per fd, watches by path, and the parser of the event
 * records read(2) returns. Used by udba=notify (fuse/udba-watch.ts) to see changes made directly in
 * the branch directories. The fd is non-blocking: read it when poll(2) says it is readable.
 */
import { closeSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { FsError, codeOf, isCode } from '../errors/index.js';

interface InotifyBinding {
  inotifyInit(): number;
  inotifyAddWatch(fd: number, path: string, mask: number): number;
  inotifyRmWatch(fd: number, wd: number): number;
}

// the addon native.ts loads (require caches it: one copy)
const b = createRequire(import.meta.url)('../../../build/Release/layerfs.node') as InotifyBinding;

export const IN_ACCESS = 0x1;
export const IN_MODIFY = 0x2;
export const IN_ATTRIB = 0x4;
export const IN_CLOSE_WRITE = 0x8;
export const IN_MOVED_FROM = 0x40;
export const IN_MOVED_TO = 0x80;
export const IN_CREATE = 0x100;
export const IN_DELETE = 0x200;
export const IN_DELETE_SELF = 0x400;
export const IN_MOVE_SELF = 0x800;
export const IN_UNMOUNT = 0x2000;
export const IN_Q_OVERFLOW = 0x4000;
export const IN_IGNORED = 0x8000;
export const IN_ONLYDIR = 0x1000000;
export const IN_DONT_FOLLOW = 0x2000000;
export const IN_EXCL_UNLINK = 0x4000000;
export const IN_ISDIR = 0x40000000;

/** One event: the watch it came from, what happened (IN_* bits), the entry's name ('' for the directory itself). */
export interface InotifyEvent {
  wd: number;
  mask: number;
  cookie: number;
  name: string;
}

/** Header of an event record: wd, mask, cookie, len (4 bytes each). */
const HEADER = 16;

/** The events in buf[0..n) (whole records, as read(2) returns them). */
export function parseEvents(buf: Buffer, n: number): InotifyEvent[] {
  const out: InotifyEvent[] = [];
  for (let at = 0; at + HEADER <= n; ) {
    const len = buf.readUInt32LE(at + 12);
    let end = at + HEADER;
    const stop = end + len;
    while (end < stop && buf[end] !== 0) end++;
    out.push({ wd: buf.readInt32LE(at), mask: buf.readUInt32LE(at + 4), cookie: buf.readUInt32LE(at + 8), name: buf.toString('utf8', at + HEADER, end) });
    at = stop;
  }
  return out;
}

export class Inotify {
  readonly fd: number;
  private readonly buf = Buffer.allocUnsafe(64 * 1024);
  private closed = false;

  constructor() {
    const fd = b.inotifyInit();
    if (fd < 0) throw new FsError(codeOf(-fd), 'inotify_init1');
    this.fd = fd;
  }

  /** A watch on `path` (a directory; not followed if a symlink): its descriptor. ENOSPC: the user's watch limit. */
  add(path: string, mask: number): number {
    const wd = b.inotifyAddWatch(this.fd, path, mask);
    if (wd < 0) throw new FsError(codeOf(-wd), 'inotify_add_watch', path);
    return wd;
  }

  /** Drop a watch (quietly: the kernel drops watches of removed directories itself). */
  remove(wd: number): void {
    b.inotifyRmWatch(this.fd, wd);
  }

  /** The events queued now (empty when none: the fd is non-blocking). */
  read(): InotifyEvent[] {
    let n: number;
    try {
      n = readSync(this.fd, this.buf, 0, this.buf.length, null);
    } catch (e) {
      if (isCode(e, 'EAGAIN')) return [];
      throw e;
    }
    return parseEvents(this.buf, n);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/**
 * The inotify watch limit of this process's user: the user namespace's (user.max_inotify_watches,
 * which is fs.inotify.max_user_watches in the initial namespace); null when unreadable.
 */
export function maxUserWatches(): number | null {
  for (const f of ['/proc/sys/user/max_inotify_watches', '/proc/sys/fs/inotify/max_user_watches']) {
    try {
      const v = Number(readFileSync(f, 'utf8').trim());
      if (Number.isFinite(v)) return v;
    } catch {
      /* the next one */
    }
  }
  return null;
}
