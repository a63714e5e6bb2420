/**
 * A file held open across two consecutive daemon crashes of a supervised mount, while the daemon
 * in between looked its parent dir up again (a new node id for it) and renamed that dir: the held
 * fd must still write after the second takeover (it answered EBADF: the dead daemon's id for the
 * dir kept its old name in the journal; fuse/restore.ts). Unit tests of the same without a mount:
 * test/fuse/restore.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN, forceUnmount, pidAlive, requireFuse, stopDaemons, waitFor } from '../helpers/mount.js';

test('supervised mount: an fd held across two kill -9, its parent dir looked up again and renamed in between, still writes', async (t) => {
  if (!requireFuse(t)) return;
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-takeover-')));
  const run = join(root, 'run');
  const mnt = join(root, 'mnt');
  for (const d of ['lo/d/sub', 'up', 'mnt']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'lo', 'd', 'f'), 'lower\n');
  writeFileSync(join(root, 'lo', 'd', 'sub', 'g'), 'deep\n');
  const env = { ...process.env, LAYERFS_RUN_DIR: run, LAYERFS_DAEMON_IDLE_MS: '300' };
  let fds: number[] = [];
  t.after(async () => {
    for (const fd of fds) {
      try {
        closeSync(fd);
      } catch {
        /* already closed, or the mount is gone */
      }
    }
    forceUnmount(mnt);
    await stopDaemons(run);
    rmSync(root, { recursive: true, force: true });
  });
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI_MAIN, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  // entry_timeout=0: every path walk asks the daemon again (LOOKUP), as the kernel does once an entry expires
  const r = cli('mount', '-o', `dirs=${root}/up=rw:${root}/lo=ro,entry_timeout=0,attr_timeout=0`, mnt);
  assert.equal(r.status, 0, r.stderr);
  const daemonPid = (): number => {
    const f = readdirSync(run).find((x) => /^daemon-\d+\.pid$/.test(x));
    return f ? Number(readFileSync(join(run, f), 'utf8').trim()) : 0;
  };
  const crash = async (): Promise<void> => {
    const pid = daemonPid();
    assert.ok(pid > 0 && pidAlive(pid), 'a serving daemon runs');
    process.kill(pid, 'SIGKILL');
    assert.ok(await waitFor(() => daemonPid() !== pid && pidAlive(daemonPid()), 10_000), 'a new daemon serves');
  };

  const fd = openSync(join(mnt, 'd', 'f'), 'r+');
  const deep = openSync(join(mnt, 'd', 'sub', 'g'), 'r+');
  fds = [fd, deep];
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
  for (const x of fds) closeSync(x);
  fds = [];
  assert.equal(readFileSync(join(mnt, 'e', 'f'), 'utf8'), 'LOWer\n');
  assert.equal(readFileSync(join(mnt, 'sub2', 'g'), 'utf8'), 'DEEp\n');
  assert.equal(cli('umount', mnt).status, 0);
  assert.equal(readFileSync(join(root, 'lo', 'd', 'f'), 'utf8'), 'lower\n', 'lower branch untouched');
});
