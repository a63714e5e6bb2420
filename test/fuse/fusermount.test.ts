/** The fusermount3 side of rootless mounts that needs no mount: the -o list and /etc/fuse.conf. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fusermountOptionString, userAllowOther } from '../../src/fuse/fusermount.js';

test('the -o list for fusermount3: flags, allow_other, default_permissions, fsname escaped, subtype', () => {
  assert.equal(
    fusermountOptionString({ flags: ['ro', 'noatime'], allowOther: false, defaultPermissions: true, source: 'layerfs', subtype: 'layerfs' }),
    'ro,noatime,default_permissions,fsname=layerfs,subtype=layerfs',
  );
  assert.equal(
    fusermountOptionString({ flags: [], allowOther: true, defaultPermissions: false, source: 'a,b\\c', subtype: 'layerfs' }),
    'allow_other,fsname=a\\,b\\\\c,subtype=layerfs',
  );
});

test('user_allow_other is read from fuse.conf as fusermount3 reads it: a line of its own', () => {
  const dir = mkdtempSync(join(tmpdir(), 'layerfs-fuseconf-'));
  try {
    const conf = join(dir, 'fuse.conf');
    writeFileSync(conf, '# user_allow_other\n#user_allow_other\nmount_max = 10\n');
    assert.equal(userAllowOther(conf), false);
    writeFileSync(conf, 'mount_max = 10\nuser_allow_other\n');
    assert.equal(userAllowOther(conf), true);
    assert.equal(userAllowOther(join(dir, 'none')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
