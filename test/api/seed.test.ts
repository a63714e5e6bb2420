/**
 * The seed walkthrough (shared/seed/union-file-system.md) in-process through UnionFS: five
 * branches, the seed's exact dirs= string, the merged listing, the append and where it landed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UnionFS } from '../../src/api/index.js';
import { parseOptions } from '../../src/engine/index.js';
import { buildTree, mkTemp, readTree } from '../helpers/tree-spec.js';

const SEED_DIRS = 'dirs=./container-layer:./image-layer4:./image-layer3:./image-layer2:./image-layer1';

test('seed scenario through the in-process API', async (t) => {
  const tmp = mkTemp('layerfs-api-seed-');
  t.after(() => tmp.cleanup());
  const aufs = tmp.path('aufs');
  buildTree(join(aufs, 'container-layer'), { 'container-layer.txt': 'I am container layer\n' });
  for (const n of [1, 2, 3, 4]) buildTree(join(aufs, `image-layer${n}`), { [`image-layer${n}.txt`]: `I am image layer ${n}\n` });
  buildTree(join(aufs, 'mnt'), {});
  const lowerBefore = [1, 2, 3, 4].map((n) => readTree(join(aufs, `image-layer${n}`)));

  const opts = parseOptions(SEED_DIRS, { cwd: aufs });
  assert.deepEqual(
    opts.branches.map((b) => `${b.path}=${b.perm}`),
    ['container-layer=rw', 'image-layer4=ro', 'image-layer3=ro', 'image-layer2=ro', 'image-layer1=ro'].map((s) => join(aufs, s)),
  );
  const ufs = new UnionFS(opts);
  t.after(() => ufs.close());

  // tree mnt/: 0 directories, 5 files
  const names = ((await ufs.readdir('/')) as string[]).sort();
  assert.deepEqual(names, ['container-layer.txt', 'image-layer1.txt', 'image-layer2.txt', 'image-layer3.txt', 'image-layer4.txt']);
  for (const n of names) assert.ok((await ufs.stat('/' + n)).isFile());

  // echo -e "\nwrite to mnt's image-layer1.txt" >> mnt/image-layer4.txt
  await ufs.appendFile('/image-layer4.txt', "\nwrite to mnt's image-layer1.txt\n");
  assert.equal(await ufs.readFile('/image-layer4.txt', 'utf8'), "I am image layer 4\n\nwrite to mnt's image-layer1.txt\n");
  assert.equal(readFileSync(join(aufs, 'image-layer4', 'image-layer4.txt'), 'utf8'), 'I am image layer 4\n');
  assert.equal(readFileSync(join(aufs, 'container-layer', 'image-layer4.txt'), 'utf8'), "I am image layer 4\n\nwrite to mnt's image-layer1.txt\n");
  // ls container-layer (ls hides dot names: our private state is .wh..wh.*)
  assert.deepEqual(readdirSync(join(aufs, 'container-layer')).filter((n) => !n.startsWith('.')).sort(), ['container-layer.txt', 'image-layer4.txt']);
  assert.deepEqual([1, 2, 3, 4].map((n) => readTree(join(aufs, `image-layer${n}`))), lowerBefore);
});
