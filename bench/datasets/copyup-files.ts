/**
 * Small files to copy up (workload smallcpup): `count` files of `bytes` each in 10 dirs
 * (d0..d9/f<j>.dat) of the bottom of 2 lower layers; the top layer holds one unrelated file.
 */
import { randomFillSync } from 'node:crypto';
import * as path from 'node:path';
import { finishLayerSet, layerDirs, put, type LayerSet } from './layer-set.js';

export interface CopyupFiles extends LayerSet {
  /** The files, relative to the merged root. */
  files: string[];
  /** Size of each file. */
  bytes: number;
  /** The directories holding them (where the create row makes its new names). */
  dirs: string[];
}

export function buildCopyupFiles(root: string, count: number, bytes: number): CopyupFiles {
  const lowers = layerDirs(root, 2);
  put(path.join(lowers[0]!, 'top.txt'), 'the top layer\n');
  const dirs = Array.from({ length: 10 }, (_, i) => `d${i}`);
  const files: string[] = [];
  const data = randomFillSync(Buffer.alloc(bytes));
  for (let j = 0; j < count; j++) {
    const rel = `${dirs[j % dirs.length]}/f${j}.dat`;
    data.writeUInt32LE(j, 0); // each file its own contents
    put(path.join(lowers[1]!, rel), data);
    files.push(rel);
  }
  return { ...finishLayerSet(root, lowers, []), files, bytes, dirs };
}
