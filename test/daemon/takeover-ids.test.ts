/**
 * A file held open across two consecutive daemon crashes of a supervised mount, while the daemon
 * in between looked its parent dir up again (a new node id for it) and renamed that dir: the held
 * fd must still write after the second takeover (it answered EBADF: the dead daemon's id for the
 * dir kept its old name in the journal; fuse/restore.ts). Unit tests of the same without a mount:
 * test/fuse/restore.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { requireFuse } from '../helpers/mount.js';
import { supervisedScratch } from '../helpers/supervised-mount.js';

test('supervised mount: an fd held across two kill -9, its parent dir looked up again and renamed in between, still writes', async (t) => {
  if (!requireFuse(t)) return;
  const { root, mnt, cli, killAndWait: crash, hold, closeHeld } = supervisedScratch(t, 'takeover', ['lo/d/sub', 'up']);
  writeFileSync(join(root, 'lo', 'd', 'f'), 'lower\n');
  writeFileSync(join(root, 'lo', 'd', 'sub', 'g'), 'deep\n');
  // entry_timeout=0: every path walk asks the daemon again (LOOKUP), as the kernel does once an entry expires
  const r = cli('mount', '-o', `dirs=${root}/up=rw:${root}/lo=ro,entry_timeout=0,attr_timeout=0`, mnt);
  assert.equal(r.status, 0, r.stderr);

  const fd = openSync(join(mnt, 'd', 'f'), 'r+');
  const deep = openSync(join(mnt, 'd', 'sub', 'g'), 'r+');
  hold(fd, deep);
  await crash();
  // the new daemon hands out new ids for d and d/sub (their old ids are not resolved yet) ...
  statSync(join(mnt, 'd', 'sub', 'g'));
  // ... then resolves the old ones for the held fds
  assert.equal(writeSync(fd, 'L', 0), 1);
  assert.equal(writeSync(deep, 'D', 0), 1);
  renameSync(join(mnt, 'd'), join(mnt, 'e'));
  await crash();
  assert.equal(writeSync(fd, 'O', 1), 1, 'the fd writes after the second takeover');
  assert.equal(writeSync(deep, 'E', 1), 1, 'so does the fd two dirs down');
  renameSync(join(mnt, 'e', 'sub'), join(mnt, 'sub2'));
  await crash();
  assert.equal(writeSync(fd, 'W', 2), 1, 'and after the third');
  assert.equal(writeSync(deep, 'E', 2), 1);
  closeHeld();
  assert.equal(readFileSync(join(mnt, 'e', 'f'), 'utf8'), 'LOWer\n');
  assert.equal(readFileSync(join(mnt, 'sub2', 'g'), 'utf8'), 'DEEp\n');
  assert.equal(cli('umount', mnt).status, 0);
  assert.equal(readFileSync(join(root, 'lo', 'd', 'f'), 'utf8'), 'lower\n', 'lower branch untouched');
});
