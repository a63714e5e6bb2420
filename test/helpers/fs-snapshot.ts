/**
 * Snapshot of a directory tree as a user sees it (names, types, modes, sizes, content hashes, symlink
 * targets, link counts, owners, user.* xattrs), and a comparison that lists every difference.
 * Used to compare a layerfs mount with a kernel overlayfs mount of the same layers.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { lgetxattr, llistxattr } from '../../src/sys/native.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket';

export interface SnapshotEntry {
  type: EntryType;
  /** Permission bits and suid/sgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  /** Regular files and symlinks only (directory sizes are filesystem-specific). */
  size?: number;
  /** sha256 of a regular file's content. */
  sha256?: string;
  /** Symlink target. */
  target?: string;
  /** Device number of a device node. */
  rdev?: number;
  /** user.* xattrs, name -> hex value. */
  xattrs?: Record<string, string>;
  /** mtime in ms (only with `times`). */
  mtimeMs?: number;
}

/** Relative path ('' is the root) -> entry. */
export type Snapshot = Map<string, SnapshotEntry>;

export interface SnapshotOptions {
  /** Record user.* xattrs (default true). */
  xattrs?: boolean;
  /** Record mtimes (default false: two mounts never share wall-clock times). */
  times?: boolean;
  /** Record directory link counts (default true). */
  dirNlink?: boolean;
  /** Names to leave out at the root (e.g. a work dir). */
  ignoreRoot?: string[];
}

export function entryType(st: Stats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

function userXattrs(path: string): Record<string, string> | undefined {
  let names: string[];
  try {
    names = llistxattr(path).filter((n) => n.startsWith('user.')).sort();
  } catch {
    return undefined;
  }
  if (names.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const n of names) out[n] = lgetxattr(path, n).toString('hex');
  return out;
}

export function snapshot(root: string, opts: SnapshotOptions = {}): Snapshot {
  const out: Snapshot = new Map();
  const withXattrs = opts.xattrs ?? true;
  const ignore = new Set(opts.ignoreRoot ?? []);
  const visit = (rel: string): void => {
    const abs = rel === '' ? root : join(root, rel);
    const st = lstatSync(abs);
    const type = entryType(st);
    const e: SnapshotEntry = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, nlink: st.nlink };
    if (type === 'dir' && opts.dirNlink === false) e.nlink = 0;
    if (type === 'file') {
      e.size = st.size;
      e.sha256 = createHash('sha256').update(readFileSync(abs)).digest('hex');
    } else if (type === 'symlink') {
      e.size = st.size;
      e.target = readlinkSync(abs);
    } else if (type === 'chardev' || type === 'blockdev') {
      e.rdev = st.rdev;
    }
    if (withXattrs && type !== 'symlink') {
      const x = userXattrs(abs);
      if (x) e.xattrs = x;
    }
    if (opts.times && type !== 'symlink') e.mtimeMs = st.mtimeMs;
    out.set(rel, e);
    if (type === 'dir') {
      for (const name of readdirSync(abs).sort()) {
        if (rel === '' && ignore.has(name)) continue;
        visit(rel === '' ? name : `${rel}/${name}`);
      }
    }
  };
  visit('');
  return out;
}

function show(e: SnapshotEntry | undefined): string {
  if (!e) return 'missing';
  const parts: string[] = [e.type, `mode=${e.mode.toString(8)}`, `nlink=${e.nlink}`, `uid=${e.uid}`, `gid=${e.gid}`];
  if (e.size !== undefined) parts.push(`size=${e.size}`);
  if (e.sha256) parts.push(`sha=${e.sha256.slice(0, 12)}`);
  if (e.target !== undefined) parts.push(`-> ${e.target}`);
  if (e.rdev !== undefined) parts.push(`rdev=${e.rdev}`);
  if (e.xattrs) parts.push(`xattrs=${JSON.stringify(e.xattrs)}`);
  if (e.mtimeMs !== undefined) parts.push(`mtime=${e.mtimeMs}`);
  return parts.join(' ');
}

/** Every difference as one line `path: expected | actual`; empty when the trees are equal. */
export function diffSnapshots(expected: Snapshot, actual: Snapshot): string[] {
  const out: string[] = [];
  const paths = [...new Set([...expected.keys(), ...actual.keys()])].sort();
  for (const p of paths) {
    const a = expected.get(p);
    const b = actual.get(p);
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`/${p}: expected ${show(a)} | got ${show(b)}`);
  }
  return out;
}

/** Snapshot as a plain sorted object (for assert.deepStrictEqual and JSON). */
export function snapshotObject(s: Snapshot): Record<string, SnapshotEntry> {
  const o: Record<string, SnapshotEntry> = {};
  for (const k of [...s.keys()].sort()) o[k] = s.get(k)!;
  return o;
}
