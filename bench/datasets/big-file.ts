/** One big file `big.bin` in the bottom of 2 lower layers (sequential read, copy-up). */
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { finishLayerSet, layerDirs, put, type LayerSet } from './layer-set.js';

export interface BigFile extends LayerSet {
  rel: string;
  bytes: number;
}

export function buildBigFile(root: string, bytes: number): BigFile {
  const lowers = layerDirs(root, 2);
  put(path.join(lowers[0]!, 'top.txt'), 'the top layer\n');
  const rel = 'big.bin';
  const chunk = randomFillSync(Buffer.alloc(1 << 20)); // incompressible, repeated
  const fd = fs.openSync(path.join(lowers[1]!, rel), 'w');
  try {
    for (let done = 0; done < bytes; done += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
  } finally {
    fs.closeSync(fd);
  }
  return { ...finishLayerSet(root, lowers, []), rel, bytes };
}
