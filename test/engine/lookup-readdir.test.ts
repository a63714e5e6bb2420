import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setup, throwsCode } from './fixture.js';
import { readTree } from '../helpers/tree-spec.js';

test('lookup is top-down; directories merge; topmost file wins', (t) => {
  const f = setup(t, {
    up: { a: 'up-a', d: { x: 'up-x' } },
    mid: { a: 'mid-a', b: 'mid-b', d: { y: 'mid-y' } },
    low: { c: 'low-c', d: { z: 'low-z', x: 'low-x' } },
  });
  assert.deepEqual(f.ls(), ['a', 'b', 'c', 'd']);
  assert.deepEqual(f.ls('d'), ['x', 'y', 'z']);
  assert.equal(f.cat('a'), 'up-a');
  assert.equal(f.cat('d/x'), 'up-x');
  assert.equal(f.cat('d/z'), 'low-z');
  assert.equal(f.u.originOf(f.node('b')), 1);
  const dh = f.u.opendir(f.node('d'), { uid: 0, gid: 0 });
  assert.deepEqual(dh.entries.slice(0, 2).map((e) => e.name), ['.', '..']);
  // d_ino equals the ino lookup/getattr give
  for (const e of dh.entries.slice(2)) assert.equal(e.ino, f.u.getattr(f.node('d/' + e.name)).ino);
  throwsCode(() => f.node('nope'), 'ENOENT');
  throwsCode(() => f.node('a/x'), 'ENOTDIR');
});

test('a non-directory hides a directory below it, and a dir hides files below', (t) => {
  const f = setup(t, { up: { d: 'file now', e: { k: '1' } }, low: { d: { inner: 'x' }, e: 'was file' } });
  assert.equal(f.cat('d'), 'file now');
  assert.deepEqual(f.ls('e'), ['k']);
});

test('AUFS whiteouts and opaque dirs are read', (t) => {
  const f = setup(t, {
    up: { gone: { whiteout: true }, op: { opaque: true, entries: { mine: '1' } }, d: { z: { whiteout: true } } },
    low: { gone: 'x', keep: 'k', op: { theirs: '2' }, d: { z: 'z', w: 'w' } },
  });
  assert.deepEqual(f.ls(), ['d', 'keep', 'op']);
  assert.deepEqual(f.ls('op'), ['mine']);
  assert.deepEqual(f.ls('d'), ['w']);
  throwsCode(() => f.node('gone'), 'ENOENT');
  throwsCode(() => f.node('d/z'), 'ENOENT');
  throwsCode(() => f.node('.wh.gone'), 'ENOENT');
});

test('overlay whiteouts (char 0/0) and opaque xattr are read', (t) => {
  const f = setup(t, {
    up: { gone: { whiteout: true, format: 'overlay' }, op: { opaque: true, format: 'overlay', entries: { mine: '1' } } },
    low: { gone: 'x', keep: 'k', op: { theirs: '2' } },
  });
  assert.deepEqual(f.ls(), ['keep', 'op']);
  assert.deepEqual(f.ls('op'), ['mine']);
  throwsCode(() => f.node('gone'), 'ENOENT');
  // The opaque xattr is ours: not listed, not readable.
  assert.ok(!f.u.listxattr(f.node('op')).some((n) => n.startsWith('trusted.overlay.')));
  throwsCode(() => f.u.getxattr(f.node('op'), 'trusted.overlay.opaque'), 'ENODATA');
});

test('whiteouts in a middle branch hide only what is below them', (t) => {
  const f = setup(t, { up: { x: 'top x' }, mid: { x: { whiteout: true }, y: { whiteout: true } }, low: { x: 'low x', y: 'low y' } });
  assert.deepEqual(f.ls(), ['x']);
  assert.equal(f.cat('x'), 'top x');
});

test('our private state is never visible; readdir is sorted and stable', (t) => {
  const f = setup(t, { up: { b: '1', a: '2' }, low: { c: '3' } });
  assert.deepEqual(f.ls(), ['a', 'b', 'c']);
  // the rw branch holds our work dir and inode table, hidden from the merged view
  const raw = Object.keys(readTree(f.br.up!));
  assert.ok(raw.some((n) => n.startsWith('.wh..wh.layerfs')), raw.join(','));
  assert.ok(f.u.xinoPath?.startsWith(f.br.up!));
  throwsCode(() => f.node('.wh..wh.layerfs.work'), 'ENOENT');
});

test('symlinks are read without following; root ino is 1', (t) => {
  const f = setup(t, { up: {}, low: { l: { symlink: '/etc/passwd' }, t: 'x' } });
  assert.equal(f.u.readlink(f.node('l')), '/etc/passwd');
  throwsCode(() => f.u.readlink(f.node('t')), 'EINVAL');
  assert.equal(f.u.getattr(f.u.root).ino, 1);
  assert.equal(f.u.root.ino, 1);
});
