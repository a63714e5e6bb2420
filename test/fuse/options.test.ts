import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitOptions } from '../../src/fuse/mount.js';
import { siLines, type MountInfo } from '../../src/fuse/runtime-dir.js';

test('mount.fuse3 noise (rw,dev,suid,...) is accepted; the union gets only its options', () => {
  const t = splitOptions('rw,dev,suid,exec,relatime,defaults,_netdev,x-systemd.automount,dirs=./a:./b=ro');
  assert.equal(t.unionOptions, 'dirs=./a:./b=ro');
  assert.equal(t.flags, 1 << 21, 'relatime; rw/dev/suid/exec clear their flags');
  assert.ok(t.allowOther && t.defaultPermissions, 'root defaults');
});

test('VFS flags, FUSE switches and timeouts', () => {
  const t = splitOptions('ro,nosuid,nodev,noexec,noatime,noallow_other,nodefault_permissions,entry_timeout=2.5,attr_timeout=0,negative_timeout=0,lowerdir=L1:L2,upperdir=U,workdir=W');
  assert.equal(t.flags, 1 | 2 | 4 | 8 | 1024);
  assert.equal(t.allowOther, false);
  assert.equal(t.defaultPermissions, false);
  assert.equal(t.entryTimeout, 2.5);
  assert.equal(t.attrTimeout, 0);
  assert.equal(t.negativeTimeout, 0);
  assert.equal(t.unionOptions, 'lowerdir=L1:L2,upperdir=U,workdir=W');
  assert.equal(splitOptions('ro,rw').flags, 0, 'the last one wins');
});

test('escaped commas stay inside the union option; unknown options go to the union (which refuses them)', () => {
  assert.equal(splitOptions('dirs=/a\\,b=rw,frob=1').unionOptions, 'dirs=/a\\,b=rw,frob=1');
  assert.throws(() => splitOptions('dirs=a,entry_timeout=soon'), /entry_timeout needs a number/);
});

test('si_ lines: branches, then brids, then xi_path (what cat si_*/* prints)', () => {
  const info: MountInfo = {
    id: '0123456789abcdef',
    mountpoint: '/m',
    source: 'none',
    pid: 1,
    options: '',
    branches: [
      { path: '/a', perm: 'rw', brid: 64 },
      { path: '/b', perm: 'ro+wh', brid: 65 },
    ],
    xiPath: '/a/.xino',
    startedAt: '',
  };
  assert.deepEqual(siLines(info), ['/a=rw', '/b=ro+wh', '64', '65', '/a/.xino']);
});
