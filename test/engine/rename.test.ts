import { test } from 'node:test';
import { Union } from '../../src/engine/index.js';
import assert from 'node:assert/strict';
import { RENAME_EXCHANGE, RENAME_NOREPLACE } from '../../src/engine/index.js';
import * as fs from 'node:fs';
import { ctx, O_RDONLY, setup, throwsCode, writeFile } from './fixture.js';

test('rename of a lower file: copy up, new name in rw, whiteout at the old name', (t) => {
  const f = setup(t, { up: {}, low: { a: 'A', d: { keep: 'k' } } });
  const n = f.node('a');
  const ino = f.u.getattr(n).ino;
  f.u.rename(f.u.root, 'a', f.node('d'), 'b', 0);
  assert.deepEqual(f.ls(), ['d']);
  assert.deepEqual(f.ls('d'), ['b', 'keep']);
  assert.equal(f.cat('d/b'), 'A');
  assert.equal(f.u.getattr(n).ino, ino, 'node identity and ino survive rename');
  assert.equal(f.u.getattr(f.node('d/b')).ino, ino);
  assert.deepEqual(f.raw('up'), { '.wh.a': '', d: { b: 'A' } });
  assert.deepEqual(f.raw('low'), { a: 'A', d: { keep: 'k' } });
});

test('rename over existing targets follows POSIX', (t) => {
  const f = setup(t, { up: { f1: '1', e: {} }, low: { f2: '2', d: { x: 'x' }, e2: {}, f3: '3' } });
  const r = f.u.root;
  throwsCode(() => f.u.rename(r, 'f1', r, 'd', 0), 'EISDIR');
  throwsCode(() => f.u.rename(r, 'e', r, 'f2', 0), 'ENOTDIR');
  throwsCode(() => f.u.rename(r, 'e', r, 'd', 0), 'ENOTEMPTY');
  throwsCode(() => f.u.rename(r, 'f1', r, 'f2', RENAME_NOREPLACE), 'EEXIST');
  throwsCode(() => f.u.rename(r, 'd', f.node('d'), 'sub', 0), 'EINVAL');
  throwsCode(() => f.u.rename(r, 'f1', r, 'f2', RENAME_EXCHANGE | RENAME_NOREPLACE), 'EINVAL');
  throwsCode(() => f.u.rename(r, 'f1', r, 'missing', RENAME_EXCHANGE), 'ENOENT');
  throwsCode(() => f.u.rename(r, 'missing', r, 'x', 0), 'ENOENT');
  f.u.rename(r, 'f1', r, 'f1', 0); // same node: no-op
  f.u.rename(r, 'f1', r, 'f2', 0); // replaces the lower file
  assert.equal(f.cat('f2'), '1');
  f.u.rename(r, 'e', r, 'e2', 0); // empty dir over empty lower dir: opaque
  assert.deepEqual(f.ls(), ['d', 'e2', 'f2', 'f3']);
  assert.deepEqual(f.raw('up'), { e2: { '.wh..wh..opq': '' }, f2: '1' });
});

for (const format of ['aufs', 'overlay'] as const) {
  test(`rename of a directory that exists below (redirect mode, ${format}) shows the whole subtree at the new name`, (t) => {
    const f = setup(t, {
      up: { d: { upfile: 'u', gone: { whiteout: true } } },
      low: { d: { a: 'a', gone: 'g', sub: { deep: 'deep' }, l: { symlink: 'a' } } },
    }, `whiteout=${format}`);
    const lowBefore = f.raw('low');
    const deepIno = f.u.getattr(f.node('d/sub/deep')).ino;
    const d = f.node('d');
    f.u.rename(f.u.root, 'd', f.u.root, 'moved', 0);
    assert.deepEqual(f.ls(), ['moved']);
    assert.deepEqual(f.ls('moved'), ['a', 'l', 'sub', 'upfile']);
    assert.deepEqual(f.ls('moved/sub'), ['deep']);
    // still merged directories to their users, as overlayfs reports them
    assert.equal(f.u.getattr(f.node('moved')).nlink, 1);
    assert.equal(f.u.getattr(f.node('moved/sub')).nlink, 2, 'a lower-only subdir keeps its real count');
    assert.equal(f.cat('moved/sub/deep'), 'deep');
    assert.equal(f.u.readlink(f.node('moved/l')), 'a');
    throwsCode(() => f.node('d'), 'ENOENT');
    assert.equal(f.u.getattr(f.node('moved/sub/deep')).ino, deepIno, 'inode numbers kept');
    assert.deepEqual(f.u.readdir(d).map((e) => e.name), ['a', 'l', 'sub', 'upfile'], 'the node follows the rename');
    assert.deepEqual(f.raw('low'), lowBefore);
    // after a remount too
    f.remount();
    assert.deepEqual(f.ls(), ['moved']);
    assert.deepEqual(f.ls('moved'), ['a', 'l', 'sub', 'upfile']);
    assert.equal(f.u.getattr(f.node('moved/sub/deep')).ino, deepIno);
    // and when the rw branch becomes a lower branch of another union, it still reads right
    f.u.close();
    const g = setup(t, { top: {} });
    const u2 = new Union(`dirs=${g.br.top}=rw:${f.br.up}=ro:${f.br.low}=ro`);
    t.after(() => u2.close());
    assert.deepEqual(u2.readdir(u2.root).map((e) => e.name), ['moved']);
    assert.deepEqual(u2.readdir(u2.lookup(u2.root, 'moved')).map((e) => e.name), ['a', 'l', 'sub', 'upfile']);
  });
}

