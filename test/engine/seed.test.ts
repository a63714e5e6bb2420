import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Union } from '../../src/engine/index.js';
import { buildBranches, mkTemp, readTree } from '../helpers/tree-spec.js';

const ctx = { uid: 0, gid: 0 };

test('seed walkthrough: five branches, merged listing, append copies up into the container layer', (t) => {
  const tmp = mkTemp('layerfs-seed-');
  t.after(() => tmp.cleanup());
  buildBranches(tmp.dir, {
    'container-layer': { 'container-layer.txt': 'I am container layer\n' },
    'image-layer1': { 'image-layer1.txt': 'I am image layer 1\n' },
    'image-layer2': { 'image-layer2.txt': 'I am image layer 2\n' },
    'image-layer3': { 'image-layer3.txt': 'I am image layer 3\n' },
    'image-layer4': { 'image-layer4.txt': 'I am image layer 4\n' },
  });
  const lowerBefore = ['image-layer1', 'image-layer2', 'image-layer3', 'image-layer4'].map((d) => readTree(tmp.path(d)));
  const cwd = process.cwd();
  process.chdir(tmp.dir);
  let u: Union;
  try {
    u = new Union('dirs=./container-layer:./image-layer4:./image-layer3:./image-layer2:./image-layer1');
  } finally {
    process.chdir(cwd);
  }
  t.after(() => u.close());
  // AUFS defaults: first branch rw (writable), the rest ro; absolute paths stored.
  assert.deepEqual(
    u.info().branches.map((b) => `${b.path}=${b.perm}`),
    [
      `${tmp.path('container-layer')}=rw`,
      `${tmp.path('image-layer4')}=ro`,
      `${tmp.path('image-layer3')}=ro`,
      `${tmp.path('image-layer2')}=ro`,
      `${tmp.path('image-layer1')}=ro`,
    ],
  );
  assert.deepEqual(
    u.readdir(u.root).map((e) => e.name),
    ['container-layer.txt', 'image-layer1.txt', 'image-layer2.txt', 'image-layer3.txt', 'image-layer4.txt'],
  );

  const node = u.lookup(u.root, 'image-layer4.txt');
  const inoBefore = u.getattr(node).ino;
  const fh = u.open(node, fs.constants.O_WRONLY | fs.constants.O_APPEND, ctx);
  const extra = Buffer.from("\nwrite to mnt's image-layer1.txt\n");
  assert.equal(u.write(fh, extra, 0, extra.length, 0), extra.length);
  u.release(fh);

  const rfh = u.open(u.lookup(u.root, 'image-layer4.txt'), fs.constants.O_RDONLY, ctx);
  const buf = Buffer.alloc(200);
  const n = u.read(rfh, buf, 0, buf.length, 0);
  u.release(rfh);
  assert.equal(buf.subarray(0, n).toString(), "I am image layer 4\n\nwrite to mnt's image-layer1.txt\n");
  assert.equal(u.getattr(node).ino, inoBefore, 'inode number kept across copy-up');

  // Lower untouched; the copy landed in the container layer.
  assert.deepEqual(
    ['image-layer1', 'image-layer2', 'image-layer3', 'image-layer4'].map((d) => readTree(tmp.path(d))),
    lowerBefore,
  );
  assert.deepEqual(readTree(tmp.path('container-layer'), { skipPrivate: true }), {
    'container-layer.txt': 'I am container layer\n',
    'image-layer4.txt': "I am image layer 4\n\nwrite to mnt's image-layer1.txt\n",
  });
  assert.deepEqual(
    u.readdir(u.root).map((e) => e.name),
    ['container-layer.txt', 'image-layer1.txt', 'image-layer2.txt', 'image-layer3.txt', 'image-layer4.txt'],
  );
});
