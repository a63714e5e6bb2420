/**
 * Bytes the daemon holds per engine node, per FUSE node-table id and per lower-index entry, from
 * heap deltas (run with --expose-gc): a union over a layer tree (ROOT/l0..lN, topmost first, e.g.
 * the bench's 20k-file tree kept with --keep) is walked as READDIRPLUS walks it.
 *   node --expose-gc dist/bench/node-memory.js /var/tmp/lfb-.../tree
 * Prints one JSON line: entries, bytes per lower-index entry, per engine node, per node-table id.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Union, type UnionNode } from '../src/engine/index.js';
import { NodeTable } from '../src/fuse/node-table.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function heap(): number {
  for (let i = 0; i < 3; i++) gc!();
  return process.memoryUsage().heapUsed;
}

const root = process.argv[2];
if (!root) throw new Error('usage: node --expose-gc dist/bench/node-memory.js TREE_ROOT (holding l0, l1, ...)');
const lowers = readdirSync(root)
  .filter((n) => /^l\d+$/.test(n))
  .sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))
  .map((n) => join(root, n));
// read-only: no upper (nothing to clean up)
const u = new Union(`lowerdir=${lowers.join(':')}`);

// 1. the lower index: every directory listed (readdir lists each dir of each layer once)
const dirs: UnionNode[] = [];
const walkDirs = (n: UnionNode): void => {
  dirs.push(n);
  for (const e of u.readdir(n)) {
    if (e.name === '.' || e.name === '..') continue;
    if ((e.type ?? 0) === 4) walkDirs(u.lookup(n, e.name));
  }
};
const h0 = heap();
walkDirs(u.root);
const h1 = heap();
const indexEntries = u.core.lowerIndex.size > 0 ? countIndex() : 0;
function countIndex(): number {
  // every listing's entries (names and whiteouts of each layer)
  let n = 0;
  for (const l of lowers) n += countTree(l);
  return n;
}
function countTree(d: string): number {
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) {
    n++;
    if (e.isDirectory()) n += countTree(join(d, e.name));
  }
  return n;
}

// 2. engine nodes: every name looked up with its attributes (as READDIRPLUS does)
const names: [UnionNode, string][] = [];
for (const d of dirs) for (const e of u.readdir(d)) if (e.name !== '.' && e.name !== '..' && e.type !== 4) names.push([d, e.name]);
const h2 = heap();
const nodes: UnionNode[] = [];
for (const [d, name] of names) nodes.push(u.lookupAttr(d, name)!.node);
const h3 = heap();

// 3. node-table ids for all of them
const t = new NodeTable<UnionNode>(u.root);
const h4 = heap();
for (const n of nodes) t.add(n);
for (const n of dirs) t.add(n);
const h5 = heap();

const ids = nodes.length + dirs.length;
console.log(
  JSON.stringify({
    indexEntries,
    bytesPerIndexEntry: Math.round((h1 - h0 - 0) / indexEntries),
    engineNodes: nodes.length,
    bytesPerEngineNode: Math.round((h3 - h2) / nodes.length),
    tableIds: ids,
    bytesPerTableId: Math.round((h5 - h4) / ids),
    note: 'index bytes include the directory nodes walked (111 of them)',
  }),
);
// keep everything measured alive until here
if (t.size !== ids || nodes.length !== names.length) console.log(`(ids ${t.size})`);
u.close();
