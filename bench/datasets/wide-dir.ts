/**
 * One directory `big/` whose `names` visible entries are merged from 10 lower
 * layers: entries spread over layers 0-7 (one in 10 also in the layer below),
 * a tenth as many names again whited out by the layer above theirs, and `big/`
 * opaque in layer 7, hiding what layers 8 and 9 hold.
 */
import * as path from 'node:path';
import { finishLayerSet, layerDirs, opaque, put, whiteout, type LayerSet, type Marker } from './layer-set.js';

export interface WideDir extends LayerSet {
  /** The directory, relative to the root. */
  dir: string;
  /** Visible names in it. */
  names: number;
}

export function buildWideDir(root: string, names: number): WideDir {
  const lowers = layerDirs(root, 10);
  const markers: Marker[] = [];
  const dir = 'big';
  for (let i = 0; i < names; i++) {
    const home = i % 8;
    put(path.join(lowers[home]!, dir, `n${i}`), `${i}\n`);
    if (i % 10 === 0 && home < 7) put(path.join(lowers[home + 1]!, dir, `n${i}`), `${i} below\n`);
  }
  for (let k = 0; k < Math.floor(names / 10); k++) {
    const w = k % 7;
    put(path.join(lowers[w + 1]!, dir, `x${k}`), `gone ${k}\n`);
    whiteout(lowers[w]!, `${dir}/x${k}`);
    markers.push({ layer: w, rel: `${dir}/x${k}`, kind: 'whiteout' });
  }
  opaque(lowers[7]!, dir);
  markers.push({ layer: 7, rel: dir, kind: 'opaque' });
  for (let k = 0; k < Math.floor(names / 20); k++) {
    put(path.join(lowers[8]!, dir, `h${k}`), `hidden ${k}\n`);
    put(path.join(lowers[9]!, dir, `n${k}`), `hidden copy ${k}\n`);
  }
  return { ...finishLayerSet(root, lowers, markers), dir, names };
}
