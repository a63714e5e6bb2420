/**
 * FUSE passthrough on a supervised mount, across kill -9 of the daemon (fuse/passthrough-resume.ts):
 * fds held open in passthrough mode go on reading and writing the right data after the takeover
 * (the kernel holds the backing files), a new open of a file still held open shares the dead
 * daemon's registration (a new one would be refused: EBUSY), an open after every fd is closed
 * registers afresh, and none of these reads or writes reaches the daemon as a request. The same
 * after `layerfs daemon restart`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readFileSync, readSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pidAlive, requireFuse, waitFor } from '../helpers/mount.js';
import { supervisedScratch } from '../helpers/supervised-mount.js';

const MB = 1 << 20;

/** 8 MiB no two of whose MiB read the same. */
function pattern(): Buffer {
  const b = Buffer.alloc(8 * MB);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(i, i);
  return b;
}

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, b, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return b.subarray(0, got);
}

test('supervised mount: passthrough fds held across kill -9 read and write the right data, new opens share or register afresh, no READ/WRITE reaches the daemon', async (t) => {
  if (!requireFuse(t)) return;
  const { root, mnt, cli, daemonPid, killAndWait, hold, closeHeld } = supervisedScratch(t, 'pt-takeover', ['lo', 'up']);
  const big = pattern();
  writeFileSync(join(root, 'lo', 'big'), big);
  writeFileSync(join(root, 'lo', 'log.txt'), 'line 1\n');
  const r = cli('mount', '-o', `dirs=${root}/up=rw:${root}/lo=ro`, mnt);
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(cli('info', mnt, '--json').stdout) as { supervision?: string };
  assert.match(info.supervision ?? '', /supervised, passthrough on$/, 'supervised, with passthrough');

  const crash = async (): Promise<void> => {
    await killAndWait();
    readdirSync(mnt); // answered by the new daemon
  };
  /** Requests the serving daemon has served for the mount. */
  const served = (): number => {
    const d = JSON.parse(cli('info', '--daemon', '--json').stdout) as { mounts: { mountpoint: string; requests: number }[] };
    return d.mounts.find((m) => m.mountpoint === mnt)!.requests;
  };

  // a lower file open read-only, a new file and a copied-up one open for writing, all used
  const rd = openSync(join(mnt, 'big'), 'r');
  const wr = openSync(join(mnt, 'new.bin'), 'w+');
  const ap = openSync(join(mnt, 'log.txt'), 'r+');
  hold(rd, wr, ap);
  assert.ok(readAt(rd, 0, MB).equals(big.subarray(0, MB)), 'first MiB read before the crash');
  assert.equal(writeSync(wr, Buffer.alloc(MB, 'a'), 0, MB, 0), MB);
  assert.equal(writeSync(ap, 'LINE', 0), 4);

  await crash();
  const before = served();
  // the held fds: the rest of the lower file (never read: not in any page cache of the mount), more writes
  assert.ok(readAt(rd, MB, 7 * MB).equals(big.subarray(MB)), 'the read-only fd reads the rest of the lower file');
  assert.equal(writeSync(wr, Buffer.alloc(2 * MB, 'b'), 0, 2 * MB, MB), 2 * MB, 'the write fd writes');
  assert.ok(readAt(wr, 0, 3 * MB).equals(Buffer.concat([Buffer.alloc(MB, 'a'), Buffer.alloc(2 * MB, 'b')])), 'and reads back what it wrote');
  assert.equal(writeSync(ap, ' 2', 4), 2);
  assert.equal(readAt(ap, 0, 64).toString(), 'LINE 2\n');
  const afterHeld = served();
  t.diagnostic(`requests for the held fds after the takeover: ${afterHeld - before}`);
  // without passthrough: 7 MiB of READ and 2 MiB of WRITE requests at least (max_write 1 MiB); with it, none
  assert.ok(afterHeld - before < 5, `held fds served by the kernel, not the daemon (${afterHeld - before} requests)`);

  // a second open of each file while the first is held: shares the dead daemon's registration
  const rd2 = openSync(join(mnt, 'big'), 'r');
  const wr2 = openSync(join(mnt, 'new.bin'), 'r');
  const ap2 = openSync(join(mnt, 'log.txt'), 'r');
  hold(rd2, wr2, ap2);
  assert.ok(readAt(rd2, 0, 8 * MB).equals(big), 'a second open reads the same');
  assert.equal(readAt(wr2, 0, 4 * MB).length, 3 * MB);
  assert.equal(readAt(ap2, 0, 64).toString(), 'LINE 2\n');
  // a second crash: the journal the first takeover compacted still says who shares which registration
  await crash();
  const rd3 = openSync(join(mnt, 'big'), 'r');
  hold(rd3);
  assert.ok(readAt(rd3, 4 * MB, 4 * MB).equals(big.subarray(4 * MB)), 'a third open after the second crash');
  assert.ok(readAt(rd, 2 * MB, MB).equals(big.subarray(2 * MB, 3 * MB)), 'the first fd still reads');
  assert.equal(writeSync(wr, 'c', 0), 1, 'the write fd still writes');
  // an upgrade hands over the same way (the old daemon drains, the journal stays)
  const old = daemonPid();
  const rs = cli('daemon', 'restart');
  assert.equal(rs.status, 0, rs.stderr);
  assert.ok(await waitFor(() => daemonPid() !== old && pidAlive(daemonPid()), 10_000), 'a new daemon after the restart');
  const rd4 = openSync(join(mnt, 'big'), 'r');
  hold(rd4);
  assert.ok(readAt(rd4, 0, MB).equals(big.subarray(0, MB)), 'an open after daemon restart shares too');
  assert.ok(readAt(rd, 3 * MB, MB).equals(big.subarray(3 * MB, 4 * MB)));
  closeHeld();

  // every fd closed: the last release closed the registration; new opens register afresh
  const mid = served();
  const again = openSync(join(mnt, 'big'), 'r');
  hold(again);
  assert.ok(readAt(again, 0, 8 * MB).equals(big), 'an open after all were closed reads');
  const w2 = openSync(join(mnt, 'new.bin'), 'r+');
  hold(w2);
  assert.equal(writeSync(w2, 'd', 1), 1);
  assert.equal(readAt(w2, 0, 3).toString(), 'cda');
  closeHeld();
  t.diagnostic(`requests for two fresh opens: ${served() - mid}`);
  assert.ok(served() - mid < 15, `fresh opens are passthrough too (${served() - mid} requests)`);

  assert.equal(readFileSync(join(root, 'up', 'log.txt'), 'utf8'), 'LINE 2\n', 'the copy-up holds the writes');
  assert.equal(readFileSync(join(root, 'lo', 'log.txt'), 'utf8'), 'line 1\n', 'lower branch untouched');
  assert.equal(readFileSync(join(root, 'up', 'new.bin')).length, 3 * MB);
  const after = JSON.parse(cli('info', mnt, '--json').stdout) as { supervision?: string };
  assert.match(after.supervision ?? '', /^restarts: [1-9].*supervised, passthrough on$/);
  assert.equal(cli('umount', mnt).status, 0);
});
