/**
 * The mount's default cache timeouts are long (an hour: the kernel answers repeated lookups and
 * stats itself), which is only right if every change made through the mount is seen at once. These
 * are the changes the kernel cannot see by itself: a request that changes another node than the one
 * it names (hard links are separate kernel inodes, a directory turns merged when a child is copied
 * up), and names the kernel remembered as absent.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CACHE_TIMEOUT, cacheTimeouts } from '../../src/fuse/session.js';
import { ok, requireFuse, sh, suiteMount } from '../helpers/mount.js';
import * as native from '../../src/sys/native.js';

test('cache timeouts: an hour by default, mount options and explicit values win', () => {
  assert.ok(DEFAULT_CACHE_TIMEOUT >= 60);
  assert.deepEqual(cacheTimeouts({}, {}), { entryTimeout: DEFAULT_CACHE_TIMEOUT, attrTimeout: DEFAULT_CACHE_TIMEOUT, negativeTimeout: DEFAULT_CACHE_TIMEOUT });
  assert.deepEqual(cacheTimeouts({}, { entryTimeout: 1 }), { entryTimeout: 1, attrTimeout: DEFAULT_CACHE_TIMEOUT, negativeTimeout: 1 });
  assert.deepEqual(cacheTimeouts({ attrTimeout: 0 }, { attrTimeout: 5, negativeTimeout: 0 }), {
    entryTimeout: DEFAULT_CACHE_TIMEOUT,
    attrTimeout: 0,
    negativeTimeout: 0,
  });
});

describe('with the default timeouts, changes through the mount show at once', () => {
  const s = suiteMount('layerfs-ctime-', (lo) => {
    mkdirSync(join(lo, 'low'));
    mkdirSync(join(lo, 'low2', 'sub'), { recursive: true });
    writeFileSync(join(lo, 'low', 'f'), 'lower\n');
  });

  const m = (p: string): string => join(s.mnt, p);
  const inMnt = (cmd: string): string => ok(sh(`set -e; ${cmd}`, { cwd: s.mnt }), cmd);

  test('unlink of one name of a hard link: the other name has one link less', (t) => {
    if (!requireFuse(t)) return;
    inMnt('echo x > a && ln a b');
    assert.equal(statSync(m('b')).nlink, 2);
    assert.equal(statSync(m('a')).nlink, 2);
    inMnt('rm a');
    assert.equal(statSync(m('b')).nlink, 1);
  });

  test('rename over one name of a hard link: the other name has one link less', (t) => {
    if (!requireFuse(t)) return;
    inMnt('echo y > c && ln c d && echo z > e');
    assert.equal(statSync(m('d')).nlink, 2);
    inMnt('mv e c');
    assert.equal(statSync(m('d')).nlink, 1);
    assert.equal(statSync(m('c')).nlink, 1);
  });

  test('chmod and write through one name show through the other', (t) => {
    if (!requireFuse(t)) return;
    inMnt('echo 1 > g && ln g h');
    assert.equal(statSync(m('h')).mode & 0o777, 0o644);
    inMnt('chmod 600 g');
    assert.equal(statSync(m('h')).mode & 0o777, 0o600);
    inMnt('echo more >> g');
    assert.equal(statSync(m('h')).size, '1\nmore\n'.length);
  });

  test('a name looked up as absent, then made', (t) => {
    if (!requireFuse(t)) return;
    assert.throws(() => lstatSync(m('later')), { code: 'ENOENT' });
    assert.throws(() => lstatSync(m('later')), { code: 'ENOENT' });
    inMnt('mkdir later');
    assert.ok(lstatSync(m('later')).isDirectory());
    assert.throws(() => lstatSync(m('low/later2')), { code: 'ENOENT' });
    inMnt('echo n > low/later2');
    assert.equal(lstatSync(m('low/later2')).size, 2);
  });

  test('a lower directory turns merged when a child is made in it (nlink 1)', (t) => {
    if (!requireFuse(t)) return;
    assert.equal(statSync(m('low2')).nlink, 3, 'lower-only: the real link count');
    assert.equal(statSync(m('low2/sub')).nlink, 2);
    inMnt('touch low2/sub/new');
    assert.equal(statSync(m('low2')).nlink, 1, 'copied up as a parent: merged');
    assert.equal(statSync(m('low2/sub')).nlink, 1);
  });

  test('an xattr asked for while absent, then set, then removed', (t) => {
    if (!requireFuse(t)) return;
    inMnt('echo v > xf');
    assert.equal(native.tryLgetxattr(m('xf'), 'user.k'), undefined);
    native.lsetxattr(m('xf'), 'user.k', Buffer.from('v1'), 0);
    assert.equal(native.tryLgetxattr(m('xf'), 'user.k')?.toString(), 'v1');
    inMnt('ln xf xg');
    assert.equal(native.tryLgetxattr(m('xg'), 'user.k')?.toString(), 'v1', 'through another name');
    native.lremovexattr(m('xf'), 'user.k');
    assert.equal(native.tryLgetxattr(m('xg'), 'user.k'), undefined);
  });

  test('a copied-up file keeps what stat showed, and its new size shows', (t) => {
    if (!requireFuse(t)) return;
    const before = statSync(m('low/f'));
    inMnt('echo appended >> low/f');
    const now = statSync(m('low/f'));
    assert.equal(now.ino, before.ino);
    assert.equal(now.size, 'lower\nappended\n'.length);
  });
});
