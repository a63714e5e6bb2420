import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ctx, O_CREAT, O_WRONLY, setup, throwsCode } from './fixture.js';
import type { Spec } from '../helpers/tree-spec.js';
import { Union } from '../../src/engine/index.js';
import { sharedIndexStats } from '../../src/engine/lower-index.js';

// Whiteouts and opaque dirs inside the read-only branches (where lookups use the listings).
const lowers: Record<string, Spec> = {
  up: {},
  l1: {
    a: 'l1-a',
    gone: { whiteout: true as const },
    gone2: { whiteout: true as const, format: 'overlay' as const },
    d: { x: 'l1-x', hid: { whiteout: true as const } },
    op: { opaque: true as const, entries: { mine: '1' } },
    opo: { opaque: true as const, format: 'overlay' as const, entries: { mine: '2' } },
    fileOverDir: 'now a file',
  },
  l2: { a: 'l2-a', b: 'l2-b', gone: 'g', gone2: 'g2', d: { y: 'l2-y', hid: 'h' }, op: { theirs: 't' }, opo: { theirs: 't' }, fileOverDir: { inner: 'i' } },
  l3: { c: 'l3-c', d: { z: 'l3-z', x: 'l3-x' }, dirBelowFile: 'f' },
};

test('lookups in read-only branches answer from one listing per directory, with AUFS and overlay whiteouts and opaque dirs', (t) => {
  const f = setup(t, lowers);
  assert.deepEqual(f.ls(), ['a', 'b', 'c', 'd', 'dirBelowFile', 'fileOverDir', 'op', 'opo']);
  assert.equal(f.cat('a'), 'l1-a');
  assert.equal(f.cat('b'), 'l2-b');
  assert.equal(f.cat('c'), 'l3-c');
  throwsCode(() => f.node('gone'), 'ENOENT');
  throwsCode(() => f.node('gone2'), 'ENOENT');
  assert.deepEqual(f.ls('d'), ['x', 'y', 'z']);
  assert.equal(f.cat('d/x'), 'l1-x');
  throwsCode(() => f.node('d/hid'), 'ENOENT');
  assert.deepEqual(f.ls('op'), ['mine']);
  assert.deepEqual(f.ls('opo'), ['mine']);
  throwsCode(() => f.node('op/theirs'), 'ENOENT');
  throwsCode(() => f.node('opo/theirs'), 'ENOENT');
  assert.equal(f.cat('fileOverDir'), 'now a file');
  throwsCode(() => f.node('fileOverDir/inner'), 'ENOTDIR');
  assert.deepEqual(f.node('d').layers, [1, 2, 3]);
  // each lower directory was listed once: repeated lookups of other names read nothing new
  const idx = f.u.core.lowerIndex;
  const before = idx.size;
  for (const n of ['nope1', 'nope2', 'a', 'b', 'c']) {
    try {
      f.u.lookup(f.u.root, n);
    } catch {
      /* misses are fine */
    }
  }
  assert.equal(idx.size, before);
  assert.ok(before > 0);
});

test('changes made through the union are seen at once over indexed lower directories', (t) => {
  const f = setup(t, lowers);
  assert.deepEqual(f.ls('d'), ['x', 'y', 'z']); // lower listings of d are read now
  f.u.unlink(f.node('d'), 'y');
  throwsCode(() => f.node('d/y'), 'ENOENT');
  const { fh } = f.u.create(f.node('d'), 'y', 0o644, O_CREAT | O_WRONLY, ctx);
  f.u.write(fh, Buffer.from('new y'), 0, 5, 0);
  f.u.release(fh);
  assert.equal(f.cat('d/y'), 'new y');
  f.u.rename(f.node('d'), 'z', f.node('d'), 'z2', 0);
  throwsCode(() => f.node('d/z'), 'ENOENT');
  assert.equal(f.cat('d/z2'), 'l3-z');
  f.u.mkdir(f.u.root, 'gone', 0o755, ctx);
  assert.deepEqual(f.ls('gone'), []);
  // the lower branches were never written
  assert.deepEqual(fs.readdirSync(f.br.l2 + '/d').sort(), ['hid', 'y']);
  assert.deepEqual(f.raw('l3'), lowers.l3);
  // a remount (a fresh index) sees the same tree
  const names = f.ls('d');
  f.remount();
  assert.deepEqual(f.ls('d'), names);
  assert.equal(f.cat('d/y'), 'new y');
});

test('unions over the same read-only layer share its listings (read once), each seeing its own upper', (t) => {
  const f = setup(t, lowers);
  const walk = (u: typeof f.u): string[] => {
    const out: string[] = [];
    const go = (n: ReturnType<typeof u.lookup>, p: string): void => {
      for (const e of u.readdir(n)) {
        out.push(p + e.name);
        if (e.type === 4) go(u.lookup(n, e.name), `${p}${e.name}/`);
      }
    };
    go(u.root, '');
    return out;
  };
  const first = walk(f.u);
  const before = sharedIndexStats();
  assert.ok(f.u.core.lowerIndex.reads > 0);
  // a second union over the same lower layers with another upper dir (another container of one image)
  const up2 = fs.mkdtempSync(`${f.dir}/up2-`);
  const u2 = new Union(`dirs=${up2}=rw:${f.br.l1}=ro:${f.br.l2}=ro:${f.br.l3}=ro`);
  try {
    assert.deepEqual(walk(u2), first);
    assert.equal(u2.core.lowerIndex.reads, 0, 'every lower listing came from the first union');
    const during = sharedIndexStats();
    assert.equal(during.listings, before.listings, 'no second copy of any listing');
    assert.equal(during.users, before.users + 3);
    // each union writes only its own upper, and sees only its own changes
    const { fh } = u2.create(u2.lookup(u2.root, 'd'), 'mine2', 0o644, O_CREAT | O_WRONLY, ctx);
    u2.release(fh);
    u2.unlink(u2.lookup(u2.root, 'd'), 'x');
    assert.deepEqual(u2.readdir(u2.lookup(u2.root, 'd')).map((e) => e.name), ['mine2', 'y', 'z']);
    assert.deepEqual(f.ls('d'), ['x', 'y', 'z']);
    assert.equal(f.cat('d/x'), 'l1-x');
    assert.deepEqual(fs.readdirSync(up2 + '/d').sort(), ['.wh.x', 'mine2']);
    assert.ok(!fs.existsSync(f.br.up + '/d/mine2'));
  } finally {
    u2.close();
  }
  // the second union let go of its share; the first keeps the listings
  assert.equal(sharedIndexStats().users, before.users);
  assert.equal(sharedIndexStats().listings, before.listings);
  f.u.close();
  assert.equal(sharedIndexStats().users, before.users - 3);
});
