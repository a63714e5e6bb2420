import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseOptions, formatOptions, Union, validateOptions } from '../../src/engine/index.js';
import { mkTemp } from '../helpers/tree-spec.js';

const always = { cwd: '/base', isWritable: () => true };
const never = { cwd: '/base', isWritable: () => false };

test('dirs= with perms, attributes and AUFS defaults', () => {
  const o = parseOptions('dirs=/a=rw:/b=ro+wh:c:/d=rr+wh', always);
  assert.deepEqual(o.branches, [
    { path: '/a', perm: 'rw', attrs: [] },
    { path: '/b', perm: 'ro', attrs: ['wh'] },
    { path: '/base/c', perm: 'ro', attrs: [] },
    { path: '/d', perm: 'rr', attrs: ['wh'] },
  ]);
  assert.equal(o.whiteout, 'aufs');
  assert.equal(o.dirRename, 'redirect');
  assert.deepEqual(o.extra, {});
  // first branch without perm: rw when writable, else ro; the rest ro
  assert.deepEqual(parseOptions('dirs=./x:./y', always).branches.map((b) => [b.path, b.perm]), [['/base/x', 'rw'], ['/base/y', 'ro']]);
  assert.deepEqual(parseOptions('dirs=./x:./y', never).branches.map((b) => b.perm), ['ro', 'ro']);
});

test('br: and br= forms, extra options, our options and aliases', () => {
  assert.deepEqual(parseOptions('br:/a=rw:/b', always).branches.map((b) => b.path), ['/a', '/b']);
  assert.deepEqual(parseOptions('br=/a:/b=ro', always).branches.map((b) => b.path), ['/a', '/b']);
  const o = parseOptions('rw,dirs=/a:/b,allow_other,suid,whiteout=overlay,dirrename=exdev,xino=x.tbl,fsname=foo', always);
  assert.deepEqual(o.extra, { rw: true, allow_other: true, suid: true, fsname: 'foo' });
  assert.equal(o.whiteout, 'overlay');
  assert.equal(o.dirRename, 'exdev');
  assert.equal(o.xino, '/base/x.tbl');
  assert.equal(parseOptions('dirs=/a,redirect_dir=off', always).dirRename, 'exdev');
  assert.equal(parseOptions('dirs=/a,redirect_dir=on', always).dirRename, 'redirect');
  assert.equal(parseOptions('dirs=/a,dirrename=xdev', always).dirRename, 'exdev');
  const v = parseOptions('dirs=/a,volatile', always);
  assert.equal(v.volatile, true);
  assert.deepEqual(v.extra, {}, 'volatile is ours, not left for the transport to reject');
  assert.equal(parseOptions(formatOptions(v), always).volatile, true);
  assert.equal(parseOptions('dirs=/a', always).volatile, undefined);
});

test('overlay style: leftmost lower is topmost, no upperdir means read-only', () => {
  const o = parseOptions('lowerdir=/l1:/l2,upperdir=/u,workdir=/w', always);
  assert.deepEqual(o.branches, [
    { path: '/u', perm: 'rw', attrs: [] },
    { path: '/l1', perm: 'ro', attrs: [] },
    { path: '/l2', perm: 'ro', attrs: [] },
  ]);
  assert.equal(o.workdir, '/w');
  assert.deepEqual(parseOptions('lowerdir=/l1:l2', always).branches.map((b) => [b.path, b.perm]), [['/l1', 'ro'], ['/base/l2', 'ro']]);
});

test('escaped separators in paths', () => {
  const o = parseOptions('dirs=/a\\:b=rw:/c\\,d,noatime', always);
  assert.deepEqual(o.branches.map((b) => b.path), ['/a:b', '/c,d']);
  assert.deepEqual(o.extra, { noatime: true });
  assert.equal(parseOptions(formatOptions(o), always).branches[0]!.path, '/a:b');
});

