/**
 * The node table without a node -> id map (ids found through the inode number): hard links (two
 * nodes, one inode number), retired ids and lookup counts kept only when not 1 must still behave.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NodeTable } from '../../src/fuse/node-table.js';

test('node table: two nodes of one inode number get their own ids, sameIno links them, forget one keeps the other', () => {
  const root = { ino: 1 };
  const forgotten: object[] = [];
  const t = new NodeTable<{ ino: number }>(root, (n) => forgotten.push(n));
  const a = { ino: 7 };
  const b = { ino: 7 };
  const ia = t.add(a);
  const ib = t.add(b);
  assert.notEqual(ia, ib);
  assert.equal(t.idFor(a), ia);
  assert.equal(t.idFor(b), ib);
  assert.equal(t.add(b), ib, 'a known node keeps its id');
  assert.deepEqual(t.sameIno(ia), [ib]);
  assert.deepEqual(t.sameIno(ib), [ia]);
  assert.equal(t.lookups(ib), 2);
  t.forget(ia, 1);
  assert.deepEqual(forgotten, [a]);
  assert.equal(t.get(ia), undefined);
  assert.equal(t.idFor(a), undefined);
  assert.equal(t.idFor(b), ib);
  assert.deepEqual(t.sameIno(ib), []);
  t.forget(ib, 1);
  assert.equal(t.lookups(ib), 1, 'one lookup left');
  t.forget(ib, 1);
  assert.deepEqual(forgotten, [a, b]);
  assert.equal(t.size, 1);
  assert.equal(t.idFor(root), 1);
});

test('node table: a retired id keeps working until forgotten, the node gets a new id, the engine forgets it last', () => {
  const root = { ino: 1 };
  const forgotten: object[] = [];
  const t = new NodeTable<{ ino: number }>(root, (n) => forgotten.push(n));
  const n = { ino: 9 };
  const old = t.add(n);
  t.add(n);
  assert.equal(t.retire(old), true);
  assert.equal(t.idFor(n), undefined, 'no current id');
  assert.equal(t.get(old), n, 'the kernel still reaches the node through it');
  const cur = t.add(n);
  assert.notEqual(cur, old);
  assert.equal(t.idFor(n), cur);
  assert.deepEqual(t.idsFor(n), [cur, old]);
  assert.deepEqual(t.sameIno(cur), [old], 'the retired id is the same inode number: refreshed too');
  t.forget(cur, 1);
  assert.deepEqual(forgotten, [], 'the retired id still holds the node');
  assert.deepEqual(t.idsFor(n), [old]);
  t.forget(old, 2);
  assert.deepEqual(forgotten, [n]);
  assert.equal(t.size, 1);
});

test('node table: an id adopted after a restart beside a new id of the same node: idsFor lists both (what renames journal)', () => {
  const root = { ino: 1 };
  const t = new NodeTable<{ ino: number }>(root);
  const n = { ino: 7 };
  const other = { ino: 7 }; // a hard link: same inode number, another node
  t.reserve(10);
  const fresh = t.add(n); // looked up again before the dead daemon's id was resolved
  const link = t.add(other);
  t.adopt(5, n);
  assert.equal(t.idFor(n), fresh);
  assert.deepEqual(t.idsFor(n), [fresh, 5]);
  assert.deepEqual(t.idsFor(other), [link]);
  t.forget(fresh, 1);
  assert.deepEqual(t.idsFor(n), [5]);
});
