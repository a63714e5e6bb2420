/**
 * Builds the benchmark's layers once, in overlay on-disk format so that every
 * target (layerfs, fuse-overlayfs, kernel overlayfs) reads the very same lower
 * directories: whiteouts are char 0/0 devices, the opaque dir carries
 * `trusted.overlay.opaque=y`. Each target gets its own empty upper and work dir.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lsetxattr, makedev, mknod } from '../src/sys/index.js';

export interface Layers {
  /** Lower dirs, topmost first (overlay `lowerdir=` order). */
  lowers: string[];
  /** Relative paths of the regular files visible in the merged view. */
  files: string[];
  /** Relative paths of the directories visible in the merged view (root excluded). */
  dirs: string[];
  /** Files present in a lower layer but hidden by a whiteout or an opaque dir. */
  hidden: number;
  /** Visible files that exist in more than one layer. */
  multiLayer: number;
}

const LOWERS = 3;
const TOP_DIRS = 4;
const SUB_DIRS = 5;

function put(file: string, content: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

/** `count` visible files spread over 20 dirs and 3 lower layers, plus whiteouts and an opaque dir. */
export function buildLayers(root: string, count: number): Layers {
  const lowers = Array.from({ length: LOWERS }, (_, i) => path.join(root, `lower${i}`));
  for (const l of lowers) fs.mkdirSync(l, { recursive: true });
  const leafDirs: string[] = [];
  for (let a = 0; a < TOP_DIRS; a++) for (let b = 0; b < SUB_DIRS; b++) leafDirs.push(`d${a}/s${b}`);

  const files: string[] = [];
  let multiLayer = 0;
  for (let j = 0; j < count; j++) {
    const rel = `${leafDirs[j % leafDirs.length]}/f${j}.txt`;
    const home = j % LOWERS;
    put(path.join(lowers[home]!, rel), `file ${j} from lower${home}\n`.repeat(1 + (j % 4)));
    if (j % 7 === 0) {
      const other = (home + 1) % LOWERS;
      put(path.join(lowers[other]!, rel), `file ${j} also in lower${other}\n`);
      multiLayer++;
    }
    files.push(rel);
  }

  // Whiteouts: w<k> lives in the two bottom layers, a char 0/0 in the top layer hides it.
  let hidden = 0;
  const whiteouts = Math.max(1, Math.floor(count / 10));
  for (let k = 0; k < whiteouts; k++) {
    const rel = `${leafDirs[k % leafDirs.length]}/w${k}.txt`;
    put(path.join(lowers[2]!, rel), `gone ${k}\n`);
    put(path.join(lowers[1]!, rel), `gone ${k}, newer\n`);
    mknod(path.join(lowers[0]!, rel), fs.constants.S_IFCHR | 0o600, makedev(0, 0));
    hidden++;
  }

  // An opaque dir: empty on top, hiding 50 files below.
  const opq = 'd0/opq';
  for (let k = 0; k < 50; k++) put(path.join(lowers[2]!, opq, `hidden${k}.txt`), `hidden ${k}\n`);
  fs.mkdirSync(path.join(lowers[0]!, opq), { recursive: true });
  lsetxattr(path.join(lowers[0]!, opq), 'trusted.overlay.opaque', Buffer.from('y'), 0);
  hidden += 50;

  const dirs = new Set<string>();
  for (const d of [...leafDirs, opq]) {
    const parts = d.split('/');
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return { lowers, files, dirs: [...dirs].sort(), hidden, multiLayer };
}
