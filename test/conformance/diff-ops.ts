/**
 * Runs differential operations on a mount point with synchronous node:fs calls (and the native addon
 * for setxattr/utimensat) and turns each into a comparable result: a value, or the errno code.
 * After each mutation the touched paths are observed with lstat, so a difference shows at its step.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants as C,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { lsetxattr, utimensat } from '../../src/sys/native.js';
import { entryType } from '../helpers/fs-snapshot.js';
import type { Op } from './diff-model.js';

export type Result = { ok: unknown } | { err: string };

function codeOf(e: unknown): string {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  throw e;
}

function attempt(f: () => unknown): Result {
  try {
    const v = f();
    return { ok: v === undefined ? 'done' : v };
  } catch (e) {
    return { err: codeOf(e) };
  }
}

function hash(b: Buffer): string {
  return `${b.length}:${createHash('sha256').update(b).digest('hex').slice(0, 16)}`;
}

/** LAYERFS_DIFF_DIR_NLINK=0 ignores directory link counts (overlayfs says 1 for merged dirs). */
export const envDirNlink: boolean = process.env.LAYERFS_DIFF_DIR_NLINK !== '0';

/** What a user sees at `rel`: type, mode, size (non-dirs), nlink, symlink target, or the errno. */
export function observe(root: string, rel: string, dirNlink: boolean): Result {
  return attempt(() => {
    const st = lstatSync(join(root, rel));
    const type = entryType(st);
    const o: Record<string, unknown> = { type, mode: (st.mode & 0o7777).toString(8) };
    if (type !== 'dir' || dirNlink) o.nlink = st.nlink;
    if (type !== 'dir') o.size = st.size;
    if (type === 'symlink') o.target = readlinkSync(join(root, rel));
    return o;
  });
}

function withFd<T>(p: string, flags: number, f: (fd: number) => T): T {
  const fd = openSync(p, flags, 0o644);
  try {
    return f(fd);
  } finally {
    closeSync(fd);
  }
}

/** Each step of an open-file scenario is its own result, so a later step still runs after an error. */
function openScenario(root: string, path: string, data: string, middle: () => Result): Result {
  const p = join(root, path);
  let fd: number;
  try {
    fd = openSync(p, C.O_RDWR);
  } catch (e) {
    return { err: codeOf(e) };
  }
  try {
    const mid = middle();
    const wrote = attempt(() => writeSync(fd, Buffer.from(data), 0, data.length, 0));
    const st = attempt(() => {
      const s = fstatSync(fd);
      return { size: s.size, nlink: s.nlink, mode: (s.mode & 0o7777).toString(8) };
    });
    const back = attempt(() => {
      const b = Buffer.alloc(200);
      const n = readSync(fd, b, 0, b.length, 0);
      return b.subarray(0, n).toString('latin1');
    });
    return { ok: { mid, wrote, st, back } };
  } finally {
    closeSync(fd);
  }
}

/**
 * Run `op` under `root`; returns its result followed by observations of the paths it touched
 * (directory link counts only when `dirNlink`).
 */
export function runOp(root: string, op: Op, dirNlink: boolean): Result[] {
  const at = (rel: string): string => join(root, rel);
  let r: Result;
  let touched: string[];
  switch (op.op) {
    case 'create': {
      const flags = C.O_CREAT | C.O_WRONLY | (op.excl ? C.O_EXCL : 0) | (op.trunc ? C.O_TRUNC : 0);
      r = attempt(() => closeSync(openSync(at(op.path), flags, op.mode)));
      touched = [op.path];
      break;
    }
    case 'write':
      r = attempt(() => withFd(at(op.path), C.O_WRONLY, (fd) => writeSync(fd, Buffer.from(op.data), 0, op.data.length, op.offset)));
      touched = [op.path];
      break;
    case 'append':
      r = attempt(() => withFd(at(op.path), C.O_WRONLY | C.O_APPEND, (fd) => writeSync(fd, op.data)));
      touched = [op.path];
      break;
    case 'truncate':
      r = attempt(() => truncateSync(at(op.path), op.len));
      touched = [op.path];
      break;
    case 'mkdir':
      r = attempt(() => mkdirSync(at(op.path), op.mode));
      touched = [op.path];
      break;
    case 'rmdir':
      r = attempt(() => rmdirSync(at(op.path)));
      touched = [op.path];
      break;
    case 'unlink':
      r = attempt(() => unlinkSync(at(op.path)));
      touched = [op.path];
      break;
    case 'rename':
      r = attempt(() => renameSync(at(op.from), at(op.to)));
      touched = [op.from, op.to];
      break;
    case 'link':
      r = attempt(() => linkSync(at(op.from), at(op.to)));
      touched = [op.from, op.to];
      break;
    case 'symlink':
      r = attempt(() => symlinkSync(op.target, at(op.path)));
      touched = [op.path];
      break;
    case 'chmod':
      r = attempt(() => chmodSync(at(op.path), op.mode));
      touched = [op.path];
      break;
    case 'utimes':
      r = attempt(() => {
        utimensat(at(op.path), op.atime, 0, op.mtime, 0, false);
        const st = lstatSync(at(op.path));
        return st.isSymbolicLink() ? 'symlink' : [st.atimeMs, st.mtimeMs];
      });
      touched = [op.path];
      break;
    case 'setxattr':
      r = attempt(() => lsetxattr(at(op.path), op.name, Buffer.from(op.value), 0));
      touched = [op.path];
      break;
    case 'openRename':
      r = openScenario(root, op.path, op.data, () => attempt(() => renameSync(at(op.path), at(op.to))));
      touched = [op.path, op.to];
      break;
    case 'openUnlink':
      r = openScenario(root, op.path, op.data, () => attempt(() => unlinkSync(at(op.path))));
      touched = [op.path];
      break;
    case 'remount':
    case 'rotate':
      throw new Error(`${op.op} is run by the caller`);
    case 'read':
      r = attempt(() => {
        const st = lstatSync(at(op.path));
        if (st.isDirectory()) return readdirSync(at(op.path)).sort();
        if (st.isSymbolicLink()) return { link: readlinkSync(at(op.path)) };
        return hash(readFileSync(at(op.path)));
      });
      touched = [];
      break;
  }
  return [r, ...touched.map((p) => observe(root, p, dirNlink))];
}
