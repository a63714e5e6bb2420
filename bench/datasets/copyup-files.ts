/**
 * Small files to copy up (workload smallcpup): `count` files of `bytes` each in 10 dirs
 * (d0..d9/f<j>.dat) of the bottom of 2 lower layers, and three times as many others in 10 dirs
 * of their own (w0..w9/f<j>.dat: changed first and timed apart, without growing d0..d9); the top
 * layer holds one unrelated file.
 */
import { randomFillSync } from 'node:crypto';
import * as path from 'node:path';
import { finishLayerSet, layerDirs, put, type LayerSet } from './layer-set.js';

export interface CopyupFiles extends LayerSet {
  /** The files, relative to the merged root. */
  files: string[];
  /** Three times as many other files (dirs w0..w9), changed before `files` in the same mount. */
  warm: string[];
  /** Their directories (where the create row's first pass makes its names). */
  warmDirs: string[];
  /** Size of each file. */
  bytes: number;
  /** The directories holding them (where the create row makes its new names). */
  dirs: string[];
}

export function buildCopyupFiles(root: string, count: number, bytes: number): CopyupFiles {
  const lowers = layerDirs(root, 2);
  put(path.join(lowers[0]!, 'top.txt'), 'the top layer\n');
  const dirs = Array.from({ length: 10 }, (_, i) => `d${i}`);
  const warmDirs = Array.from({ length: 10 }, (_, i) => `w${i}`);
  const files: string[] = [];
  const warm: string[] = [];
  const data = randomFillSync(Buffer.alloc(bytes));
  for (let j = 0; j < 4 * count; j++) {
    const rel = j < count ? `${dirs[j % dirs.length]}/f${j}.dat` : `${warmDirs[j % warmDirs.length]}/f${j}.dat`;
    data.writeUInt32LE(j, 0); // each file its own contents
    put(path.join(lowers[1]!, rel), data);
    (j < count ? files : warm).push(rel);
  }
  return { ...finishLayerSet(root, lowers, []), files, warm, bytes, dirs, warmDirs };
}
