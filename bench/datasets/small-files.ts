/** `count` small files (1-8 KiB) in 20 dirs spread over 5 lower layers, for open+read+close. */
import * as path from 'node:path';
import { finishLayerSet, layerDirs, put, type LayerSet } from './layer-set.js';

export interface SmallFiles extends LayerSet {
  files: string[];
  bytes: number;
}

export function buildSmallFiles(root: string, count: number): SmallFiles {
  const lowers = layerDirs(root, 5);
  const files: string[] = [];
  let bytes = 0;
  for (let j = 0; j < count; j++) {
    const rel = `s${j % 20}/f${j}.dat`;
    const size = 1024 + ((j * 2_654_435_761) % 7169); // 1 KiB .. 8 KiB
    const line = `small file ${j} `;
    put(path.join(lowers[j % 5]!, rel), line.repeat(Math.ceil(size / line.length)).slice(0, size));
    files.push(rel);
    bytes += size;
  }
  return { ...finishLayerSet(root, lowers, []), files, bytes };
}
