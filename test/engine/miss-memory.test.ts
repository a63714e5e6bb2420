/**
 * Remembered negative lookups (engine/miss-memory.ts): a create-type op right after a lookup that
 * found nothing uses what that lookup learned, and only while nothing changed the directory. Each
 * test first has the lookup remember the miss, then changes the union or a branch, then creates
 * the name with O_EXCL (or mkdir): the answer must be what a fresh search gives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EV_CREATE, Reval } from '../../src/engine/udba.js';
import { MISS_MEMORY_SIZE, MissMemory } from '../../src/engine/miss-memory.js';
import { O_CREAT, O_EXCL, O_WRONLY, ctx, setup } from './fixture.js';

const NEW = O_WRONLY | O_CREAT | O_EXCL;

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => (e as { code?: string }).code === code);
}

test('a create right after the lookup that missed uses it (no second search), and makes the file', (t) => {
  const f = setup(t, { up: { d: {} }, lo: { d: { a: '1' } } });
  const d = f.node('d');
  assert.equal(f.u.lookupAttr(d, 'n'), null);
  const hits = f.u.core.misses.hits;
  const { node, fh } = f.u.create(d, 'n', 0o644, NEW, ctx);
  f.u.release(fh);
  assert.equal(f.u.core.misses.hits, hits + 1, 'the create used the remembered miss');
  assert.equal(f.u.core.misses.size, 0, 'served once');
  assert.equal(f.u.lookup(d, 'n'), node);
  assert.deepEqual(f.raw('up'), { d: { n: '' } });
});

test('the reply attributes of a create are those of the made file (fstat of its fd)', (t) => {
  const f = setup(t, { up: { d: {} }, lo: { d: {} } });
  const d = f.node('d');
  const { node, fh } = f.u.create(d, 'n', 0o640, NEW, ctx);
  const made = f.u.takeMadeAttr(node);
  f.u.release(fh);
  assert.ok(made);
  assert.deepEqual(made, f.u.getattr(node));
  assert.equal(f.u.takeMadeAttr(node), null, 'read once');
  const m = f.u.mkdir(d, 'sub', 0o750, ctx);
  assert.deepEqual(f.u.takeMadeAttr(m), f.u.getattr(m));
  const s = f.u.symlink(d, 'ln', 'target', ctx);
  assert.deepEqual(f.u.takeMadeAttr(s), f.u.getattr(s));
  assert.equal(f.u.takeMadeAttr(m), null, 'only the entry just made');
});

test('a whiteout seen by the lookup is still removed by the create (remembered, not skipped)', (t) => {
  const f = setup(t, { up: { d: { '.wh.a': '' } }, lo: { d: { a: 'lower' } } });
  const d = f.node('d');
  assert.equal(f.u.lookupAttr(d, 'a'), null);
  const { fh } = f.u.create(d, 'a', 0o644, NEW, ctx);
  f.u.release(fh);
  assert.deepEqual(f.raw('up'), { d: { a: '' } });
  assert.equal(f.cat('d/a'), '');
});

test('a name made through the union after the miss: EEXIST (mkdir, then the node forgotten)', (t) => {
  const f = setup(t, { up: { d: {} }, lo: { d: {} } });
  const d = f.node('d');
  assert.equal(f.u.lookupAttr(d, 'x'), null);
  const x = f.u.mkdir(d, 'x', 0o755, ctx);
  f.u.forget(x); // the node cache no longer says it: only the branches do
  throwsCode(() => f.u.create(d, 'x', 0o644, NEW, ctx), 'EEXIST');
});

test('a name renamed into the directory through the union after the miss: EEXIST', (t) => {
  const f = setup(t, { up: { d: {}, e: { y: 'y' } }, lo: { d: {} } });
  const d = f.node('d');
  assert.equal(f.u.lookupAttr(d, 'x'), null);
  f.u.rename(f.node('e'), 'y', d, 'x', 0);
  f.u.forget(f.u.lookup(d, 'x'));
  throwsCode(() => f.u.create(d, 'x', 0o644, NEW, ctx), 'EEXIST');
  throwsCode(() => f.u.mkdir(d, 'x', 0o755, ctx), 'EEXIST');
});

test('an unlink in the directory forgets its misses', (t) => {
  const f = setup(t, { up: { d: { z: 'z' } }, lo: { d: {} } });
  const d = f.node('d');
  assert.equal(f.u.lookupAttr(d, 'x'), null);
  f.u.unlink(d, 'z');
  assert.equal(f.u.core.misses.size, 0, 'the directory changed: its misses are forgotten');
});

test('udba=reval: a name made directly in a lower branch after the miss is seen by the create (EEXIST)', (t) => {
  const f = setup(t, { up: { d: {} }, lo: { d: {} } });
  let now = 1000;
  const r = new Reval(f.u.changes, 500, () => now);
  f.u.core.udbaCheck = (dir) => r.check(dir);
  const d = f.node('d');
  assert.equal(f.u.lookupAttr(d, 'x'), null);
  writeFileSync(join(f.br.lo!, 'd', 'x'), 'lower');
  const later = new Date(Date.now() + 5000);
  utimesSync(join(f.br.lo!, 'd'), later, later);
  now += 600; // past the re-check interval
  throwsCode(() => f.u.create(d, 'x', 0o644, NEW, ctx), 'EEXIST');
  assert.equal(f.cat('d/x'), 'lower');
});

test('udba=reval: a name made directly in the rw branch after the miss: EEXIST even within the interval', (t) => {
  const f = setup(t, { up: { d: {} }, lo: { d: {} } });
  const now = 1000;
  const r = new Reval(f.u.changes, 500, () => now);
  f.u.core.udbaCheck = (dir) => r.check(dir);
  const d = f.node('d');
  assert.equal(f.u.lookupAttr(d, 'x'), null);
  mkdirSync(join(f.br.up!, 'd', 'x'));
  throwsCode(() => f.u.create(d, 'x', 0o644, NEW, ctx), 'EEXIST');
  throwsCode(() => f.u.mkdir(d, 'x', 0o755, ctx), 'EEXIST');
});

test('udba=notify: an event in the directory forgets its misses', (t) => {
  const f = setup(t, { up: { d: {} }, lo: { d: {} } });
  const d = f.node('d');
  assert.equal(f.u.lookupAttr(d, 'x'), null);
  writeFileSync(join(f.br.lo!, 'd', 'x'), 'lower');
  f.u.changes.event(d, 1, EV_CREATE, 'x', false);
  throwsCode(() => f.u.create(d, 'x', 0o644, NEW, ctx), 'EEXIST');
});

test('a branch added above after the miss: its name is seen by the create (EEXIST)', (t) => {
  const f = setup(t, { up: { d: {} }, lo: { d: {} }, mid: { d: { x: 'mid' } } }, '', ['rw', 'ro', 'ro']);
  f.u.changeBranches(`del:${f.br.mid}`);
  const d = f.node('d');
  assert.equal(f.u.lookupAttr(d, 'x'), null);
  f.u.changeBranches(`add:1:${f.br.mid}=ro`);
  throwsCode(() => f.u.create(d, 'x', 0o644, NEW, ctx), 'EEXIST');
  assert.equal(f.cat('d/x'), 'mid');
});

test('a parent not in the rw branch: the miss serves, the create still probes the new copy of it', (t) => {
  const f = setup(t, { up: {}, lo: { d: { a: '1' } } });
  const d = f.node('d');
  assert.equal(f.u.lookupAttr(d, 'x'), null);
  const { fh } = f.u.create(d, 'x', 0o644, NEW, ctx); // copies d up
  f.u.release(fh);
  assert.deepEqual(f.raw('up'), { d: { x: '' } });
});

test('a copy-up of the parent between the miss and the create: the miss no longer counts', (t) => {
  const f = setup(t, { up: {}, lo: { d: { a: '1' } } });
  const d = f.node('d');
  assert.equal(f.u.lookupAttr(d, 'x'), null);
  f.u.setattr(f.node('d/a'), { mode: 0o600 }, ctx); // copies a up, and d with it: d's layers change
  const hits = f.u.core.misses.hits;
  const { fh } = f.u.create(d, 'x', 0o644, NEW, ctx);
  f.u.release(fh);
  assert.equal(f.u.core.misses.hits, hits, 'searched again');
  assert.deepEqual(f.raw('up'), { d: { a: '1', x: '' } });
});

test('MissMemory: bounded, served once, per directory', () => {
  const m = new MissMemory();
  const dir = { gen: 1, layers: [0], unlinked: false } as never;
  const other = { gen: 1, layers: [0], unlinked: false } as never;
  const d = { type: 0 } as never;
  for (let i = 0; i < MISS_MEMORY_SIZE; i++) m.remember(dir, `n${i}`, d, 1);
  assert.equal(m.size, MISS_MEMORY_SIZE);
  m.remember(other, 'x', d, 1);
  assert.equal(m.size, 1, 'full: started again');
  m.remember(dir, 'y', d, 1);
  m.changed(other);
  assert.equal(m.take(other, 'x', 1), null);
  assert.equal(m.take(dir, 'y', 2), null, 'another generation');
  m.remember(dir, 'y', d, 1);
  assert.equal(m.take(dir, 'y', 1), d);
  assert.equal(m.take(dir, 'y', 1), null, 'once');
});
