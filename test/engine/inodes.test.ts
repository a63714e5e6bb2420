import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ctx, O_RDWR, O_RDONLY, setup, writeFile } from './fixture.js';
import { setXattr } from '../helpers/tree-spec.js';

test('st_ino is stable across copy-up and across a new Union over the same branches', (t) => {
  const f = setup(t, { up: { u: 'u' }, mid: { m: 'm', d: { x: 'x' } }, low: { l: 'l' } });
  const names = ['u', 'm', 'd', 'd/x', 'l'];
  const before = names.map((p) => f.u.getattr(f.node(p)).ino);
  assert.equal(new Set(before).size, names.length, 'unique');
  // copy everything up
  for (const p of ['m', 'd/x', 'l']) f.u.setattr(f.node(p), { mode: 0o600 }, ctx);
  assert.deepEqual(names.map((p) => f.u.getattr(f.node(p)).ino), before);
  f.remount();
  assert.deepEqual(names.map((p) => f.u.getattr(f.node(p)).ino), before);
  const newNode = writeFile(f.u, f.u.root, 'n', 'n');
  const nIno = f.u.getattr(newNode).ino;
  assert.ok(!before.includes(nIno));
  f.remount();
  assert.equal(f.u.getattr(f.node('n')).ino, nIno);
});

test('one host inode linked into two branches is one file: one number, one file after copy-up (as overlayfs)', (t) => {
  const f = setup(t, { up: {}, a: { x: 'shared' }, b: {} });
  fs.linkSync(`${f.br.a}/x`, `${f.br.b}/y`); // same host inode in two branches
  const ino = f.u.getattr(f.node('x')).ino;
  assert.equal(ino, fs.statSync(`${f.br.a}/x`).ino, 'one filesystem: the real st_ino');
  assert.equal(f.u.getattr(f.node('y')).ino, ino);
  const fh = f.u.open(f.node('x'), O_RDWR, ctx);
  f.u.write(fh, Buffer.from('SHARED'), 0, 6, 0);
  f.u.release(fh);
  assert.equal(f.cat('y'), 'SHARED', 'still one file (hard-link index)');
  assert.equal(f.u.getattr(f.node('x')).ino, ino);
  assert.equal(f.u.getattr(f.node('y')).ino, ino);
});

test('hard links made through the union stay hard links after copy-up and share ino and nlink', (t) => {
  const f = setup(t, { up: {}, low: { a: 'data' } });
  const a = f.node('a');
  const ino = f.u.getattr(a).ino;
  const b = f.u.link(a, f.u.root, 'b');
  assert.equal(b.ino, ino);
  assert.equal(f.u.getattr(f.node('b')).ino, ino);
  assert.equal(f.u.getattr(f.node('a')).nlink, 2);
  assert.equal(f.u.getattr(f.node('b')).nlink, 2);
  const fh = f.u.open(f.node('b'), O_RDWR, ctx);
  f.u.write(fh, Buffer.from('DATA'), 0, 4, 0);
  f.u.release(fh);
  assert.equal(f.cat('a'), 'DATA');
  assert.equal(fs.statSync(`${f.br.up}/a`).ino, fs.statSync(`${f.br.up}/b`).ino);
  f.remount();
  assert.equal(f.u.getattr(f.node('a')).ino, ino);
  assert.equal(f.u.getattr(f.node('b')).ino, ino);
  f.u.unlink(f.u.root, 'a');
  assert.equal(f.u.getattr(f.node('b')).nlink, 1);
  assert.equal(f.u.getattr(f.node('b')).ino, ino);
  assert.deepEqual(f.raw('low'), { a: 'data' });
});

test('an open file that is unlinked reports nlink 0 and stays readable and writable', (t) => {
  const f = setup(t, { up: { u: 'upper' }, low: { l: 'lower' } });
  for (const name of ['u', 'l']) {
    const n = f.node(name);
    const fh = f.u.open(n, name === 'u' ? O_RDWR : O_RDONLY, ctx);
    f.u.unlink(f.u.root, name);
    const a = f.u.getattr(n);
    assert.equal(a.nlink, 0, name);
    const b = Buffer.alloc(10);
    assert.equal(b.subarray(0, f.u.read(fh, b, 0, 10, 0)).toString(), name === 'u' ? 'upper' : 'lower');
    if (name === 'u') {
      f.u.setattr(n, { size: 2 }, ctx, fh);
      assert.equal(f.u.getattr(n).size, 2);
    }
    f.u.release(fh);
  }
  assert.deepEqual(f.ls(), []);
  assert.deepEqual(f.raw('up'), { '.wh.l': '' });
});

