/** resumableState (daemon/supervised-remount.ts): an inode table a successor would reach through its own mount is not opened. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resumableState } from '../../src/daemon/supervised-remount.js';
import type { MountBlob } from '../../src/daemon/supervised.js';

const blob = (xino: string | null, mountpoint = '/srv/mnt'): MountBlob =>
  ({
    info: { mountpoint },
    branches: { branches: [{ path: '/srv/up2', perm: 'rw', brid: 66 }, { path: '/srv/lo', perm: 'ro', brid: 65 }], lastBrid: 66, filesystems: [1], mountRoots: [], xino },
  }) as unknown as MountBlob;

test('a table under the mount point in no branch is left (memory); any other stays', () => {
  const lines: string[] = [];
  const log = (l: string): void => void lines.push(l);
  assert.equal(resumableState(blob('/srv/mnt/.wh..wh.layerfs.xino'), log)?.xino, null);
  assert.match(lines[0]!, /lies under the mount point and in no branch/);
  assert.equal(resumableState(blob('/srv/up/.wh..wh.layerfs.xino'), log)?.xino, '/srv/up/.wh..wh.layerfs.xino');
  assert.equal(resumableState(blob('/srv/up2/.wh..wh.layerfs.xino', '/srv/up2'), log)?.xino, '/srv/up2/.wh..wh.layerfs.xino', 'a branch holds it: opened beneath its fd');
  assert.equal(resumableState(blob(null), log)?.xino, null);
  assert.equal(resumableState({ info: { mountpoint: '/m' } } as unknown as MountBlob, log), undefined);
  assert.equal(lines.length, 1);
});
