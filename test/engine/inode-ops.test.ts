import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ctx, O_RDWR, setup, throwsCode } from './fixture.js';
import { getXattr, setXattr } from '../helpers/tree-spec.js';

test('xattrs pass through, copy up on change, private ones hidden and refused', (t) => {
  const f = setup(t, { up: {}, low: { a: 'a', l: { symlink: 'a' } } });
  setXattr(`${f.br.low}/a`, 'user.k', 'v');
  setXattr(`${f.br.low}/a`, 'trusted.overlay.origin', 'x');
  setXattr(`${f.br.low}/a`, 'user.layerfs.private', 'x');
  const a = f.node('a');
  assert.deepEqual(f.u.listxattr(a), ['user.k']);
  assert.equal(f.u.getxattr(a, 'user.k').toString(), 'v');
  throwsCode(() => f.u.getxattr(a, 'user.none'), 'ENODATA');
  throwsCode(() => f.u.getxattr(a, 'user.layerfs.private'), 'ENODATA');
  assert.deepEqual(f.raw('up'), {}, 'reads do not copy up');
  throwsCode(() => f.u.setxattr(a, 'trusted.overlay.opaque', Buffer.from('y'), 0), 'EPERM');
  throwsCode(() => f.u.removexattr(a, 'user.none'), 'ENODATA');
  assert.deepEqual(f.raw('up'), {});
  throwsCode(() => f.u.setxattr(f.node('l'), 'user.x', Buffer.from('1'), 0), 'EPERM');
  f.u.setxattr(a, 'user.k2', Buffer.from('v2'), 1);
  throwsCode(() => f.u.setxattr(a, 'user.k2', Buffer.from('v3'), 1), 'EEXIST');
  throwsCode(() => f.u.setxattr(a, 'user.k3', Buffer.from('v3'), 2), 'ENODATA');
  f.u.removexattr(a, 'user.k');
  assert.deepEqual(f.u.listxattr(a), ['user.k2']);
  assert.equal(getXattr(`${f.br.low}/a`, 'user.k'), 'v', 'lower untouched');
  assert.equal(getXattr(`${f.br.up}/a`, 'user.k2'), 'v2');
});

test('access checks mode bits for the caller', (t) => {
  const f = setup(t, { up: {}, low: { p: { mode: 0o640, content: 'x', uid: 100, gid: 200 }, x: { mode: 0o644, content: '' } } });
  const p = f.node('p');
  f.u.access(p, 0, { uid: 999, gid: 999 });
  f.u.access(p, 4 | 2, { uid: 100, gid: 1 });
  f.u.access(p, 4, { uid: 5, gid: 200 });
  throwsCode(() => f.u.access(p, 2, { uid: 5, gid: 200 }), 'EACCES');
  throwsCode(() => f.u.access(p, 4, { uid: 5, gid: 5 }), 'EACCES');
  f.u.access(p, 4 | 2, ctx);
  throwsCode(() => f.u.access(f.node('x'), 1, ctx), 'EACCES');
  f.u.access(f.u.root, 1, ctx);
});

test('statfs reports the rw branch filesystem; getattr has nanosecond times', (t) => {
  const f = setup(t, { up: {}, low: { a: 'a' } });
  const s = f.u.statfs(f.u.root);
  const h = fs.statfsSync(f.br.up!);
  assert.equal(s.bsize, h.bsize);
  assert.equal(s.blocks, h.blocks);
  assert.equal(s.namelen, 255);
  fs.utimesSync(`${f.br.low}/a`, 1.5, 1600000000.25);
  const at = f.u.getattr(f.node('a'));
  assert.equal(at.mtimeSec, 1600000000);
  assert.equal(at.mtimeNsec, 250000000);
  assert.equal(at.size, 1);
  assert.equal(at.nlink, 1);
});

test('fallocate, lseek and fsync work on handles', (t) => {
  const f = setup(t, { up: {}, low: { a: 'abc' } });
  const fh = f.u.open(f.node('a'), O_RDWR, ctx);
  f.u.fallocate(fh, 0, 0, 8192);
  assert.equal(f.u.getattr(f.node('a')).size, 8192);
  assert.equal(f.u.lseek(fh, 0, 2), 8192);
  f.u.fsync(fh, false);
  f.u.flush(fh);
  f.u.release(fh);
  throwsCode(() => f.u.read(fh, Buffer.alloc(1), 0, 1, 0), 'EBADF');
});
