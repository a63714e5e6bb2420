/**
 * Mount floor-c (native/floor-server.c, issue 14) at a mount point:
 *   node dist/bench/floor-c-serve.js OPTIONS MOUNTPOINT     (OPTIONS: lowerdir=L1:L2... or tree=DIR)
 * reads the merged tree once through the engine (as floor-union.ts does), writes it to a flat dump
 * file and runs the C server on it, which mounts, returns once mounted and keeps serving in a
 * detached process (its command line names the mount point, so the bench finds its pid for CPU
 * and memory) until the mount is unmounted. Entry and attr timeouts are layerfs's defaults.
 * With `io` among the options (floor-c-io): the server's I/O mode over the lower dirs, and the
 * upperdir=/workdir= given (the upper empty): LOOKUP stats the backing file, SETATTR of a lower
 * file copies it up durably, as kernel overlayfs does.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Union, type UnionNode } from '../src/engine/index.js';
import type { Attr } from '../src/engine/types.js';
import { DEFAULT_CACHE_TIMEOUT } from '../src/fuse/session.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
/** u64 fields per record before the name and the link target (native/floor-server.c). */
const FIELDS = 17;

/** The server binary built by binding.gyp. */
export const FLOOR_SERVER = fileURLToPath(new URL('../../build/Release/layerfs-floor-server', import.meta.url));

/** `branch`: the index of the topmost lower dir holding the entry (in the lowerdir= order). */
function record(attr: Attr, parent: number, name: string, link: string, branch: number): Buffer {
  const nb = Buffer.from(name);
  const lb = Buffer.from(link);
  const b = Buffer.alloc(FIELDS * 8 + nb.length + lb.length);
  const v = [attr.ino, parent, attr.mode, attr.uid, attr.gid, attr.nlink, attr.size, attr.rdev, attr.atimeSec, attr.atimeNsec, attr.mtimeSec, attr.mtimeNsec, attr.ctimeSec, attr.ctimeNsec, nb.length, lb.length, branch];
  v.forEach((x, i) => b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(x)), i * 8));
  nb.copy(b, FIELDS * 8);
  lb.copy(b, FIELDS * 8 + nb.length);
  return b;
}

/** The merged view of `lowerdir=...` as dump records, parents before children (record 0: the root). */
export function dumpUnion(lowerdir: string): Buffer {
  const src = new Union(`lowerdir=${lowerdir}`);
  const out: Buffer[] = [];
  try {
    // a node's layers: the branch indexes holding it, topmost first; here the lower dirs in order
    out.push(record(src.getattr(src.root), 0, '', '', src.root.layers[0] ?? 0));
    const walk = (dir: UnionNode, index: number): void => {
      for (const e of src.readdir(dir)) {
        if (e.name === '.' || e.name === '..') continue;
        const got = src.lookupAttr(dir, e.name);
        if (!got) continue;
        const kind = got.attr.mode & S_IFMT;
        const me = out.length;
        out.push(record(got.attr, index, e.name, kind === S_IFLNK ? src.readlink(got.node) : '', got.node.layers[0]!));
        if (kind === S_IFDIR) walk(got.node, me);
      }
    };
    walk(src.root, 0);
  } finally {
    src.close();
  }
  return Buffer.concat(out);
}

function main(): void {
  const [options, mnt] = process.argv.slice(2);
  if (!options || !mnt) {
    console.error('usage: floor-c-serve OPTIONS MOUNTPOINT');
    process.exit(2);
  }
  const tree = /(?:^|,)tree=([^,]+)/.exec(options);
  const lower = /(?:^|,)lowerdir=([^,]+)/.exec(options);
  if (!tree && !lower) {
    console.error('floor-c-serve: tree=DIR or lowerdir=... needed');
    process.exit(2);
  }
  const io = /(?:^|,)io(?:,|$)/.test(options);
  const upper = /(?:^|,)upperdir=([^,]+)/.exec(options)?.[1];
  const work = /(?:^|,)workdir=([^,]+)/.exec(options)?.[1];
  if (io && (upper === undefined) !== (work === undefined)) {
    console.error('floor-c-serve: upperdir= and workdir= go together');
    process.exit(2);
  }
  const layers = (tree ?? lower)![1]!;
  const dump = join(tmpdir(), `floor-c-${process.pid}.dump`);
  writeFileSync(dump, dumpUnion(layers));
  // I/O mode: the lower dirs in the dump's branch order, then the upper and work dirs
  const ioArgs = io ? [layers, ...(upper !== undefined ? [upper, work!] : [])] : [];
  // the server removes the dump once read, mounts, and forks its serving process
  const r = spawnSync(FLOOR_SERVER, [dump, mnt, String(DEFAULT_CACHE_TIMEOUT), ...ioArgs], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