test('option syntax errors are one-line EINVAL errors naming the problem', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /no branch/],
    ['rw,allow_other', /no branch/],
    ['dirs=', /no branch/],
    ['whiteout=fancy,dirs=/a', /whiteout must be/],
    ['dirrename=maybe,dirs=/a', /dirrename must be/],
    ['dirs=/a,volatile=yes', /volatile takes no value/],
    ['dirs=/a,lowerdir=/b', /either/],
    ['upperdir=/u', /upperdir needs lowerdir/],
    ['dirs=/a=ro,workdir=/w', /workdir given without a writable branch/],
  ];
  for (const [s, re] of bad) {
    assert.throws(() => parseOptions(s, always), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'EINVAL', s);
      assert.match(e.message, re, s);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  }
});

test('validation: missing, not a dir, twice, nested, rw placement, workdir', (t) => {
  const tmp = mkTemp('layerfs-branch-');
  t.after(() => tmp.cleanup());
  for (const d of ['a', 'b', 'a/inner', 'w', 'u']) fs.mkdirSync(tmp.path(d));
  fs.writeFileSync(tmp.path('file'), 'x');
  const P = (s: string) => parseOptions(s, { cwd: tmp.dir, isWritable: () => true });
  const bad: Array<[string, string, RegExp]> = [
    ['dirs=a:missing', 'ENOENT', /branch 1 does not exist/],
    ['dirs=a:file', 'ENOTDIR', /branch 1 is not a directory/],
    ['dirs=a:b:a', 'EINVAL', /branch given twice/],
    ['dirs=a:./b/../a', 'EINVAL', /branch given twice/],
    ['dirs=a:a/inner', 'EINVAL', /inside branch 0/],
    ['dirs=a/inner:a', 'EINVAL', /inside branch 1/],
    ['dirs=a=ro:b=rw', 'EINVAL', /rw branch must be the topmost/],
    ['dirs=a=ro:b=rw:u=rw', 'EINVAL', /rw branches must be the topmost ones/],
    ['dirs=a=rw:b=ro:u=rw', 'EINVAL', /rw branches must be the topmost ones/],
    ['lowerdir=a,upperdir=u,workdir=missing', 'ENOENT', /workdir does not exist/],
    ['lowerdir=a,upperdir=u,workdir=u', 'EINVAL', /inside each other/],
    ['lowerdir=a,upperdir=b,workdir=a/inner', 'EINVAL', /workdir overlaps branch 1/],
  ];
  for (const [s, code, re] of bad) {
    assert.throws(() => validateOptions(P(s)), (e: Error & { code?: string }) => {
      assert.equal(e.code, code, `${s}: ${e.message}`);
      assert.match(e.message, re, s);
      return true;
    });
    // the Union constructor refuses them the same way
    assert.throws(() => new Union(P(s)), (e: Error & { code?: string }) => e.code === code);
  }
  validateOptions(P('lowerdir=a:b,upperdir=u,workdir=w'));
  validateOptions(P('dirs=a=rw:b=rw:u=ro')); // several rw branches on top (create=/cpup= pooling)
  // workdir on another filesystem: EXDEV (/dev/shm is a tmpfs)
  if (fs.existsSync('/dev/shm') && fs.statSync('/dev/shm').dev !== fs.statSync(tmp.dir).dev) {
    const other = fs.mkdtempSync(path.join('/dev/shm', 'layerfs-w-'));
    t.after(() => fs.rmSync(other, { recursive: true, force: true }));
    assert.throws(() => validateOptions(P(`lowerdir=a,upperdir=u,workdir=${other}`)), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'EXDEV');
      assert.match(e.message, /not on the same filesystem/);
      return true;
    });
  } else {
    assert.fail('need /dev/shm on another filesystem for the EXDEV check');
  }
});

test('relative branch paths resolve against process.cwd() by default', (t) => {
  const tmp = mkTemp('layerfs-branch-');
  t.after(() => tmp.cleanup());
  fs.mkdirSync(tmp.path('x'));
  const cwd = process.cwd();
  process.chdir(tmp.dir);
  try {
    assert.deepEqual(parseOptions('dirs=./x').branches, [{ path: fs.realpathSync(tmp.path('x')), perm: 'rw', attrs: [] }]);
  } finally {
    process.chdir(cwd);
  }
});
