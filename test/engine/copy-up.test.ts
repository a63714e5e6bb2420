import { test } from 'node:test';
import { Union } from '../../src/engine/index.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ctx, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, setup, writeFile } from './fixture.js';
import { getXattr, readTree, setXattr } from '../helpers/tree-spec.js';

test('copy-up preserves mode, owner, nanosecond times and xattrs; parents first with their attributes', (t) => {
  const f = setup(t, { up: {}, low: { d: { dir: { e: { dir: { 'f.txt': { mode: 0o640, content: 'data', uid: 1234, gid: 2345 } }, mode: 0o750 } }, mode: 0o711 } } });
  const low = f.br.low!;
  fs.chownSync(`${low}/d/e`, 42, 43);
  setXattr(`${low}/d/e/f.txt`, 'user.color', 'blue');
  setXattr(`${low}/d/e`, 'user.dirattr', 'yes');
  setXattr(`${low}/d/e/f.txt`, 'trusted.overlay.redirect', 'x'); // private: never copied
  const tm = { sec: 1500000000, nsec: 123456789 };
  const dtm = { sec: 1400000000, nsec: 987654321 };
  // set ns times on the lower entries directly
  const ts = (s: { sec: number; nsec: number }) => s.sec + s.nsec / 1e9;
  fs.utimesSync(`${low}/d/e/f.txt`, ts(tm), ts(tm));
  fs.utimesSync(`${low}/d/e`, ts(dtm), ts(dtm));
  const before = fs.statSync(`${low}/d/e/f.txt`, { bigint: true });
  const dirBefore = fs.statSync(`${low}/d/e`, { bigint: true });
  const lowTree = readTree(low);

  const node = f.node('d/e/f.txt');
  const ino = f.u.getattr(node).ino;
  f.u.setxattr(node, 'user.extra', Buffer.from('1'), 0); // any change copies up

  const up = f.br.up!;
  const st = fs.statSync(`${up}/d/e/f.txt`, { bigint: true });
  assert.equal(st.mode & 0o7777n, 0o640n);
  assert.equal(st.uid, 1234n);
  assert.equal(st.gid, 2345n);
  assert.equal(st.mtimeNs, before.mtimeNs, 'mtime to the nanosecond');
  assert.equal(fs.readFileSync(`${up}/d/e/f.txt`, 'utf8'), 'data');
  assert.equal(getXattr(`${up}/d/e/f.txt`, 'user.color'), 'blue');
  assert.equal(getXattr(`${up}/d/e/f.txt`, 'user.extra'), '1');
  assert.equal(getXattr(`${up}/d/e/f.txt`, 'trusted.overlay.redirect'), undefined);
  const dst = fs.statSync(`${up}/d/e`, { bigint: true });
  assert.equal(dst.mode & 0o7777n, 0o750n);
  assert.equal(dst.uid, 42n);
  assert.equal(dst.mtimeNs, dirBefore.mtimeNs);
  assert.equal(getXattr(`${up}/d/e`, 'user.dirattr'), 'yes');
  assert.equal(fs.statSync(`${up}/d`).mode & 0o7777, 0o711);
  assert.equal(f.u.getattr(node).ino, ino, 'ino kept');
  assert.deepEqual(f.u.listxattr(node).sort(), ['user.color', 'user.extra']);
  assert.deepEqual(readTree(low), lowTree, 'lower branch unchanged');
  assert.deepEqual(f.ls('d/e'), ['f.txt']);
});

test('open for read does not copy up; O_RDWR and O_TRUNC do', (t) => {
  const f = setup(t, { up: {}, low: { a: 'aaa', b: 'bbb', c: 'ccc' } });
  f.u.release(f.u.open(f.node('a'), O_RDONLY, ctx));
  assert.deepEqual(f.raw('up'), {});
  f.u.release(f.u.open(f.node('b'), O_RDWR, ctx));
  assert.deepEqual(f.raw('up'), { b: 'bbb' });
  const fh = f.u.open(f.node('c'), O_WRONLY | O_TRUNC, ctx);
  f.u.write(fh, Buffer.from('new'), 0, 3, 0);
  f.u.release(fh);
  assert.deepEqual(f.raw('up'), { b: 'bbb', c: 'new' });
  assert.deepEqual(f.raw('low'), { a: 'aaa', b: 'bbb', c: 'ccc' });
});

