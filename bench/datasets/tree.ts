/**
 * The tree of workloads stat, list, untar and memory: `count` visible files in
 * 100 leaf dirs over 5 lower layers; one file in 7 also in a second layer;
 * whiteouts hiding a tenth as many names again, and an opaque dir hiding 50.
 */
import * as path from 'node:path';
import { finishLayerSet, layerDirs, opaque, put, whiteout, type LayerSet, type Marker } from './layer-set.js';

export interface Tree extends LayerSet {
  /** Relative paths of the regular files visible in the merged view. */
  files: string[];
  /** Directories visible in the merged view (root excluded). */
  dirs: number;
  /** Names hidden by whiteouts or the opaque dir. */
  hidden: number;
}

const LAYERS = 5;

export function buildTree(root: string, count: number): Tree {
  const lowers = layerDirs(root, LAYERS);
  const markers: Marker[] = [];
  const leafDirs: string[] = [];
  for (let a = 0; a < 10; a++) for (let b = 0; b < 10; b++) leafDirs.push(`d${a}/s${b}`);

  const files: string[] = [];
  for (let j = 0; j < count; j++) {
    const rel = `${leafDirs[j % leafDirs.length]}/f${j}.txt`;
    const home = j % LAYERS;
    put(path.join(lowers[home]!, rel), `file ${j} from layer ${home}\n`.repeat(1 + (j % 4)));
    if (j % 7 === 0) put(path.join(lowers[(home + 1) % LAYERS]!, rel), `file ${j} in a second layer\n`);
    files.push(rel);
  }

  // w<k> lives in the two bottom layers; a whiteout in one of the top three hides it.
  const whiteouts = Math.max(1, Math.floor(count / 10));
  for (let k = 0; k < whiteouts; k++) {
    const rel = `${leafDirs[k % leafDirs.length]}/w${k}.txt`;
    put(path.join(lowers[4]!, rel), `gone ${k}\n`);
    put(path.join(lowers[3]!, rel), `gone ${k}, newer\n`);
    whiteout(lowers[k % 3]!, rel);
    markers.push({ layer: k % 3, rel, kind: 'whiteout' });
  }

  // An opaque dir on top holding 5 files hides the 50 below it.
  const opq = 'd0/opq';
  for (let k = 0; k < 50; k++) put(path.join(lowers[4]!, opq, `hidden${k}.txt`), `hidden ${k}\n`);
  opaque(lowers[0]!, opq);
  markers.push({ layer: 0, rel: opq, kind: 'opaque' });
  for (let k = 0; k < 5; k++) {
    put(path.join(lowers[0]!, opq, `top${k}.txt`), `top ${k}\n`);
    files.push(`${opq}/top${k}.txt`);
  }

  return { ...finishLayerSet(root, lowers, markers), files, dirs: 10 + leafDirs.length + 1, hidden: whiteouts + 50 };
}
