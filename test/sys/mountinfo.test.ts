import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMountPoint, mountTable, parseMountinfo } from '../../src/sys/mountinfo.js';

test('parseMountinfo: mount point, fstype and source, octal escapes decoded, optional fields skipped', () => {
  const text = [
    '22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw',
    '91 29 0:52 / /tmp/with\\040space rw,relatime shared:40 master:1 - fuse.layerfs /a\\054b rw,user_id=0',
    '92 29 0:53 / /var/lib/x rw - overlay overlay rw,lowerdir=/l',
    'garbage',
    '',
  ].join('\n');
  assert.deepEqual(parseMountinfo(text), [
    { mountpoint: '/proc', fstype: 'proc', source: 'proc' },
    { mountpoint: '/tmp/with space', fstype: 'fuse.layerfs', source: '/a,b' },
    { mountpoint: '/var/lib/x', fstype: 'overlay', source: 'overlay' },
  ]);
});

test('mountTable lists / and /proc; isMountPoint follows symlinks and is false for plain or missing dirs', () => {
  const points = mountTable().map((m) => m.mountpoint);
  assert.ok(points.includes('/') && points.includes('/proc'), points.join(' '));
  const dir = mkdtempSync(join(tmpdir(), 'layerfs-mountinfo-'));
  try {
    symlinkSync('/proc', join(dir, 'p'));
    assert.equal(isMountPoint('/proc'), true);
    assert.equal(isMountPoint(join(dir, 'p')), true);
    assert.equal(isMountPoint(dir), false);
    assert.equal(isMountPoint(join(dir, 'missing')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
