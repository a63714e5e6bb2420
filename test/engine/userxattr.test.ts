/**
 * `userxattr` (the rootless default, as kernel overlayfs's option): the private markers are user.*
 * xattrs: user.overlay.opaque marks an opaque dir (read and written), user.overlay.* names are
 * hidden from and refused to the union's users, and they are never copied up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOptions, formatOptions } from '../../src/engine/index.js';
import { ctx, setup, throwsCode, writeFile } from './fixture.js';
import { getXattr, setXattr } from '../helpers/tree-spec.js';

const always = { cwd: '/base', isWritable: () => true };

test('userxattr parses (flag, on/off, nouserxattr) and formats back; as root the default is off', () => {
  assert.equal(parseOptions('dirs=/a,userxattr', always).userxattr, true);
  assert.equal(parseOptions('dirs=/a,userxattr=on', always).userxattr, true);
  assert.equal(parseOptions('dirs=/a,userxattr=off', always).userxattr, undefined);
  assert.equal(parseOptions('dirs=/a,nouserxattr', always).userxattr, undefined);
  assert.throws(() => parseOptions('dirs=/a,userxattr=maybe', always), /userxattr must be on or off/);
  assert.equal(parseOptions(formatOptions(parseOptions('dirs=/a,userxattr', always)), always).userxattr, true);
  if (process.geteuid?.() === 0 && process.env.LAYERFS_RUN_DIR === undefined) {
    // real root (the tests' normal case): trusted.* as before
    assert.equal(parseOptions('dirs=/a', always).userxattr, undefined);
  }
});

test('userxattr: an opaque dir is marked user.overlay.opaque=y and read back after a remount', (t) => {
  const f = setup(t, { up: {}, low: { d: { old: '1' } } }, 'whiteout=overlay,userxattr');
  f.u.unlink(f.node('d'), 'old');
  f.u.rmdir(f.u.root, 'd');
  f.u.mkdir(f.u.root, 'd', 0o755, ctx);
  assert.equal(getXattr(`${f.br.up}/d`, 'user.overlay.opaque'), 'y');
  assert.equal(getXattr(`${f.br.up}/d`, 'trusted.overlay.opaque'), undefined);
  writeFile(f.u, f.node('d'), 'new', 'n');
  f.remount();
  assert.deepEqual(f.ls('d'), ['new']);
  assert.deepEqual(f.raw('low'), { d: { old: '1' } });
});

test('userxattr: a lower dir marked user.overlay.opaque hides what is below it', (t) => {
  const f = setup(t, { up: {}, mid: { d: { m: 'm' } }, low: { d: { l: 'l' } } }, 'userxattr');
  setXattr(`${f.br.mid}/d`, 'user.overlay.opaque', 'y');
  f.remount();
  assert.deepEqual(f.ls('d'), ['m']);
});

test('userxattr: user.overlay.* is private (hidden, refused, not copied up); other user.* pass', (t) => {
  const f = setup(t, { up: {}, mid: { d: { m: 'm' } }, low: { d: { l: 'l' } } }, 'userxattr');
  setXattr(`${f.br.mid}/d`, 'user.overlay.opaque', 'y');
  setXattr(`${f.br.mid}/d`, 'user.note', 'kept');
  f.remount();
  const d = f.node('d');
  assert.deepEqual(f.u.listxattr(d), ['user.note']);
  throwsCode(() => f.u.getxattr(d, 'user.overlay.opaque'), 'ENODATA');
  throwsCode(() => f.u.setxattr(d, 'user.overlay.opaque', Buffer.from('y'), 0), 'EPERM');
  // a change below copies the dir up: its own opaque mark stays in mid, not on the copy
  writeFile(f.u, d, 'n', 'new');
  assert.equal(getXattr(`${f.br.up}/d`, 'user.note'), 'kept');
  assert.equal(getXattr(`${f.br.up}/d`, 'user.overlay.opaque'), undefined);
  f.remount();
  assert.deepEqual(f.ls('d'), ['m', 'n']);
});
