/**
 * Mount the C floor (native/floor-server.c, issue 14) at a mount point:
 *   node dist/bench/floor-c-serve.js [-f] OPTIONS MOUNTPOINT     (OPTIONS: lowerdir=... or tree=DIR)
 * reads the merged tree once (through the engine for lowerdir=, as floor-union.ts does; lstat for
 * tree=DIR), writes it as a flat dump and runs build/Release/layerfs-floor-server on it. Returns once
 * mounted, leaving the C server in the background (its command line names the mount point, so the
 * bench finds its pid for CPU and memory); it exits when the mount is unmounted. With -f the server
 * stays in the foreground and this process waits for it.
 */
import { spawn } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync, type BigIntStats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Union, type Attr, type UnionNode } from '../src/engine/index.js';

export const FLOOR_SERVER = fileURLToPath(new URL('../../build/Release/layerfs-floor-server', import.meta.url));

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** One entry of the dump: its parent's index (entries come parents first), name, attributes, link target. */
export interface DumpEntry {
  parent: number;
  name: string;
  attr: Attr;
  link?: string;
}

/** The dump native/floor-server.c reads (layout in its header comment). */
export function encodeDump(entries: DumpEntry[]): Buffer {
  const parts: Buffer[] = [Buffer.from('LFCFLOOR'), Buffer.alloc(4)];
  parts[1]!.writeUInt32LE(entries.length);
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const link = Buffer.from(e.link ?? '');
    if (name.length > 255 || link.length > 0xffff) throw new Error(`floor-c: name or link target too long: ${e.name}`);
    const r = Buffer.alloc(6 * 4 + 2 * 8 + 3 * 12 + 2 * 2);
    let o = 0;
    const a = e.attr;
    for (const v of [e.parent, a.mode, a.uid, a.gid, a.nlink, a.rdev]) o = r.writeUInt32LE(v >>> 0, o);
    o = r.writeBigUInt64LE(BigInt(a.size), o);
    o = r.writeBigUInt64LE(BigInt(a.ino), o);
    for (const [s, ns] of [
      [a.atimeSec, a.atimeNsec],
      [a.mtimeSec, a.mtimeNsec],
      [a.ctimeSec, a.ctimeNsec],
    ] as const) {
      o = r.writeBigInt64LE(BigInt(Math.trunc(s)), o);
      o = r.writeUInt32LE(ns >>> 0, o);
    }
    o = r.writeUInt16LE(name.length, o);
    r.writeUInt16LE(link.length, o);
    parts.push(r, name, link);
  }
  return Buffer.concat(parts);
}

function attrOf(st: BigIntStats): Attr {
  const sec = (ns: bigint): number => Number(ns / 1_000_000_000n);
  const nsec = (ns: bigint): number => Number(ns % 1_000_000_000n);
  return {
    ino: Number(st.ino),
    mode: Number(st.mode),
    nlink: Number(st.nlink),
    uid: Number(st.uid),
    gid: Number(st.gid),
    rdev: Number(st.rdev),
    size: Number(st.size),
    blocks: Number(st.blocks),
    blksize: Number(st.blksize),
    atimeSec: sec(st.atimeNs),
    atimeNsec: nsec(st.atimeNs),
    mtimeSec: sec(st.mtimeNs),
    mtimeNsec: nsec(st.mtimeNs),
    ctimeSec: sec(st.ctimeNs),
    ctimeNsec: nsec(st.ctimeNs),
  };
}

/** The entries of a plain directory tree. */
export function dirEntries(root: string): DumpEntry[] {
  const out: DumpEntry[] = [{ parent: 0, name: '', attr: attrOf(lstatSync(root, { bigint: true })) }];
  const walk = (dir: string, idx: number): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const attr = attrOf(lstatSync(p, { bigint: true }));
      const me = out.push({ parent: idx, name, attr, ...((attr.mode & S_IFMT) === S_IFLNK ? { link: readlinkSync(p) } : {}) }) - 1;
      if ((attr.mode & S_IFMT) === S_IFDIR) walk(p, me);
    }
  };
  walk(root, 0);
  return out;
}

/** The entries of the merged view of `lowerdir=...`, read through the engine. */
export function unionEntries(lowerdir: string): DumpEntry[] {
  const src = new Union(`lowerdir=${lowerdir}`);
  try {
    const out: DumpEntry[] = [{ parent: 0, name: '', attr: src.getattr(src.root) }];
    const walk = (from: UnionNode, idx: number): void => {
      for (const e of src.readdir(from)) {
        if (e.name === '.' || e.name === '..') continue;
        const got = src.lookupAttr(from, e.name);
        if (!got) continue;
        const { node, attr } = got;
        const me = out.push({ parent: idx, name: e.name, attr, ...((attr.mode & S_IFMT) === S_IFLNK ? { link: src.readlink(node) } : {}) }) - 1;
        if ((attr.mode & S_IFMT) === S_IFDIR) walk(node, me);
      }
    };
    walk(src.root, 0);
    return out;
  } finally {
    src.close();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const foreground = args[0] === '-f';
  const [options, mnt] = foreground ? args.slice(1) : args;
  if (!options || !mnt) {
    console.error('usage: floor-c-serve [-f] OPTIONS MOUNTPOINT     (OPTIONS: lowerdir=L1:L2... or tree=DIR)');
    process.exit(2);
  }
  const tree = /(?:^|,)tree=([^,]+)/.exec(options);
  const lower = /(?:^|,)lowerdir=([^,]+)/.exec(options);
  if (!tree && !lower) {
    console.error('floor-c-serve: tree=DIR or lowerdir= needed');
    process.exit(2);
  }
  const entries = tree ? dirEntries(tree[1]!) : unionEntries(lower![1]!);
  const dir = mkdtempSync(join(tmpdir(), 'floor-c-'));
  const dump = join(dir, 'tree.dump');
  writeFileSync(dump, encodeDump(entries));
  // the server reads the dump before it mounts, and forks once mounted (with -f it serves until unmounted)
  const child = spawn(FLOOR_SERVER, [...(foreground ? ['-f'] : []), dump, mnt], { stdio: 'inherit' });
  const code = await new Promise<number>((resolve) => {
    child.on('error', (e) => {
      console.error(`floor-c-serve: cannot run ${FLOOR_SERVER}: ${e.message}`);
      resolve(1);
    });
    child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 1)));
    if (foreground) process.on('SIGTERM', () => child.kill('SIGTERM'));
  });
  rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
