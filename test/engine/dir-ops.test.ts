import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ctx, O_CREAT, O_EXCL, O_WRONLY, setup, throwsCode, writeFile } from './fixture.js';
import { getXattr } from '../helpers/tree-spec.js';

for (const format of ['aufs', 'overlay'] as const) {
  const wh = (name: string) => (format === 'aufs' ? { ['.wh.' + name]: '' } : { [name]: { whiteout: true as const, format: 'overlay' as const } });

  test(`unlink/rmdir of lower entries write ${format} whiteouts; lower untouched`, (t) => {
    const f = setup(t, { up: { mine: 'm' }, low: { a: 'a', d: {}, e: { x: 'x' } } }, `whiteout=${format}`);
    f.u.unlink(f.u.root, 'a');
    f.u.rmdir(f.u.root, 'd');
    f.u.unlink(f.u.root, 'mine');
    assert.deepEqual(f.ls(), ['e']);
    assert.deepEqual(f.raw('up'), { ...wh('a'), ...wh('d') });
    assert.deepEqual(f.raw('low'), { a: 'a', d: {}, e: { x: 'x' } });
    // a fresh union reads them back
    f.remount();
    assert.deepEqual(f.ls(), ['e']);
  });

  test(`rmdir then mkdir of a lower dir makes it opaque (${format})`, (t) => {
    const f = setup(t, { up: {}, low: { d: { old: '1' } } }, `whiteout=${format}`);
    f.u.unlink(f.node('d'), 'old');
    f.u.rmdir(f.u.root, 'd');
    f.u.mkdir(f.u.root, 'd', 0o755, ctx);
    assert.deepEqual(f.ls('d'), []);
    if (format === 'aufs') assert.deepEqual(f.raw('up'), { d: { '.wh..wh..opq': '' } });
    else {
      assert.deepEqual(f.raw('up'), { d: {} });
      assert.equal(getXattr(`${f.br.up}/d`, 'trusted.overlay.opaque'), 'y');
    }
    writeFile(f.u, f.node('d'), 'new', 'n');
    f.remount();
    assert.deepEqual(f.ls('d'), ['new']);
    assert.deepEqual(f.raw('low'), { d: { old: '1' } });
  });

  test(`creating a file where a whiteout is removes the whiteout (${format})`, (t) => {
    const f = setup(t, { up: {}, low: { a: 'old' } }, `whiteout=${format}`);
    f.u.unlink(f.u.root, 'a');
    throwsCode(() => f.node('a'), 'ENOENT');
    writeFile(f.u, f.u.root, 'a', 'new');
    assert.equal(f.cat('a'), 'new');
    assert.deepEqual(f.raw('up'), { a: 'new' });
  });
}

test('rmdir: ENOTEMPTY while a merged entry is visible; whiteouts below do not count', (t) => {
  const f = setup(t, { up: { d: { x: { whiteout: true } } }, low: { d: { x: '1', y: '2' } } });
  throwsCode(() => f.u.rmdir(f.u.root, 'd'), 'ENOTEMPTY');
  f.u.unlink(f.node('d'), 'y');
  f.u.rmdir(f.u.root, 'd');
  assert.deepEqual(f.ls(), []);
  assert.deepEqual(f.raw('up'), { '.wh.d': '' });
});

test('create, mkdir, symlink, mknod go to the rw branch with the caller as owner', (t) => {
  const f = setup(t, { up: {}, low: { d: { keep: 'k' } } });
  const c = { uid: 1001, gid: 1002 };
  const { node, fh } = f.u.create(f.node('d'), 'new.txt', 0o600, O_WRONLY | O_CREAT | O_EXCL, c);
  f.u.write(fh, Buffer.from('hi'), 0, 2, 0);
  f.u.release(fh);
  f.u.mkdir(f.u.root, 'sub', 0o750, c);
  f.u.symlink(f.u.root, 'ln', 'd/new.txt', c);
  f.u.mknod(f.u.root, 'fifo', 0o010640, 0, c);
  const a = f.u.getattr(node);
  assert.equal(a.uid, 1001);
  assert.equal(a.gid, 1002);
  assert.equal(a.mode & 0o7777, 0o600);
  assert.equal(f.u.getattr(f.node('sub')).mode & 0o7777, 0o750);
  assert.equal(fs.lstatSync(`${f.br.up}/ln`).uid, 1001);
  assert.ok(fs.lstatSync(`${f.br.up}/fifo`).isFIFO());
  assert.deepEqual(f.raw('up'), { d: { 'new.txt': 'hi' }, fifo: { fifo: true }, ln: { symlink: 'd/new.txt' }, sub: {} });
  assert.deepEqual(f.ls('d'), ['keep', 'new.txt']);
  assert.deepEqual(f.raw('low'), { d: { keep: 'k' } });
});