test('the inode table is private, persistent and kept small', (t) => {
  const f = setup(t, { up: {}, low: { a: 'a' } });
  f.u.setattr(f.node('a'), { mode: 0o600 }, ctx);
  const p = f.u.xinoPath!;
  assert.ok(fs.statSync(p).size > 0, 'the copy-up mapping was written through');
  assert.deepEqual(f.ls(), ['a']);
});

test('hard links of a lower branch stay one file across copy-up (index), also after a remount', (t) => {
  const f = setup(t, { up: {}, low: { a: 'old', d: {} } });
  fs.linkSync(`${f.br.low}/a`, `${f.br.low}/d/b`);
  const ino = f.u.getattr(f.node('a')).ino;
  assert.equal(f.u.getattr(f.node('d/b')).ino, ino);
  assert.equal(f.u.getattr(f.node('d/b')).nlink, 2);
  const bNode = f.node('d/b'); // looked up (and cached) before the copy-up
  const fh = f.u.open(f.node('a'), O_RDWR, ctx);
  f.u.write(fh, Buffer.from('NEW'), 0, 3, 0);
  f.u.release(fh);
  assert.equal(f.cat('d/b'), 'NEW', 'the other name sees the write');
  assert.equal(f.u.getattr(bNode).ino, ino);
  assert.equal(f.u.getattr(bNode).nlink, 2);
  assert.equal(f.u.getattr(f.node('a')).nlink, 2);
  assert.deepEqual(f.raw('up'), { a: 'NEW' });
  // changing the other name links it up instead of copying
  f.u.setattr(bNode, { mode: 0o600 }, ctx);
  assert.equal(fs.statSync(`${f.br.up}/a`).ino, fs.statSync(`${f.br.up}/d/b`).ino);
  assert.equal(f.u.getattr(f.node('a')).mode & 0o777, 0o600);
  f.remount();
  assert.equal(f.u.getattr(f.node('a')).ino, ino);
  assert.equal(f.u.getattr(f.node('d/b')).ino, ino);
  assert.equal(f.u.getattr(f.node('d/b')).nlink, 2);
  // a link made through the union counts too, and unlinks count down
  f.u.link(f.node('a'), f.u.root, 'c');
  assert.equal(f.u.getattr(f.node('c')).nlink, 3);
  f.u.unlink(f.u.root, 'a');
  f.u.unlink(f.u.root, 'c');
  assert.equal(f.u.getattr(f.node('d/b')).nlink, 1);
  assert.equal(f.cat('d/b'), 'NEW');
  assert.deepEqual(f.ls(), ['d']);
  assert.deepEqual(f.raw('low'), { a: 'old', d: { b: 'old' } });
  assert.equal(fs.statSync(`${f.br.low}/a`).nlink, 2);
});

test('a lower hard link opened for reading after its twin was copied up reads the new data', (t) => {
  const f = setup(t, { up: {}, low: { a: 'v1' } });
  fs.linkSync(`${f.br.low}/a`, `${f.br.low}/b`);
  f.u.setattr(f.node('a'), { size: 0 }, ctx);
  assert.equal(f.cat('b'), '');
  assert.deepEqual(f.raw('up'), { a: '' });
  assert.deepEqual(f.ls(), ['a', 'b']);
});

test('an index entry left by a different lower file (reused inode) is not trusted', (t) => {
  const f = setup(t, { up: {}, low: { a: 'lower' } });
  fs.linkSync(`${f.br.low}/a`, `${f.br.low}/b`);
  f.u.setattr(f.node('a'), { size: 0 }, ctx);
  assert.equal(f.cat('b'), '');
  // Pretend the entry was made for another file that had the same (dev, ino) before.
  const st = fs.statSync(`${f.br.low}/a`);
  const entry = `${f.br.up}/.wh..wh.layerfs.index/${st.dev}-${st.ino}`;
  setXattr(entry, 'trusted.layerfs.hardlink', `2 ${st.dev}-${st.ino} 12345`);
  f.remount();
  assert.equal(f.cat('b'), 'lower');
  assert.deepEqual(f.ls(), ['a', 'b']);
});