test('truncate and chmod/chown/utimens copy up; a read handle opened before keeps the old data', (t) => {
  const f = setup(t, { up: {}, low: { a: 'hello world' } });
  const node = f.node('a');
  const rfh = f.u.open(node, O_RDONLY, ctx);
  f.u.setattr(node, { size: 5 }, ctx);
  assert.equal(f.cat('a'), 'hello');
  const b = Buffer.alloc(20);
  assert.equal(b.subarray(0, f.u.read(rfh, b, 0, 20, 0)).toString(), 'hello world');
  f.u.release(rfh);
  const a = f.u.setattr(node, { mode: 0o600, uid: 7, gid: 8, mtime: { sec: 1000, nsec: 5 }, atime: 'omit' }, ctx);
  assert.equal(a.mode & 0o7777, 0o600);
  assert.equal(a.uid, 7);
  assert.equal(a.gid, 8);
  assert.equal(a.mtimeSec, 1000);
  assert.equal(a.mtimeNsec, 5);
  assert.deepEqual(f.raw('low'), { a: 'hello world' });
  assert.equal(f.raw('up').a, 'hello');
});

test('symlinks, fifos and empty dirs are copied up as what they are', (t) => {
  const f = setup(t, { up: {}, low: { l: { symlink: 'target' }, p: { fifo: true }, d: { inner: 'i' } } });
  f.u.setattr(f.node('l'), { uid: 5, gid: 5 }, ctx);
  f.u.setattr(f.node('p'), { mode: 0o600 }, ctx);
  f.u.setattr(f.node('d'), { mode: 0o700 }, ctx);
  assert.deepEqual(f.raw('up'), { l: { symlink: 'target' }, p: { fifo: true }, d: {} });
  assert.deepEqual(f.ls('d'), ['inner']);
  assert.equal(fs.lstatSync(`${f.br.up}/l`).uid, 5);
});

test('crash safety: leftovers in the work dir are never visible and are cleaned at start', (t) => {
  const f = setup(t, { up: { a: '1' }, low: { b: '2' } });
  const work = `${f.br.up}/.wh..wh.layerfs.work`;
  assert.ok(fs.statSync(work).isDirectory());
  fs.writeFileSync(`${work}/cu-999-1`, 'half a file');
  assert.deepEqual(f.ls(), ['a', 'b']);
  f.remount();
  assert.deepEqual(fs.readdirSync(work), []);
  writeFile(f.u, f.u.root, 'c', 'x');
  assert.deepEqual(f.ls(), ['a', 'b', 'c']);
  assert.deepEqual(fs.readdirSync(work), [], 'no temp file left after a copy-up');
});

test('a user-given workdir on the same filesystem is used', (t) => {
  const f = setup(t, { up: {}, low: { a: 'x' } });
  const wd = `${f.dir}/work`;
  fs.mkdirSync(wd);
  f.u.close();
  const u = new Union(`dirs=${f.br.up}=rw:${f.br.low}=ro,workdir=${wd}`);
  t.after(() => u.close());
  u.setattr(u.lookup(u.root, 'a'), { mode: 0o600 }, ctx);
  assert.equal(u.info().workdir, wd);
  assert.deepEqual(f.raw('up'), { a: 'x' });
  assert.deepEqual(fs.readdirSync(wd), [], 'nothing left in the workdir');
});


test('the invalidator hears about directories whose attributes change by a copy-up', (t) => {
  const f = setup(t, { up: {}, low: { a: { x: { p: 'f' } } } });
  const a = f.node('a');
  assert.equal(f.u.getattr(a).nlink, 3, 'a lower-only dir shows its real link count');
  const seen: string[] = [];
  f.u.setInvalidator((n) => seen.push(n.name));
  f.u.setxattr(f.node('a/x/p'), 'user.k', Buffer.from('1'), 0);
  assert.deepEqual(seen.sort(), ['a', 'x']);
  assert.equal(f.u.getattr(a).nlink, 1, 'now merged, as overlayfs says');
  f.u.setInvalidator(null);
});

test('copy-up of a hard-linked lower file leaves the merged root times alone (the private index dir too)', (t) => {
  const f = setup(t, { up: {}, low: { a: { dir: {} }, c: 'hi' } });
  const { up, low } = f.br as { up: string; low: string };
  fs.linkSync(`${low}/c`, `${low}/a/y`);
  const old = new Date('2020-01-01T00:00:00Z');
  fs.utimesSync(up, old, old);
  const u = f.remount();
  const root = () => fs.statSync(up, { bigint: true }).mtimeNs;
  const before = root();
  let a = u.lookup(u.root, 'a');
  const y = u.lookup(a, 'y');
  u.release(u.open(y, O_RDWR, ctx));
  a = u.lookup(u.root, 'a');
  assert.equal(u.getattr(u.lookup(a, 'y')).nlink, 2, 'still two names of one file');
  assert.equal(root(), before, 'the upper root (the merged root) keeps its mtime');
});
