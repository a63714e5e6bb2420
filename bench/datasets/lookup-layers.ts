/**
 * Layer stacks of 1..100 layers for the lookup workload: the files looked up
 * live in the BOTTOM layer; every layer above has the same 10 dirs with a few
 * files of its own, so a lookup must pass them all. Layer dirs get short paths
 * (kernel overlayfs takes at most one page of mount options).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { finishLayerSet, put, type LayerSet } from './layer-set.js';

export interface LookupStacks {
  /** Layer count -> the stack (bottom layer shared by all). */
  stacks: Map<number, LayerSet>;
  /** Relative paths that exist (in the bottom layer). */
  present: string[];
  /** Relative paths that exist nowhere (in dirs that exist). */
  missing: string[];
}

export function buildLookupStacks(root: string, counts: number[], names: number): LookupStacks {
  const bottom = path.join(root, 'b');
  const present: string[] = [];
  const missing: string[] = [];
  const nPresent = Math.round((names * 3) / 4);
  for (let i = 0; i < nPresent; i++) {
    const rel = `d${i % 10}/f${i}`;
    put(path.join(bottom, rel), `${i}\n`);
    present.push(rel);
  }
  for (let i = 0; i < names - nPresent; i++) missing.push(`d${i % 10}/nope${i}`);
  const fillers: string[] = [];
  for (let n = 1; n < Math.max(...counts); n++) {
    const dir = path.join(root, String(n));
    for (let d = 0; d < 10; d++) for (let k = 0; k < 3; k++) put(path.join(dir, `d${d}`, `l${n}_${k}`), `${n}\n`);
    fillers.push(dir);
  }
  const stacks = new Map<number, LayerSet>();
  for (const count of counts) {
    const setRoot = path.join(root, `n${count}`);
    fs.mkdirSync(setRoot);
    stacks.set(count, finishLayerSet(setRoot, [...fillers.slice(0, count - 1), bottom], []));
  }
  return { stacks, present, missing };
}
