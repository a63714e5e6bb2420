import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OPQ, PRIVATE, WH_META, isOpaqueValue, isOverlayWhiteout, isPrivateXattr, whiteoutTarget } from '../../src/format/index.js';
import { S_IFCHR, S_IFREG } from '../../src/sys/constants.js';

test('whiteoutTarget names what a .wh. entry hides, and nothing for meta names', () => {
  assert.equal(whiteoutTarget('.wh.foo'), 'foo');
  assert.equal(whiteoutTarget('.wh..hidden'), '.hidden');
  assert.equal(whiteoutTarget('foo'), undefined);
  assert.equal(whiteoutTarget(OPQ), undefined);
  assert.equal(whiteoutTarget(PRIVATE + '.work'), undefined);
  assert.ok(OPQ.startsWith(WH_META) && PRIVATE.startsWith(WH_META));
});

test('an overlay whiteout is a char device 0/0, nothing else', () => {
  assert.equal(isOverlayWhiteout({ mode: S_IFCHR | 0o644, rdev: 0 }), true);
  assert.equal(isOverlayWhiteout({ mode: S_IFCHR | 0o644, rdev: 0x103 }), false);
  assert.equal(isOverlayWhiteout({ mode: S_IFREG | 0o644, rdev: 0 }), false);
});

test('only the value y marks a dir opaque', () => {
  assert.equal(isOpaqueValue(Buffer.from('y')), true);
  assert.equal(isOpaqueValue(Buffer.from('n')), false);
  assert.equal(isOpaqueValue(Buffer.from('yy')), false);
  assert.equal(isOpaqueValue(undefined), false);
});

test('private xattrs: trusted.overlay.* and .layerfs. components, not names merely containing layerfs', () => {
  assert.ok(isPrivateXattr('trusted.overlay.opaque'));
  assert.ok(isPrivateXattr('trusted.layerfs.merged'));
  assert.ok(!isPrivateXattr('user.layerfs-notes'));
  assert.ok(!isPrivateXattr('user.overlay.opaque'));
});
