/**
 * The differential operations of test/conformance (diff-model's Op) run through the in-process
 * UnionFS instead of node:fs on a mount, with the same result shapes as diff-ops' runOp and
 * observe, and a snapshot in fs-snapshot's format; so one result can be compared with the other.
 */
import { createHash } from 'node:crypto';
import { constants as C } from 'node:fs';
import type { Op } from '../conformance/diff-model.js';
import type { Result } from '../conformance/diff-ops.js';
import type { EntryType, Snapshot, SnapshotEntry } from '../helpers/fs-snapshot.js';
import type { Stats, UnionFS } from '../../src/api/index.js';

function entryType(st: Stats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

function codeOf(e: unknown): string {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  throw e;
}

async function attempt(f: () => Promise<unknown>): Promise<Result> {
  try {
    const v = await f();
    return { ok: v === undefined ? 'done' : v };
  } catch (e) {
    return { err: codeOf(e) };
  }
}

function hash(b: Buffer): string {
  return `${b.length}:${createHash('sha256').update(b).digest('hex').slice(0, 16)}`;
}

const abs = (rel: string): string => `/${rel}`;

export async function observeApi(ufs: UnionFS, rel: string, dirNlink: boolean): Promise<Result> {
  return attempt(async () => {
    const st = await ufs.lstat(abs(rel));
    const type = entryType(st);
    const o: Record<string, unknown> = { type, mode: (st.mode & 0o7777).toString(8) };
    if (type !== 'dir' || dirNlink) o.nlink = st.nlink;
    if (type !== 'dir') o.size = st.size;
    if (type === 'symlink') o.target = await ufs.readlink(abs(rel));
    return o;
  });
}

async function withHandle<T>(ufs: UnionFS, rel: string, flags: number, f: (h: Awaited<ReturnType<UnionFS['open']>>) => Promise<T>): Promise<T> {
  const h = await ufs.open(abs(rel), flags, 0o644);
  try {
    return await f(h);
  } finally {
    await h.close();
  }
}

async function openScenario(ufs: UnionFS, rel: string, data: string, middle: () => Promise<Result>): Promise<Result> {
  let h;
  try {
    h = await ufs.open(abs(rel), C.O_RDWR);
  } catch (e) {
    return { err: codeOf(e) };
  }
  try {
    const mid = await middle();
    const wrote = await attempt(async () => (await h.write(Buffer.from(data), 0, data.length, 0)).bytesWritten);
    const st = await attempt(async () => {
      const s = await h.stat();
      return { size: s.size, nlink: s.nlink, mode: (s.mode & 0o7777).toString(8) };
    });
    const back = await attempt(async () => {
      const b = Buffer.alloc(200);
      const { bytesRead } = await h.read(b, 0, b.length, 0);
      return b.subarray(0, bytesRead).toString('latin1');
    });
    return { ok: { mid, wrote, st, back } };
  } finally {
    await h.close();
  }
}

/** `op` through the API; its result followed by observations of the paths it touched. */
export async function runOpApi(ufs: UnionFS, op: Op, dirNlink: boolean): Promise<Result[]> {
  let r: Result;
  let touched: string[];
  switch (op.op) {
    case 'create': {
      const flags = C.O_CREAT | C.O_WRONLY | (op.excl ? C.O_EXCL : 0) | (op.trunc ? C.O_TRUNC : 0);
      r = await attempt(async () => {
        await (await ufs.open(abs(op.path), flags, op.mode)).close();
      });
      touched = [op.path];
      break;
    }
    case 'write':
      r = await attempt(() => withHandle(ufs, op.path, C.O_WRONLY, async (h) => (await h.write(Buffer.from(op.data), 0, op.data.length, op.offset)).bytesWritten));
      touched = [op.path];
      break;
    case 'append':
      r = await attempt(() => withHandle(ufs, op.path, C.O_WRONLY | C.O_APPEND, async (h) => (await h.write(op.data)).bytesWritten));
      touched = [op.path];
      break;
    case 'truncate':
      r = await attempt(() => ufs.truncate(abs(op.path), op.len));
      touched = [op.path];
      break;
    case 'mkdir':
      r = await attempt(() => ufs.mkdir(abs(op.path), op.mode));
      touched = [op.path];
      break;
    case 'rmdir':
      r = await attempt(() => ufs.rmdir(abs(op.path)));
      touched = [op.path];
      break;
    case 'unlink':
      r = await attempt(() => ufs.unlink(abs(op.path)));
      touched = [op.path];
      break;
    case 'rename':
      r = await attempt(() => ufs.rename(abs(op.from), abs(op.to)));
      touched = [op.from, op.to];
      break;
    case 'link':
      r = await attempt(() => ufs.link(abs(op.from), abs(op.to)));
      touched = [op.from, op.to];
      break;
    case 'symlink':
      r = await attempt(() => ufs.symlink(op.target, abs(op.path)));
      touched = [op.path];
      break;
    case 'chmod':
      r = await attempt(() => ufs.chmod(abs(op.path), op.mode));
      touched = [op.path];
      break;
    case 'utimes':
      r = await attempt(async () => {
        await ufs.utimes(abs(op.path), op.atime, op.mtime);
        const st = await ufs.lstat(abs(op.path));
        return st.isSymbolicLink() ? 'symlink' : [st.atimeMs, st.mtimeMs];
      });
      touched = [op.path];
      break;
    case 'setxattr':
      throw new Error('setxattr has no node:fs API; filter it out');
    case 'remount':
    case 'rotate':
      throw new Error(`${op.op} is run by the caller`);
    case 'openRename':
      r = await openScenario(ufs, op.path, op.data, () => attempt(() => ufs.rename(abs(op.path), abs(op.to))));
      touched = [op.path, op.to];
      break;
    case 'openUnlink':
      r = await openScenario(ufs, op.path, op.data, () => attempt(() => ufs.unlink(abs(op.path))));
      touched = [op.path];
      break;
    case 'read':
      r = await attempt(async () => {
        const st = await ufs.lstat(abs(op.path));
        if (st.isDirectory()) return ((await ufs.readdir(abs(op.path))) as string[]).sort();
        if (st.isSymbolicLink()) return { link: await ufs.readlink(abs(op.path)) };
        return hash((await ufs.readFile(abs(op.path))) as Buffer);
      });
      touched = [];
      break;
  }
  const obs: Result[] = [];
  for (const p of touched) obs.push(await observeApi(ufs, p, dirNlink));
  return [r, ...obs];
}

/** fs-snapshot's `snapshot(root, { xattrs: false, dirNlink })`, read through the API. */
export async function snapshotApi(ufs: UnionFS, dirNlink: boolean): Promise<Snapshot> {
  const out: Snapshot = new Map();
  const visit = async (rel: string): Promise<void> => {
    const st = await ufs.lstat(abs(rel));
    const type = entryType(st);
    const e: SnapshotEntry = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, nlink: st.nlink };
    if (type === 'dir' && !dirNlink) e.nlink = 0;
    if (type === 'file') {
      e.size = st.size;
      e.sha256 = createHash('sha256').update((await ufs.readFile(abs(rel))) as Buffer).digest('hex');
    } else if (type === 'symlink') {
      e.size = st.size;
      e.target = String(await ufs.readlink(abs(rel)));
    } else if (type === 'chardev' || type === 'blockdev') {
      e.rdev = st.rdev;
    }
    out.set(rel, e);
    if (type === 'dir') {
      for (const name of ((await ufs.readdir(abs(rel))) as string[]).sort()) await visit(rel === '' ? name : `${rel}/${name}`);
    }
  };
  await visit('');
  return out;
}
