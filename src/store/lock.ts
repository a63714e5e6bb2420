/**
 * The store lock: an exclusive lock file created with O_EXCL holding the holder's pid. A lock whose
 * pid no longer runs is stale and is broken (after re-reading it, so a fresh lock is not taken).
 * Only short commit steps hold it: long work (extracting, exporting) happens in private staging dirs.
 */
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isCode } from '../errors/index.js';
import { processAlive } from '../sys/process.js';
import { storeErr } from './store-error.js';

function readHolder(file: string): number | undefined {
  try {
    const s = fs.readFileSync(file, 'utf8').trim();
    return s === '' ? undefined : Number(s);
  } catch {
    return undefined;
  }
}

function tryCreate(file: string): boolean {
  try {
    const fd = fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644);
    try {
      fs.writeSync(fd, `${process.pid}\n`);
    } finally {
      fs.closeSync(fd);
    }
    return true;
  } catch (e) {
    if (isCode(e, 'EEXIST')) return false;
    throw e;
  }
}

/** Removes the lock file if its holder is gone; true when it did. */
function breakIfStale(file: string): boolean {
  const holder = readHolder(file);
  if (holder === undefined) {
    // being written right now, or a crash between create and write: stale after a grace period
    try {
      if (Date.now() - fs.statSync(file).mtimeMs < 2000) return false;
    } catch {
      return true;
    }
  } else if (processAlive(holder)) {
    return false;
  }
  if (readHolder(file) !== holder) return false;
  try {
    fs.unlinkSync(file);
  } catch (e) {
    if (!isCode(e, 'ENOENT')) throw e;
  }
  return true;
}

export interface LockOptions {
  /** Give up after this many ms (default 60 s). */
  timeoutMs?: number;
}

/** Runs `fn` holding the store lock at `file`. */
export async function withLock<T>(file: string, fn: () => Promise<T> | T, opts: LockOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let wait = 5;
  for (;;) {
    if (tryCreate(file)) break;
    if (breakIfStale(file)) continue;
    if (Date.now() > deadline) {
      throw storeErr('EBUSY', `store is locked by pid ${readHolder(file) ?? '?'} (${file})`);
    }
    await sleep(wait);
    wait = Math.min(wait * 2, 100);
  }
  try {
    return await fn();
  } finally {
    try {
      if (readHolder(file) === process.pid) fs.unlinkSync(file);
    } catch {
      // already gone
    }
  }
}
