/** Atomic file writes and removals inside the store (temp file + fsync + rename). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { isCode } from '../errors/index.js';

export function tmpName(): string {
  return `${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Writes `data` to `file` atomically: a temp file in the same dir, fsync, rename. */
export function writeFileAtomic(file: string, data: string | Buffer): void {
  const tmp = path.join(path.dirname(file), `.tmp-${tmpName()}`);
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** Best-effort fsync of a directory (makes renames durable). */
export function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // not supported everywhere
  }
}

/** Removes a file, ignoring ENOENT. */
export function unlinkIfExists(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (e) {
    if (!isCode(e, 'ENOENT')) throw e;
  }
}

/**
 * Removes a directory tree so that it disappears at once: renamed into `tmpRoot` first, then
 * deleted there (a crash midway leaves only staging garbage, cleaned later).
 */
export function removeTreeAtomic(dir: string, tmpRoot: string): void {
  const dead = path.join(tmpRoot, `rm-${tmpName()}`);
  try {
    fs.renameSync(dir, dead);
  } catch (e) {
    if (isCode(e, 'ENOENT')) return;
    throw e;
  }
  fs.rmSync(dead, { recursive: true, force: true });
}
