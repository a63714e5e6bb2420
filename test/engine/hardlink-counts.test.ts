/**
 * The union-wide link count recorded on an indexed hard link (trusted.layerfs.hardlink) is read
 * where an index was kept: the rw branch once it holds one, and a former rw branch mounted as a
 * lower one. A branch that never held an index has no count to read (a lookup of a multiply
 * linked file there asks no xattr), and the rw branch's index made while the union runs counts at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ctx, O_RDWR, setup } from './fixture.js';
import { setXattr } from '../helpers/tree-spec.js';
import { Union } from '../../src/engine/index.js';

const INDEX = '.wh..wh.layerfs.index';

test('a former rw branch mounted below keeps its recorded counts (not its raw link counts)', (t) => {
  const f = setup(t, { up: {}, low: { a: 'old', d: {} }, top: {} });
  fs.linkSync(`${f.br.low}/a`, `${f.br.low}/d/b`);
  // copy up `a` (indexed), then change `d/b`: linked up to the same file
  const fh = f.u.open(f.node('a'), O_RDWR, ctx);
  f.u.write(fh, Buffer.from('NEW'), 0, 3, 0);
  f.u.release(fh);
  f.u.setattr(f.node('d/b'), { mode: 0o600 }, ctx);
  assert.ok(fs.existsSync(`${f.br.up}/${INDEX}`));
  assert.equal(fs.statSync(`${f.br.up}/a`).nlink, 3, 'a, d/b and the index entry');
  assert.equal(f.u.getattr(f.node('a')).nlink, 2);
  // the old rw branch is now a lower one under a fresh rw branch
  const u = new Union(`dirs=${f.br.top}=rw:${f.br.up}=ro:${f.br.low}=ro`);
  t.after(() => u.close());
  const a = u.lookup(u.root, 'a');
  assert.equal(u.getattr(a).nlink, 2, 'the recorded count, not the 3 links of the branch');
  assert.equal(u.getattr(u.lookup(u.lookup(u.root, 'd'), 'b')).nlink, 2);
});

test('the rw branch index made while the union runs counts at once; a branch without an index has no count', (t) => {
  const f = setup(t, { up: {}, low: { a: 'v', b: 'w' } });
  fs.linkSync(`${f.br.low}/a`, `${f.br.low}/a2`);
  fs.linkSync(`${f.br.low}/b`, `${f.br.low}/b2`);
  // a stray count on a file of a branch that never held an index: not the union's, not read
  setXattr(`${f.br.low}/b`, 'trusted.layerfs.hardlink', '7 1-2 3');
  assert.equal(f.u.getattr(f.node('b')).nlink, 2);
  assert.equal(f.u.getattr(f.node('a')).nlink, 2);
  assert.ok(!fs.existsSync(`${f.br.up}/${INDEX}`));
  // the first indexed copy-up of this union: a2 reads through the index from now on
  f.u.setattr(f.node('a'), { size: 0 }, ctx);
  assert.ok(fs.existsSync(`${f.br.up}/${INDEX}`));
  assert.equal(f.cat('a2'), '');
  f.u.link(f.node('a'), f.u.root, 'c');
  assert.equal(f.u.getattr(f.node('c')).nlink, 3);
  assert.equal(f.u.getattr(f.node('a2')).nlink, 3);
});
