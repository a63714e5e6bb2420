/**
 * Declarative directory trees for tests: build branches from a small spec and read them back raw.
 *
 *   buildTree(dir, {
 *     'a.txt': 'hello',                       // regular file (string or Buffer content)
 *     sub: { 'b.txt': 'x' },                  // directory
 *     link: { symlink: 'a.txt' },             // symlink
 *     gone: { whiteout: true },               // AUFS whiteout: writes `.wh.gone` (empty file)
 *     gone2: { whiteout: true, format: 'overlay' }, // overlay whiteout: char device 0/0 named gone2
 *     op: { opaque: true, entries: { c: 'y' } },    // dir with `.wh..wh..opq` (or overlay xattr)
 *     exe: { mode: 0o755, content: '#!/bin/sh' },   // file with a mode (and optional owner/times)
 *     d2: { dir: { }, mode: 0o700 },          // directory with a mode
 *     p: { fifo: true },                      // named pipe
 *   })
 *
 * `readTree(dir)` returns the same shape, raw: `.wh.` files appear as-is (empty string content),
 * overlay whiteouts as `{ whiteout: true, format: 'overlay' }`, fifos as `{ fifo: true }`, symlinks as
 * `{ symlink }`, files as their utf8 content, dirs as nested objects. Pass `{ skipPrivate: true }` to
 * leave out layerfs's private state (`.wh..wh.layerfs*`).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type FileSpec = { mode: number; content: string | Buffer; uid?: number; gid?: number; mtime?: Date };
export type SymlinkSpec = { symlink: string };
export type WhiteoutSpec = { whiteout: true; format?: 'aufs' | 'overlay' };
export type OpaqueSpec = { opaque: true; format?: 'aufs' | 'overlay'; entries?: Spec };
export type DirSpec = { dir: Spec; mode?: number };
export type FifoSpec = { fifo: true };
export type Entry = string | Buffer | Spec | SymlinkSpec | WhiteoutSpec | OpaqueSpec | FileSpec | DirSpec | FifoSpec;
export interface Spec {
  [name: string]: Entry;
}

export const AUFS_OPAQUE = '.wh..wh..opq';
export const PRIVATE_PREFIX = '.wh..wh.layerfs';

function isObj(e: Entry): e is Exclude<Entry, string | Buffer> {
  return typeof e === 'object' && !Buffer.isBuffer(e);
}
function has<K extends string>(e: object, k: K): e is Record<K, unknown> {
  return Object.prototype.hasOwnProperty.call(e, k);
}

/** Build `spec` under `dir` (created if missing). */
export function buildTree(dir: string, spec: Spec): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, e] of Object.entries(spec)) {
    const p = path.join(dir, name);
    if (typeof e === 'string' || Buffer.isBuffer(e)) {
      fs.writeFileSync(p, e);
    } else if (!isObj(e)) {
      throw new Error('unreachable');
    } else if (has(e, 'symlink')) {
      fs.symlinkSync((e as SymlinkSpec).symlink, p);
    } else if (has(e, 'whiteout')) {
      const w = e as WhiteoutSpec;
      if (w.format === 'overlay') makeOverlayWhiteout(p);
      else fs.writeFileSync(path.join(dir, '.wh.' + name), '', { mode: 0o444 });
    } else if (has(e, 'opaque')) {
      const o = e as OpaqueSpec;
      fs.mkdirSync(p, { recursive: true });
      if (o.format === 'overlay') setOverlayOpaque(p);
      else fs.writeFileSync(path.join(p, AUFS_OPAQUE), '', { mode: 0o444 });
      buildTree(p, o.entries ?? {});
    } else if (has(e, 'fifo')) {
      execFileSync('mkfifo', [p]);
    } else if (has(e, 'dir')) {
      const d = e as DirSpec;
      buildTree(p, d.dir);
      if (d.mode !== undefined) fs.chmodSync(p, d.mode);
    } else if (has(e, 'mode') && has(e, 'content')) {
      const f = e as FileSpec;
      fs.writeFileSync(p, f.content);
      fs.chmodSync(p, f.mode);
      if (f.uid !== undefined || f.gid !== undefined) fs.lchownSync(p, f.uid ?? 0, f.gid ?? 0);
      if (f.mtime) fs.utimesSync(p, f.mtime, f.mtime);
    } else {
      buildTree(p, e as Spec);
    }
  }
}

/** Read `dir` back as a raw spec (see module doc). */
export function readTree(dir: string, opts: { skipPrivate?: boolean } = {}): Spec {
  const out: Spec = {};
  for (const name of fs.readdirSync(dir).sort()) {
    if (opts.skipPrivate && name.startsWith(PRIVATE_PREFIX)) continue;
    const p = path.join(dir, name);
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) out[name] = { symlink: fs.readlinkSync(p) };
    else if (st.isDirectory()) out[name] = readTree(p, opts);
    else if (st.isCharacterDevice() && st.rdev === 0) out[name] = { whiteout: true, format: 'overlay' };
    else if (st.isFIFO()) out[name] = { fifo: true };
    else if (st.isFile()) out[name] = fs.readFileSync(p, 'utf8');
    else out[name] = { mode: st.mode, content: '' };
  }
  return out;
}

/** Overlay-format whiteout: char device 0/0 (root only). */
export function makeOverlayWhiteout(p: string): void {
  execFileSync('mknod', [p, 'c', '0', '0']);
}

/** Overlay-format opaque dir marker: xattr trusted.overlay.opaque=y (root only). */
export function setOverlayOpaque(p: string): void {
  execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', p]);
}

/** Value of an xattr on `p` (no symlink follow), or undefined when absent. */
export function getXattr(p: string, name: string): string | undefined {
  try {
    const out = execFileSync('getfattr', ['-h', '--only-values', '-n', name, p], { stdio: ['ignore', 'pipe', 'ignore'] });
    return out.toString('utf8');
  } catch {
    return undefined;
  }
}

/** Set an xattr on `p` (no symlink follow). */
export function setXattr(p: string, name: string, value: string): void {
  execFileSync('setfattr', ['-h', '-n', name, '-v', value, p]);
}

export interface TempDir {
  readonly dir: string;
  /** Absolute path of `rel` inside the temp dir. */
  path(...rel: string[]): string;
  cleanup(): void;
}

/** A fresh temp dir under os.tmpdir(); call cleanup() (e.g. in t.after) to remove it. */
export function mkTemp(prefix = 'layerfs-test-'): TempDir {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    path: (...rel: string[]) => path.join(dir, ...rel),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Build several branches under one temp root: `{ upper: spec, lower: spec }` -> abs paths by name. */
export function buildBranches(root: string, specs: Record<string, Spec>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const p = path.join(root, name);
    buildTree(p, spec);
    out[name] = p;
  }
  return out;
}
