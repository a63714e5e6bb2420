/**
 * lookupAttr (the FUSE LOOKUP/READDIRPLUS path): the node lookup gives and the attributes getattr
 * would give, from the one lstat lookup took; never stale: a cached node is stat'ed anew.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { O_RDWR, ctx, setup, throwsCode } from './fixture.js';

test('lookupAttr answers what lookup + getattr answer: files, merged dirs, symlinks, each layer', (t) => {
  const f = setup(t, {
    up: { a: 'up-a', d: { x: 'up-x' }, only: { k: '1' } },
    mid: { b: 'mid-b', d: { y: 'mid-y' } },
    low: { c: 'low-c', d: { z: 'low-z' } },
  });
  fs.symlinkSync('c', `${f.br.low}/s`);
  // nanosecond times must survive
  fs.utimesSync(`${f.br.mid}/b`, 1_500_000_000.123456, 1_400_000_000.987654);
  const paths = ['a', 'b', 'c', 's', 'd', 'only', 'd/x', 'd/y', 'd/z'];
  const fresh = f.remount(); // nothing cached: every lookupAttr below takes its own lstat
  const got = new Map<string, ReturnType<typeof fresh.getattr>>();
  for (const p of paths) {
    let parent = fresh.root;
    const parts = p.split('/');
    for (const part of parts.slice(0, -1)) parent = fresh.lookup(parent, part);
    const r = fresh.lookupAttr(parent, parts[parts.length - 1]!)!;
    assert.equal(r.node, fresh.lookup(parent, parts[parts.length - 1]!), `${p}: the same node as lookup`);
    got.set(p, r.attr);
    assert.deepEqual(r.attr, fresh.getattr(r.node), p);
  }
  assert.equal(got.get('d')!.nlink, 1, 'a merged dir reports nlink 1');
  assert.equal(got.get('only')!.nlink, fs.statSync(`${f.br.up}/only`).nlink, 'an unmerged dir keeps its count');
  const b = fs.statSync(`${f.br.mid}/b`, { bigint: true });
  assert.equal(BigInt(got.get('b')!.mtimeSec) * 1_000_000_000n + BigInt(got.get('b')!.mtimeNsec), b.mtimeNs);
  assert.equal(fresh.lookupAttr(fresh.root, 'nope'), null, 'absent: null, no error built');
  throwsCode(() => fresh.lookupAttr(fresh.lookup(fresh.root, 'a'), 'x'), 'ENOTDIR');
});

test('lookupAttr of a cached node is a fresh stat (a change since the first lookup shows)', (t) => {
  const f = setup(t, { up: {}, low: { a: 'old' } });
  const first = f.u.lookupAttr(f.u.root, 'a')!;
  assert.equal(first.attr.size, 3);
  const fh = f.u.open(first.node, O_RDWR, ctx);
  f.u.write(fh, Buffer.from('longer'), 0, 6, 0);
  f.u.release(fh);
  const again = f.u.lookupAttr(f.u.root, 'a')!;
  assert.equal(again.node, first.node);
  assert.equal(again.attr.size, 6);
  assert.deepEqual(again.attr, f.u.getattr(first.node));
});

test('lookupAttr of a lower hard link read through the index gives the union-wide count', (t) => {
  const f = setup(t, { up: {}, low: { a: 'old', d: {} } });
  fs.linkSync(`${f.br.low}/a`, `${f.br.low}/d/b`);
  const fh = f.u.open(f.node('a'), O_RDWR, ctx);
  f.u.write(fh, Buffer.from('NEW'), 0, 3, 0);
  f.u.release(fh);
  const u = f.remount();
  const d = u.lookup(u.root, 'd');
  const r = u.lookupAttr(d, 'b')!;
  assert.equal(r.attr.nlink, 2);
  assert.equal(r.attr.size, 3);
  assert.equal(r.attr.ino, u.getattr(u.lookup(u.root, 'a')).ino);
  assert.deepEqual(r.attr, u.getattr(r.node));
});