test('rename of a lower directory in exdev mode answers EXDEV; upper-only dirs still move', (t) => {
  const f = setup(t, { up: { mine: { x: '1' } }, low: { d: { a: 'a' } } }, 'dirrename=exdev');
  throwsCode(() => f.u.rename(f.u.root, 'd', f.u.root, 'e', 0), 'EXDEV');
  f.u.rename(f.u.root, 'mine', f.u.root, 'yours', 0);
  assert.deepEqual(f.ls(), ['d', 'yours']);
  assert.deepEqual(f.raw('up'), { yours: { x: '1' } });
});

test('rename keeps open handles working and the node usable', (t) => {
  const f = setup(t, { up: {}, low: { a: 'data' } });
  const n = f.node('a');
  const fh = f.u.open(n, O_RDONLY, ctx);
  f.u.rename(f.u.root, 'a', f.u.root, 'b', 0);
  const b = Buffer.alloc(10);
  assert.equal(b.subarray(0, f.u.read(fh, b, 0, 10, 0)).toString(), 'data');
  f.u.release(fh);
  writeFile(f.u, f.u.root, 'c', 'c');
  assert.equal(f.u.getattr(n).size, 4);
  f.u.setattr(n, { mode: 0o600 }, ctx);
  assert.equal(f.u.getattr(f.node('b')).mode & 0o777, 0o600);
});


test('RENAME_EXCHANGE swaps files (lower ones copied up) and upper-only dirs; lower dirs: EXDEV', (t) => {
  const f = setup(t, { up: { u: 'upper', ud: { x: '1' } }, low: { l: 'lower', ld: { y: '2' } } });
  const r = f.u.root;
  const u = f.node('u');
  f.u.rename(r, 'u', r, 'l', RENAME_EXCHANGE);
  assert.equal(f.cat('u'), 'lower');
  assert.equal(f.cat('l'), 'upper');
  assert.equal(f.node('l'), u, 'node follows its file');
  throwsCode(() => f.u.rename(r, 'ud', r, 'ld', RENAME_EXCHANGE), 'EXDEV');
  f.u.rename(r, 'ud', r, 'u', RENAME_EXCHANGE);
  assert.equal(f.cat('ud'), 'lower');
  assert.deepEqual(f.ls('u'), ['x']);
  assert.deepEqual(f.raw('up'), { l: 'upper', u: { x: '1' }, ud: 'lower' });
  assert.deepEqual(f.raw('low'), { l: 'lower', ld: { y: '2' } });
});

test('redirect rename copies the data a name shows, also for a hard link whose twin was copied up', (t) => {
  const f = setup(t, { up: {}, low: { a: 'v1', d: {} } });
  fs.linkSync(`${f.br.low}/a`, `${f.br.low}/d/b`);
  f.u.setattr(f.node('a'), { size: 0 }, ctx);
  f.u.rename(f.u.root, 'd', f.u.root, 'e', 0);
  assert.equal(f.cat('e/b'), '');
  assert.deepEqual(f.raw('low'), { a: 'v1', d: { b: 'v1' } });
});

test('a renamed lower directory keeps its times (the opaque marker does not touch them)', (t) => {
  for (const whiteout of ['aufs', 'overlay'] as const) {
    const f = setup(t, { up: {}, low: { a: { y: 'y' } } }, `whiteout=${whiteout}`);
    const old = new Date(1_000_000_000_000);
    fs.utimesSync(f.br.low + '/a', old, old);
    f.u.rename(f.u.root, 'a', f.u.root, 'c', 0);
    const at = f.u.getattr(f.node('c'));
    assert.equal(at.mtimeSec, 1_000_000_000, `${whiteout}: mtime of the renamed dir`);
    assert.equal(fs.statSync(f.br.up + '/c').mtimeMs, 1_000_000_000_000, `${whiteout}: mtime in the rw branch`);
  }
});
