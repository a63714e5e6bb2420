import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ctx, O_RDWR, O_RDONLY, setup, writeFile } from './fixture.js';
import { setXattr } from '../helpers/tree-spec.js';
import { Union } from '../../src/engine/index.js';

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

test('one filesystem: every file reports its real st_ino, a merged dir its lower dir\'s; below 2^32', (t) => {
  const f = setup(t, { up: { u: 'u', e: {} }, mid: { m: 'm', d: { x: 'x' }, e: { y: 'y' } }, low: { l: 'l', d: { z: 'z' } } });
  const real = (b: string, p: string): number => fs.lstatSync(`${f.br[b]}/${p}`).ino;
  const want: Record<string, number> = { u: real('up', 'u'), m: real('mid', 'm'), l: real('low', 'l'), 'd/x': real('mid', 'd/x'), 'd/z': real('low', 'd/z') };
  want.d = real('mid', 'd'); // topmost copy of a lower-only merged dir
  want.e = real('mid', 'e'); // an upper dir merging a lower one: the lower's, as overlayfs
  for (const [p, ino] of Object.entries(want)) {
    assert.equal(f.u.getattr(f.node(p)).ino, ino, p);
    assert.ok(ino < 2 ** 32, p);
  }
  // the listing agrees with stat (readdir's d_ino), also for a fresh union that looks nothing up
  const u2 = f.remount();
  const listed = new Map(u2.readdir(u2.root).map((e) => [e.name, e.ino]));
  for (const p of ['u', 'm', 'l', 'd', 'e']) assert.equal(listed.get(p), want[p], `d_ino of ${p}`);
  assert.equal(f.u.getattr(f.u.root).ino, 1);
});

test('a copied-up file keeps its lower number; a file created later never gets a claimed number', (t) => {
  const f = setup(t, { up: {}, low: { a: 'a', b: 'b' } });
  const ino = fs.lstatSync(`${f.br.low}/a`).ino;
  f.u.setattr(f.node('a'), { mode: 0o600 }, ctx);
  assert.equal(f.u.getattr(f.node('a')).ino, ino);
  assert.notEqual(fs.lstatSync(`${f.br.up}/a`).ino, ino);
  const n = writeFile(f.u, f.u.root, 'n', 'n');
  assert.equal(f.u.getattr(n).ino, fs.lstatSync(`${f.br.up}/n`).ino, 'a new file: its real st_ino');
});

test('a reused upper inode whose real number a copy-up still claims gets a number of its own', (t) => {
  // The lower file a copy-up came from is deleted outside the union and its inode reused by a new
  // upper file (simulated: the table claims the new file's real number for another file).
  const f = setup(t, { up: { n: 'n' }, low: { a: 'a' } });
  f.u.setattr(f.node('a'), { mode: 0o600 }, ctx);
  const upA = fs.lstatSync(`${f.br.up}/a`);
  const nReal = fs.lstatSync(`${f.br.up}/n`).ino;
  f.u.close();
  const p = `${f.br.up}/.wh..wh.layerfs.xino`;
  const b = Buffer.alloc(24);
  b.writeDoubleLE(upA.dev, 0);
  b.writeDoubleLE(upA.ino, 8);
  b.writeDoubleLE(nReal, 16); // `a` claims n's real number
  fs.appendFileSync(p, b);
  const u = f.remount();
  const na = u.getattr(u.lookup(u.root, 'a')).ino;
  const nn = u.getattr(u.lookup(u.root, 'n')).ino;
  assert.equal(na, nReal);
  assert.notEqual(nn, na, 'no two files share a number');
  assert.ok(nn >= 2 ** 52, 'the fallback range');
  const u3 = f.remount();
  assert.equal(u3.getattr(u3.lookup(u3.root, 'n')).ino, nn, 'and keeps it');
});

test('a table of the earlier numbering scheme (no header) is dropped, not misread', (t) => {
  const f = setup(t, { up: {}, low: { a: 'a' } });
  f.u.setattr(f.node('a'), { mode: 0o600 }, ctx);
  const p = f.u.xinoPath!;
  f.u.close();
  // version 1: bare records, numbers = branch slot * 2^44 + st_ino
  const upA = fs.lstatSync(`${f.br.up}/a`);
  const low = fs.lstatSync(`${f.br.low}/a`);
  const b = Buffer.alloc(24);
  b.writeDoubleLE(upA.dev, 0);
  b.writeDoubleLE(upA.ino, 8);
  b.writeDoubleLE(2 ** 44 + low.ino, 16);
  fs.writeFileSync(p, b);
  const u = f.remount();
  assert.equal(u.getattr(u.lookup(u.root, 'a')).ino, upA.ino, 'old mapping gone: the copy reports its own real number');
  u.close();
  assert.equal(fs.statSync(p).size, 24, 'rewritten: the header only');
  const u2 = f.remount();
  assert.equal(u2.getattr(u2.lookup(u2.root, 'a')).ino, upA.ino, 'stable from then on');
});

test('numbers do not depend on branch positions: the same files keep theirs when the branch list changes', (t) => {
  const f = setup(t, { up: {}, a: { x: 'x' }, b: { y: 'y' } });
  const x = f.u.getattr(f.node('x')).ino;
  const y = f.u.getattr(f.node('y')).ino;
  f.u.close();
  // b above a, and a branch inserted between: same filesystem, same numbers
  const extra = `${f.dir}/extra`;
  fs.mkdirSync(extra);
  const u = new Union(`dirs=${f.br.up}=rw:${extra}=ro:${f.br.b}=ro:${f.br.a}=ro`);
  t.after(() => u.close());
  assert.equal(u.getattr(u.lookup(u.root, 'x')).ino, x);
  assert.equal(u.getattr(u.lookup(u.root, 'y')).ino, y);
});
