/**
 * untar under kill -9 of the serving daemon: a tarball made here (2,400 files in 60 dirs, three big
 * ones, symlinks, hard links) extracted into a directory of the mount that exists in both lower
 * branches (files of the same names below: tar replaces them), then `find` (type, mode, size, link
 * target of every entry) and sha256 of every file, all through the mount, compared with the same
 * taken from the source tree. Then the merged tree must equal the run without kills.
 */
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { childFailure, runChild, type Union } from './kill-loop.js';
import { rng } from './rng.js';
import { twoRuns } from './two-runs.js';

let work = '';
let tarball = '';
let expected = '';

/** The source tree: deterministic (seeded), so both runs and the expectation agree. */
function makeSource(src: string): void {
  const rand = rng(7);
  const dirs: string[] = [''];
  for (let i = 0; i < 60; i++) {
    const parent = dirs[Math.floor(rand() * dirs.length)]!;
    const d = parent === '' ? `d${i}` : `${parent}/d${i}`;
    mkdirSync(join(src, d), { mode: 0o755 });
    dirs.push(d);
  }
  for (let i = 0; i < 2400; i++) {
    const d = dirs[Math.floor(rand() * dirs.length)]!;
    const size = Math.floor(rand() * rand() * 16_384);
    const b = Buffer.alloc(size);
    for (let j = 0; j < size; j += 64) b.write(`${i}:${j}:${Math.floor(rand() * 1e9)}`, j);
    writeFileSync(join(src, d, `f${i}.dat`), b, { mode: rand() < 0.1 ? 0o755 : 0o644 });
  }
  for (const [name, mb] of [['big1.bin', 12], ['big2.bin', 5], ['d0-big.bin', 3]] as const) {
    const b = Buffer.alloc(mb << 20);
    for (let j = 0; j < b.length; j += 4096) b.writeUInt32LE((rand() * 2 ** 32) >>> 0, j);
    writeFileSync(join(src, name), b);
  }
  writeFileSync(join(src, 'd0', 'replaced.dat'), 'the archive version\n');
  for (let i = 0; i < 30; i++) symlinkSync(i % 2 ? `../d${i}/nowhere` : `f${i}.dat`, join(src, `l${i}`));
  for (let i = 0; i < 5; i++) linkSync(join(src, 'big2.bin'), join(src, `hard${i}`));
}

/** `find` + sha256 of a tree, in the workload's form (run on the source here, on the mount there). */
const LIST = `find . -printf '%y %m %s %P -> %l\\n' | sed 's/^d \\([0-7]*\\) [0-9]* /d \\1 - /' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'layerfs-untar-src-'));
  const src = join(work, 'src');
  mkdirSync(src);
  makeSource(src);
  tarball = join(work, 'tree.tar');
  const t = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '-C', src, '-cf', tarball, '.'], { encoding: 'utf8', timeout: 60_000 });
  if (t.status !== 0) throw new Error(`tar -c: ${t.stderr}`);
  const l = spawnSync('/bin/bash', ['-c', LIST], { cwd: src, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  if (l.status !== 0) throw new Error(`find/sha256sum of the source: ${l.stderr}`);
  expected = l.stdout;
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

twoRuns(
  {
    name: 'untar',
    fill(lo1, lo2) {
      // the target dir exists below with files tar replaces; lo2's outside/keep is left alone
      for (const [lo, tag] of [[lo1, 'lo1'], [lo2, 'lo2']] as const) {
        mkdirSync(join(lo, 'x', 'd0'), { recursive: true, mode: 0o755 });
        writeFileSync(join(lo, 'x', 'big2.bin'), `${tag} old big2\n`);
        writeFileSync(join(lo, 'x', 'd0', 'replaced.dat'), `${tag} old\n`);
      }
      writeFileSync(join(lo2, 'x', 'l3'), 'a file where the archive has a symlink\n');
      mkdirSync(join(lo2, 'outside'));
      writeFileSync(join(lo2, 'outside', 'keep'), 'keep\n');
    },
    async run(u) {
      // x exists below (names of the archive there: replaced), y is new
      for (const dir of ['x', 'y']) {
        const x = join(u.mnt, dir);
        const untar = await runChild(u, ['/bin/bash', '-c', `mkdir -p ${x} && tar -xf ${tarball} -C ${x}`], { timeoutMs: 90_000 });
        if (untar.status !== 0) throw new Error(childFailure(`tar -xf into the mount's ${dir}/`, untar));
      }
      for (const dir of ['x', 'y']) await checkTree(u, join(u.mnt, dir));
    },
  },
  180_000,
);

async function checkTree(u: Union, x: string): Promise<void> {
      const list = await runChild(u, ['/bin/bash', '-c', LIST], { cwd: x, timeoutMs: 60_000 });
      if (list.status !== 0) throw new Error(childFailure(`find + sha256sum of ${x} through the mount`, list));
      // the archive's tree, nothing more (every lower name in x is in the archive)
      if (list.stdout !== expected) {
        const want = expected.split('\n');
        const got = list.stdout.split('\n');
        const bad = want.filter((l) => !got.includes(l)).slice(0, 5).map((l) => `missing or different: ${l}`);
        bad.push(...got.filter((l) => !want.includes(l)).slice(0, 5).map((l) => `unexpected: ${l}`));
        throw new Error(`find/sha256sum of the extracted ${x} differ from the archive's source:\n    ${bad.join('\n    ')}`);
      }
}
