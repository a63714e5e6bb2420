/**
 * The copy-up of a regular file (engine/copy-file.ts): an O_TMPFILE file linked into place, with a
 * setattr's mode and times folded in; what a failure half way leaves (nothing), and a name taken
 * by a racing writer of the branch (replaced, as the rename of the named way did).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { fdops, linkByFd, utimensByFd } from '../../src/branch/index.js';
import { copyFileWays } from '../../src/engine/copy-file.js';
import { ctx, O_WRONLY, setup } from './fixture.js';
import { getXattr, setXattr } from '../helpers/tree-spec.js';

const { copySys } = fdops;

const WORK = '.wh..wh.layerfs.work';

test('chmod of a lower file: the copy has the new mode, the source data, owner, xattrs and times; ino kept, work dir empty', (t) => {
  const f = setup(t, { up: {}, low: { d: { dir: { 'f.txt': { mode: 0o644, content: 'four kib?', uid: 1234, gid: 2345 } } } } });
  const low = `${f.br.low}/d/f.txt`;
  setXattr(low, 'user.color', 'blue');
  fs.utimesSync(low, 1500000000.5, 1400000000.25);
  const src = fs.statSync(low, { bigint: true });
  const node = f.node('d/f.txt');
  const ino = f.u.getattr(node).ino;
  const a = f.u.setattr(node, { mode: 0o4750 }, ctx);
  const up = fs.statSync(`${f.br.up}/d/f.txt`, { bigint: true });
  assert.equal(up.mode & 0o7777n, 0o4750n);
  assert.equal(a.mode & 0o7777, 0o4750, 'the reply shows the new mode');
  assert.equal(up.uid, 1234n);
  assert.equal(up.gid, 2345n);
  assert.equal(up.mtimeNs, src.mtimeNs);
  assert.equal(up.atimeNs, src.atimeNs);
  assert.equal(up.nlink, 1n);
  assert.equal(fs.readFileSync(`${f.br.up}/d/f.txt`, 'utf8'), 'four kib?');
  assert.equal(getXattr(`${f.br.up}/d/f.txt`, 'user.color'), 'blue');
  assert.equal(a.ino, ino);
  assert.equal(fs.statSync(low).mode & 0o7777, 0o644, 'lower untouched');
  assert.deepEqual(fs.readdirSync(`${f.br.up}/${WORK}`), []);
});

test('utimens of a lower file: the times given are the copy\'s, an omitted one stays the source\'s', (t) => {
  const f = setup(t, { up: {}, low: { a: 'x' } });
  fs.utimesSync(`${f.br.low}/a`, 1500000000, 1500000000);
  const src = fs.statSync(`${f.br.low}/a`, { bigint: true });
  const a = f.u.setattr(f.node('a'), { mtime: { sec: 1000, nsec: 5 }, atime: 'omit' }, ctx);
  assert.equal(a.mtimeSec, 1000);
  assert.equal(a.mtimeNsec, 5);
  const up = fs.statSync(`${f.br.up}/a`, { bigint: true });
  assert.equal(up.atimeNs, src.atimeNs);
  assert.equal(up.mtimeNs, 1000n * 1000000000n + 5n);
  const b = f.u.setattr(f.node('a'), { atime: 'now', mtime: 'now' }, ctx);
  assert.ok(b.mtimeSec > 1500000000, 'now on the copy (already up: set on it)');
});

test('a copy-up failing half way (fsync EIO) leaves no name in the upper dir and nothing in the work dir', (t) => {
  const f = setup(t, { up: {}, low: { a: 'data' } });
  const real = copySys.fsync;
  copySys.fsync = () => {
    throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
  };
  try {
    assert.throws(() => f.u.setattr(f.node('a'), { mode: 0o600 }, ctx), (e: NodeJS.ErrnoException) => e.code === 'EIO');
  } finally {
    copySys.fsync = real;
  }
  assert.deepEqual(fs.readdirSync(f.br.up!).filter((n) => n !== WORK && !n.startsWith('.wh..wh.')), []);
  assert.deepEqual(fs.readdirSync(`${f.br.up}/${WORK}`), []);
  assert.equal(f.u.getattr(f.node('a')).mode & 0o7777, 0o644, 'still the lower file');
  f.u.setattr(f.node('a'), { mode: 0o600 }, ctx);
  assert.equal(fs.statSync(`${f.br.up}/a`).mode & 0o7777, 0o600);
});

test('a name a racing writer made in the upper dir meanwhile is replaced by the copy, as a rename into place did', (t) => {
  const f = setup(t, { up: {}, low: { a: 'lower data' } });
  const node = f.node('a'); // looked up: the lower file
  fs.writeFileSync(`${f.br.up}/a`, 'racing writer'); // behind the union's back
  f.u.release(f.u.open(node, O_WRONLY, ctx));
  assert.equal(fs.readFileSync(`${f.br.up}/a`, 'utf8'), 'lower data');
  assert.deepEqual(fs.readdirSync(`${f.br.up}/${WORK}`), []);
});

test('without O_TMPFILE (the named way): the same copy, nothing left in the work dir, also after a failure', (t) => {
  copyFileWays.tmpfile = false;
  t.after(() => (copyFileWays.tmpfile = true));
  const f = setup(t, { up: {}, low: { a: 'data', b: 'more' } });
  setXattr(`${f.br.low}/a`, 'user.color', 'red');
  const src = fs.statSync(`${f.br.low}/a`, { bigint: true });
  const a = f.u.setattr(f.node('a'), { mode: 0o600 }, ctx);
  assert.equal(a.mode & 0o7777, 0o600);
  const up = fs.statSync(`${f.br.up}/a`, { bigint: true });
  assert.equal(up.mode & 0o7777n, 0o600n);
  assert.equal(up.mtimeNs, src.mtimeNs);
  assert.equal(getXattr(`${f.br.up}/a`, 'user.color'), 'red');
  assert.equal(fs.readFileSync(`${f.br.up}/a`, 'utf8'), 'data');
  const real = copySys.fsync;
  copySys.fsync = () => {
    throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
  };
  try {
    assert.throws(() => f.u.setattr(f.node('b'), { mode: 0o600 }, ctx), (e: NodeJS.ErrnoException) => e.code === 'EIO');
  } finally {
    copySys.fsync = real;
  }
  assert.equal(fs.existsSync(`${f.br.up}/b`), false);
  assert.deepEqual(fs.readdirSync(`${f.br.up}/${WORK}`), []);
});

test('the setattr that copied a file up answers with the placed copy\'s lstat (ctime of the link, size, blocks)', (t) => {
  const f = setup(t, { up: {}, low: { d: { dir: { g: 'some data' } } } });
  const a = f.u.setattr(f.node('d/g'), { mode: 0o600 }, ctx);
  const up = fs.lstatSync(`${f.br.up}/d/g`, { bigint: true });
  assert.equal(a.mode, Number(up.mode));
  assert.equal(a.size, Number(up.size));
  assert.equal(a.blocks, Number(up.blocks));
  assert.equal(a.nlink, 1);
  assert.equal(BigInt(a.ctimeSec) * 1000000000n + BigInt(a.ctimeNsec), up.ctimeNs, 'ctime as the link into place left it');
  assert.deepEqual(f.u.getattr(f.node('d/g')), a, 'a later getattr agrees');
});

test('chmod copying up a lower file with two names answers as getattr does after it (the union-wide link count, 2)', (t) => {
  const f = setup(t, { up: {}, low: { d: { dir: { a: 'shared' } } } });
  fs.linkSync(`${f.br.low}/d/a`, `${f.br.low}/d/b`);
  const a = f.u.setattr(f.node('d/a'), { mode: 0o600 }, ctx);
  assert.equal(a.nlink, 2);
  assert.deepEqual(f.u.getattr(f.node('d/a')), a);
  assert.equal(f.u.getattr(f.node('d/b')).nlink, 2, 'the other name counts both');
});

test('where linkat by fd is refused (no CAP_DAC_READ_SEARCH, older kernels) the copy is linked through /proc: the same copy', (t) => {
  const f = setup(t, { up: {}, low: { a: 'first', b: 'second' } });
  linkByFd.ok = false;
  t.after(() => {
    linkByFd.ok = true;
  });
  for (const n of ['a', 'b']) f.u.setattr(f.node(n), { mode: 0o640 }, ctx);
  for (const [n, data] of [['a', 'first'], ['b', 'second']] as const) {
    assert.equal(fs.readFileSync(`${f.br.up}/${n}`, 'utf8'), data);
    assert.equal(fs.statSync(`${f.br.up}/${n}`).mode & 0o7777, 0o640);
  }
  assert.deepEqual(fs.readdirSync(`${f.br.up}/${WORK}`), []);
});

for (const byFd of [true, false]) {
  test(`a copy-up two dirs deep puts its parent's times back ${byFd ? 'through the held dir fd' : 'by path (utimensat without AT_EMPTY_PATH, older kernels)'}: the merged dirs keep the lower's times`, (t) => {
    const f = setup(t, { up: {}, low: { d: { dir: { e: { dir: { a: 'first', b: 'second' } } } } } });
    const low = f.br.low!;
    fs.utimesSync(`${low}/d/e`, 1400000000.25, 1300000000.5);
    fs.utimesSync(`${low}/d`, 1200000000.25, 1100000000.5);
    const e = fs.statSync(`${low}/d/e`, { bigint: true });
    const d = fs.statSync(`${low}/d`, { bigint: true });
    utimensByFd.ok = byFd;
    t.after(() => {
      utimensByFd.ok = true;
    });
    for (const n of ['a', 'b']) f.u.setattr(f.node(`d/e/${n}`), { mode: 0o600 }, ctx);
    for (const [rel, was] of [['d/e', e], ['d', d]] as const) {
      const up = fs.statSync(`${f.br.up}/${rel}`, { bigint: true });
      // (atime: reading the lower dir moved the lower's own, relatime)
      assert.equal(up.mtimeNs, was.mtimeNs, `${rel}: mtime`);
    }
    assert.equal(fs.readFileSync(`${f.br.up}/d/e/b`, 'utf8'), 'second');
    assert.equal(fs.statSync(`${f.br.up}/d/e/a`).mode & 0o7777, 0o600);
  });
}
