/**
 * Developer probe (not part of `npm run bench`): N live mounts of the 20k-file tree, each walked
 * with `find` (and `ls -lR` with --ls), then the memory of what serves them: the layerfs daemon's
 * RSS/PSS, or the sum over the fuse-overlayfs processes. Prints one JSON line per checkpoint.
 *   node dist/bench/scale-probe.js --target layerfs|fuse-overlayfs --counts 1,10,100 [--ls] [--data DIR]
 * The tree is built once under --data (kept between runs); mounts and uppers go in a fresh dir.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildTree } from './datasets/tree.js';
import { daemonMemory, processMemory, type Memory } from './scale-memory.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.resolve(here, '..', 'src', 'cli', 'main.js');
const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'layerfs' },
    counts: { type: 'string', default: '1,10,100' },
    files: { type: 'string', default: '20000' },
    data: { type: 'string', default: '/var/tmp/lfs-scale-data' },
    ls: { type: 'boolean', default: false },
    nowalk: { type: 'boolean', default: false },
    cli: { type: 'string' },
  },
});
const target = values.target!;
const counts = values.counts!.split(',').map(Number);
const max = Math.max(...counts);
const files = Number(values.files);
const treeDir = path.join(values.data!, `t${files}`);
const cliMain = values.cli ? path.resolve(values.cli) : cli;
let lowers: string[];
const meta = path.join(treeDir, 'lowers.json');
if (fs.existsSync(meta)) lowers = JSON.parse(fs.readFileSync(meta, 'utf8')) as string[];
else {
  fs.mkdirSync(treeDir, { recursive: true });
  lowers = buildTree(treeDir, files).lowers;
  fs.writeFileSync(meta, JSON.stringify(lowers));
}
const work = fs.mkdtempSync('/var/tmp/lfs-scale-');
const run = path.join(work, 'run');
const env = { ...process.env, LAYERFS_RUN_DIR: run, LAYERFS_DAEMON_IDLE_MS: '2000' };
const mnts: string[] = [];
const lat: number[] = [];

function mount(i: number): string {
  const b = path.join(work, `m${i}`);
  for (const d of ['up', 'work', 'mnt']) fs.mkdirSync(path.join(b, d), { recursive: true });
  const mnt = path.join(b, 'mnt');
  const opts = `lowerdir=${lowers.join(':')},upperdir=${b}/up,workdir=${b}/work`;
  const t0 = process.hrtime.bigint();
  const r =
    target === 'layerfs'
      ? spawnSync(process.execPath, [cliMain, '-o', opts, mnt], { env, encoding: 'utf8' })
      : spawnSync('fuse-overlayfs', ['-o', opts, mnt], { encoding: 'utf8' });
  lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  if (r.status !== 0) throw new Error(`mount ${i}: ${r.stderr}`);
  mnts.push(mnt);
  return mnt;
}

function walk(mnt: string): void {
  const f = spawnSync('find', [mnt], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (f.status !== 0) throw new Error(`find ${mnt}: ${f.stderr}`);
  if (values.ls) spawnSync('ls', ['-lR', mnt], { stdio: ['ignore', 'ignore', 'ignore'] });
}

function memory(): Memory {
  if (target === 'layerfs') return daemonMemory(run);
  return processMemory(mnts);
}

function median(a: number[], q: number): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

try {
  for (let i = 0; i < max; i++) {
    const mnt = mount(i);
    if (!values.nowalk) walk(mnt);
    if (counts.includes(i + 1)) {
      const m = memory();
      console.log(JSON.stringify({ target, mounts: i + 1, ...m, mountP50ms: median(lat, 0.5), mountP95ms: median(lat, 0.95) }));
    }
  }
} finally {
  for (const m of mnts.reverse()) {
    const r = spawnSync('umount', [m]);
    if (r.status !== 0) spawnSync('umount', ['-l', m]);
  }
  await new Promise((r) => setTimeout(r, 500));
  fs.rmSync(work, { recursive: true, force: true });
}