test('error paths answer Linux errnos', (t) => {
  const f = setup(t, { up: { f: 'x' }, low: { d: { x: '1' } } });
  const r = f.u.root;
  throwsCode(() => f.u.lookup(r, 'missing'), 'ENOENT');
  throwsCode(() => f.u.unlink(r, 'missing'), 'ENOENT');
  throwsCode(() => f.u.mkdir(r, 'd', 0o755, ctx), 'EEXIST');
  throwsCode(() => f.u.create(r, 'f', 0o644, O_WRONLY | O_CREAT | O_EXCL, ctx), 'EEXIST');
  throwsCode(() => f.u.symlink(r, 'f', 't', ctx), 'EEXIST');
  throwsCode(() => f.u.rmdir(r, 'd'), 'ENOTEMPTY');
  throwsCode(() => f.u.rmdir(r, 'f'), 'ENOTDIR');
  throwsCode(() => f.u.lookup(f.node('f'), 'x'), 'ENOTDIR');
  throwsCode(() => f.u.mkdir(f.node('f'), 'x', 0o755, ctx), 'ENOTDIR');
  throwsCode(() => f.u.unlink(r, 'd'), 'EISDIR');
  throwsCode(() => f.u.open(f.node('d'), O_WRONLY, ctx), 'EISDIR');
  throwsCode(() => f.u.link(f.node('d'), r, 'd2'), 'EPERM');
  throwsCode(() => f.u.mknod(r, 'c00', 0o020644, 0, ctx), 'EPERM'); // would read as a whiteout
  const long = 'x'.repeat(256);
  throwsCode(() => f.u.lookup(r, long), 'ENAMETOOLONG');
  throwsCode(() => f.u.mkdir(r, long, 0o755, ctx), 'ENAMETOOLONG');
  f.u.mkdir(r, 'y'.repeat(255), 0o755, ctx);
  for (const bad of ['.wh.x', '.wh..wh..opq', '.wh..wh.layerfs.work']) {
    throwsCode(() => f.u.mkdir(r, bad, 0o755, ctx), 'EINVAL');
    throwsCode(() => f.u.create(r, bad, 0o644, O_WRONLY | O_CREAT, ctx), 'EINVAL');
    throwsCode(() => f.u.symlink(r, bad, 'x', ctx), 'EINVAL');
    throwsCode(() => f.u.rename(r, 'f', r, bad, 0), 'EINVAL');
    throwsCode(() => f.u.link(f.node('f'), r, bad), 'EINVAL');
    throwsCode(() => f.u.lookup(r, bad), 'ENOENT');
  }
  assert.deepEqual(f.raw('low'), { d: { x: '1' } });
});

test('a union without a rw branch answers EROFS to every change', (t) => {
  const f = setup(t, { a: { f: 'x', d: {} }, b: { g: 'y' } }, '', ['ro', 'ro']);
  const r = f.u.root;
  assert.equal(f.u.writable, false);
  assert.equal(f.u.xinoPath, null);
  throwsCode(() => f.u.mkdir(r, 'n', 0o755, ctx), 'EROFS');
  throwsCode(() => f.u.create(r, 'n', 0o644, O_WRONLY | O_CREAT, ctx), 'EROFS');
  throwsCode(() => f.u.unlink(r, 'f'), 'EROFS');
  throwsCode(() => f.u.rmdir(r, 'd'), 'EROFS');
  throwsCode(() => f.u.rename(r, 'f', r, 'h', 0), 'EROFS');
  throwsCode(() => f.u.open(f.node('f'), O_WRONLY, ctx), 'EROFS');
  throwsCode(() => f.u.setattr(f.node('f'), { mode: 0o600 }, ctx), 'EROFS');
  throwsCode(() => f.u.setxattr(f.node('f'), 'user.x', Buffer.from('1'), 0), 'EROFS');
  throwsCode(() => f.u.link(f.node('f'), r, 'l'), 'EROFS');
  throwsCode(() => f.u.symlink(r, 's', 'f', ctx), 'EROFS');
  throwsCode(() => f.u.access(f.node('f'), 2, ctx), 'EROFS');
  f.u.access(f.node('f'), 4, ctx);
  assert.deepEqual(f.ls(), ['d', 'f', 'g']);
  assert.deepEqual(f.raw('a'), { f: 'x', d: {} });
});

test('rr and ro lower branches are never written', (t) => {
  const f = setup(t, { up: {}, mid: { m: 'm' }, low: { l: 'l' } }, '', ['rw', 'rr', 'ro+wh']);
  f.u.unlink(f.u.root, 'm');
  f.u.setattr(f.node('l'), { mode: 0o600 }, ctx);
  assert.deepEqual(f.raw('mid'), { m: 'm' });
  assert.deepEqual(f.raw('low'), { l: 'l' });
  assert.deepEqual(f.ls(), ['l']);
});
