/**
 * The main thread's half of udba=notify: it writes the notifications a serving thread's watcher
 * asks for (udba-watch.ts explains why that thread must not write them itself). A notification
 * for something the kernel does not hold (ENOENT) or after the unmount (ENODEV) is dropped quietly.
 */
import { writeSync } from 'node:fs';
import { encodeNotifyInvalEntry, encodeNotifyInvalInode } from './dirent-codec.js';
import type { Notice } from './udba-watch.js';

const buf = Buffer.alloc(1024);

/** Write each notice to /dev/fuse `fd`: [1, nodeid, pages] -> NOTIFY_INVAL_INODE, [2, parent, name] -> NOTIFY_INVAL_ENTRY. */
export function writeNotices(fd: number, items: readonly Notice[]): void {
  for (const it of items) {
    const len = it[0] === 1 ? encodeNotifyInvalInode(buf, it[1], it[2] ? 0 : -1, 0) : encodeNotifyInvalEntry(buf, it[1], it[2]);
    try {
      writeSync(fd, buf, 0, len);
    } catch {
      /* not cached, or unmounted meanwhile */
    }
  }
}
