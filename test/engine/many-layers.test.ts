/**
 * Directories with many lower layers: a lookup goes straight to the first layer whose listing
 * mentions the name (namei lowerMentions) instead of walking every layer. The answers must be the
 * walk's: whiteouts (AUFS and overlay) and opaque dirs in middle layers, dirs merging down,
 * a file over a dir, names nowhere, and changes made through the union.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ctx, O_CREAT, O_WRONLY, setup, throwsCode } from './fixture.js';
import type { Spec } from '../helpers/tree-spec.js';
import { MENTION_MIN_LAYERS } from '../../src/engine/namei.js';

const filler = (n: number): Spec => ({ [`only${n}`]: `only in l${n}` });

// rw on top, then l1..l7 (more than MENTION_MIN_LAYERS lower layers under d)
const specs: Record<string, Spec> = {
  up: { d: { rwfile: 'rw', shadowed: 'rw wins', rwgone: { whiteout: true as const } } },
  l1: { d: { ...filler(1), shadowed: 'l1', rwgone: 'l1' } },
  l2: { d: { ...filler(2), hid: { whiteout: true as const }, sub: { a: 'l2-a' } } },
  l3: { d: { ...filler(3), ovhid: { whiteout: true as const, format: 'overlay' as const }, sub: { opaque: true as const, entries: { b: 'l3-b' } } } },
  l4: { d: { ...filler(4), hid: 'hidden by l2', mid: 'l4-mid', sub: { c: 'under an opaque dir' } } },
  l5: { d: { ...filler(5), ovhid: 'hidden by l3', mid: 'l5-mid', fileOverDir: 'file', deep: { e: 'l5-e' } } },
  l6: { d: { ...filler(6), fileOverDir: { inner: 'i' }, deep: { f: 'l6-f' } } },
  l7: { d: { ...filler(7), bottom: 'l7-bottom', deep: { g: 'l7-g' } } },
};

test('lookups over many lower layers jump to the right layer and keep every stop rule', (t) => {
  const f = setup(t, specs);
  assert.ok(f.node('d').layers.length - 1 >= MENTION_MIN_LAYERS, 'enough lower layers for the name map');
  assert.equal(f.cat('d/rwfile'), 'rw');
  assert.equal(f.cat('d/shadowed'), 'rw wins');
  throwsCode(() => f.node('d/rwgone'), 'ENOENT');
  for (let n = 1; n <= 7; n++) assert.equal(f.cat(`d/only${n}`), `only in l${n}`);
  throwsCode(() => f.node('d/hid'), 'ENOENT');
  throwsCode(() => f.node('d/ovhid'), 'ENOENT');
  assert.equal(f.cat('d/mid'), 'l4-mid');
  assert.equal(f.cat('d/bottom'), 'l7-bottom');
  assert.deepEqual(f.node('d/mid').layers, [4]);
  assert.deepEqual(f.node('d/bottom').layers, [7]);
  // sub: l2 and l3 merge; l3 is opaque, so l4's c is hidden
  assert.deepEqual(f.node('d/sub').layers, [2, 3]);
  assert.deepEqual(f.ls('d/sub'), ['a', 'b']);
  throwsCode(() => f.node('d/sub/c'), 'ENOENT');
  // a file above a dir hides it; a dir merges down through the layers that have it
  assert.equal(f.cat('d/fileOverDir'), 'file');
  throwsCode(() => f.node('d/fileOverDir/inner'), 'ENOTDIR');
  assert.deepEqual(f.node('d/deep').layers, [5, 6, 7]);
  assert.deepEqual(f.ls('d/deep'), ['e', 'f', 'g']);
  for (const n of ['nowhere', 'only8', 'inner', 'a']) throwsCode(() => f.node(`d/${n}`), 'ENOENT');
  assert.deepEqual(f.ls('d'), ['bottom', 'deep', 'fileOverDir', 'mid', 'only1', 'only2', 'only3', 'only4', 'only5', 'only6', 'only7', 'rwfile', 'shadowed', 'sub']);
});

test('over many lower layers, changes made through the union are seen at once', (t) => {
  const f = setup(t, specs);
  assert.equal(f.cat('d/mid'), 'l4-mid'); // the name map of d is built now
  f.u.unlink(f.node('d'), 'mid');
  throwsCode(() => f.node('d/mid'), 'ENOENT');
  const { fh } = f.u.create(f.node('d'), 'hid', 0o644, O_CREAT | O_WRONLY, ctx);
  f.u.write(fh, Buffer.from('made'), 0, 4, 0);
  f.u.release(fh);
  assert.equal(f.cat('d/hid'), 'made');
  f.u.rename(f.node('d'), 'bottom', f.node('d'), 'bottom2', 0);
  throwsCode(() => f.node('d/bottom'), 'ENOENT');
  assert.equal(f.cat('d/bottom2'), 'l7-bottom');
  f.u.unlink(f.node('d/sub'), 'a');
  assert.deepEqual(f.ls('d/sub'), ['b']);
  f.u.mkdir(f.node('d'), 'mid', 0o755, ctx);
  assert.deepEqual(f.ls('d/mid'), [], 'a dir made over a removed lower file is empty');
});
