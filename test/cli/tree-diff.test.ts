/**
 * `layerfs tree --origin` and `layerfs diff` on the seed's layers (a scratch copy of
 * examples/aufs), and their one-line errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UnionFS } from '../../src/api/index.js';
import { parseOptions } from '../../src/engine/index.js';
import { buildTree, mkTemp, readTree, setXattr } from '../helpers/tree-spec.js';

const REPO = process.cwd();
const BIN = join(REPO, 'bin', 'layerfs');
const SEED = './container-layer:./image-layer4:./image-layer3:./image-layer2:./image-layer1';

function layerfs(args: string[], cwd: string) {
  const r = spawnSync(BIN, args, { cwd, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function seedCopy(t: { after(fn: () => void): void }): string {
  const tmp = mkTemp('layerfs-cli-');
  t.after(() => tmp.cleanup());
  const aufs = tmp.path('aufs');
  cpSync(join(REPO, 'examples', 'aufs'), aufs, { recursive: true });
  return aufs;
}

test('tree prints the merged seed listing as tree(1) does, and does not write to any branch', (t) => {
  const aufs = seedCopy(t);
  const before = readTree(aufs);
  const r = layerfs(['tree', `--dirs=${SEED}`], aufs);
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0);
  assert.equal(
    r.stdout,
    [
      '.',
      '├── container-layer.txt',
      '├── image-layer1.txt',
      '├── image-layer2.txt',
      '├── image-layer3.txt',
      '└── image-layer4.txt',
      '',
      '0 directories, 5 files',
      '',
    ].join('\n'),
  );
  assert.deepEqual(readTree(aufs), before, 'tree wrote to a branch');
});

test('tree --origin names the branch of each entry; dirs list every merged branch', (t) => {
  const aufs = seedCopy(t);
  writeFileSync(join(aufs, 'image-layer2', 'image-layer1.txt'), 'shadows layer 1\n');
  cpSync(join(aufs, 'image-layer1'), join(aufs, 'image-layer3', 'etc'), { recursive: true });
  cpSync(join(aufs, 'image-layer4'), join(aufs, 'container-layer', 'etc'), { recursive: true });
  const r = layerfs(['tree', '--origin', '-o', `dirs=${SEED}`], aufs);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(
    r.stdout,
    [
      '.',
      '├── container-layer.txt  [container-layer]',
      '├── etc  [container-layer, image-layer3]',
      '│\u00a0\u00a0 ├── image-layer1.txt  [image-layer3]',
      '│\u00a0\u00a0 └── image-layer4.txt  [container-layer]',
      '├── image-layer1.txt  [image-layer2]',
      '├── image-layer2.txt  [image-layer2]',
      '├── image-layer3.txt  [image-layer3]',
      '└── image-layer4.txt  [image-layer4]',
      '',
      '1 directory, 7 files',
      '',
    ].join('\n'),
  );
  const sub = layerfs(['tree', `--dirs=${SEED}`, 'etc'], aufs);
  assert.equal(sub.stdout, 'etc\n├── image-layer1.txt\n└── image-layer4.txt\n\n0 directories, 2 files\n');
});

test('diff lists the container layer changes after the seed append, a delete and a new dir', async (t) => {
  const aufs = seedCopy(t);
  const clean = layerfs(['diff', `--dirs=${SEED}`], aufs);
  assert.equal(clean.status, 0, clean.stderr);
  assert.equal(clean.stdout, 'A /container-layer.txt\n');

  const ufs = new UnionFS(parseOptions(`dirs=${SEED}`, { cwd: aufs }));
  await ufs.appendFile('/image-layer4.txt', "\nwrite to mnt's image-layer1.txt\n");
  await ufs.unlink('/image-layer2.txt');
  await ufs.mkdir('/new/sub', { recursive: true });
  await ufs.writeFile('/new/sub/f', 'f');
  await ufs.close();

  const r = layerfs(['diff', `--dirs=${SEED}`], aufs);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, ['A /container-layer.txt', 'D /image-layer2.txt', 'C /image-layer4.txt', 'A /new', 'A /new/sub', 'A /new/sub/f', ''].join('\n'));
  // the overlay form names the same branches
  const o = layerfs(['diff', '-o', 'lowerdir=image-layer4:image-layer3:image-layer2:image-layer1,upperdir=container-layer'], aufs);
  assert.equal(o.stdout, r.stdout);
});

test('errors: one line naming the problem, non-zero exit', (t) => {
  const aufs = seedCopy(t);
  const cases: Array<{ args: string[]; status: number; line: RegExp }> = [
    { args: ['tree', '--dirs=./container-layer:./missing'], status: 1, line: /^layerfs: tree: ENOENT: branch 1 does not exist, mount '.*\/missing'$/ },
    { args: ['diff', '--dirs=./container-layer=rw:./missing'], status: 1, line: /^layerfs: diff: ENOENT: branch 1 does not exist/ },
    { args: ['tree', '--dirs=./image-layer1:./image-layer1'], status: 1, line: /^layerfs: tree: EINVAL: branch given twice/ },
    { args: ['tree', '-o', 'whiteout=bogus,dirs=./image-layer1'], status: 1, line: /^layerfs: tree: EINVAL: whiteout must be aufs or overlay/ },
    { args: ['tree', '--dirs=./image-layer1', '/image-layer1.txt'], status: 1, line: /^layerfs: tree: ENOTDIR: not a directory, scandir '\/image-layer1.txt'$/ },
    { args: ['tree', '--dirs=./image-layer1', '/nope'], status: 1, line: /^layerfs: tree: ENOENT: no such file or directory, scandir '\/nope'$/ },
    { args: ['diff', '--dirs=./image-layer1=ro:./image-layer2'], status: 2, line: /^layerfs: diff: no writable branch/ },
    { args: ['tree'], status: 2, line: /^layerfs: tree: no branches/ },
  ];
  for (const c of cases) {
    const r = layerfs(c.args, aufs);
    assert.equal(r.status, c.status, `${c.args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', c.args.join(' '));
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, `${c.args.join(' ')}: ${r.stderr}`);
    assert.match(lines[0]!, c.line);
  }
});

test('tree draws like tree(1) (same lines as `LC_ALL=C.UTF-8 tree` on the same directory)', (t) => {
  const probe = spawnSync('tree', ['--version'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    if (process.env.CI) assert.fail('tree(1) is missing (Debian package tree)');
    return;
  }
  const tmp = mkTemp('layerfs-cli-tree-');
  t.after(() => tmp.cleanup());
  const d = tmp.path('d');
  buildTree(d, {
    B: {},
    Z: 'z',
    _x: 'x',
    a: 'a',
    '.hidden': 'h',
    sub: { e: {}, f: 'f', deeper: { g: 'g', h: { i: 'i' } } },
    ld: { symlink: 'sub' },
    dangling: { symlink: 'nope' },
    fifo: { fifo: true },
    'ä-utf8': 'u',
  });
  const ours = layerfs(['tree', `--dirs=${d}=ro`], tmp.dir);
  assert.equal(ours.status, 0, ours.stderr);
  const theirs = spawnSync('tree', ['.'], { cwd: d, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  const body = (s: string): string[] => s.trimEnd().split('\n').slice(0, -1); // the count line differs between tree versions
  assert.deepEqual(body(ours.stdout), body(theirs.stdout));
  assert.match(ours.stdout, /\n6 directories, 9 files\n$/);
});

test('tree --origin stops at an opaque directory in either format', (t) => {
  const aufs = seedCopy(t);
  cpSync(join(aufs, 'image-layer1'), join(aufs, 'image-layer3', 'etc'), { recursive: true });
  cpSync(join(aufs, 'image-layer4'), join(aufs, 'container-layer', 'etc'), { recursive: true });
  setXattr(join(aufs, 'container-layer', 'etc'), 'trusted.overlay.opaque', 'y');
  const r = layerfs(['tree', '--origin', '-o', `dirs=${SEED}`], aufs);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.ok(lines.includes('├── etc  [container-layer]'), r.stdout);
  assert.ok(!r.stdout.includes('image-layer1.txt  [image-layer3]'), r.stdout);
});
