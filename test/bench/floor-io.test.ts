/**
 * The floors doing a union's least disk work, each a real mount over two lower dirs with an upper
 * and a work dir: floor-c-io (native/floor-server.c in its I/O mode, through
 * bench/floor-c-serve.ts with `io`) and floor-io (the Node floor doing the same work through the
 * engine's calls: bench/floor-io-union.ts, through bench/floor-serve.ts with `io`). What lstat
 * shows through the mount is the backing file's inode as it is when looked up (not the copy read
 * at mount; floor-io keeps the size and the mtime's nanoseconds of the mount); the first chmod or
 * truncate of a lower file leaves a whole copy in the upper dir (contents, owner, times, the new
 * mode; parent dirs with their mode and owner), the lower file untouched and nothing in the work
 * dir; the entry is served from the upper copy after, with the same inode number.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  type BigIntStats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMounted, pidsMentioning } from '../../bench/mount.js';
import { fuseUnavailable, REPO, waitFor } from '../helpers/mount.js';
import { runLogged } from '../helpers/run-logged.js';

const lst = (p: string): BigIntStats => lstatSync(p, { bigint: true });

const FLOORS = [
  { name: 'floor-c-io', serve: 'floor-c-serve.js', exact: true },
  // the Node floor's in-memory nodes keep the size read at mount and the mtime as a double
  { name: 'floor-io', serve: 'floor-serve.js', exact: false },
] as const;

for (const { name, serve, exact } of FLOORS) {
  /** What a user compares of two lstat results: type and mode, owner, size, mtime (ns), links. */
  function shown(st: BigIntStats): string {
    if (!exact) return `${st.mode.toString(8)} ${st.uid}:${st.gid} mtime ${st.mtimeMs}`;
    const links = st.isDirectory() ? '' : ` nlink ${st.nlink}`;
    return `${st.mode.toString(8)} ${st.uid}:${st.gid} size ${st.size} mtime ${st.mtimeNs}${links}`;
  }

  test(`${name} shows the backing files as they are at lookup and copies a lower file up whole on chmod`, async () => {
    const why = fuseUnavailable();
    if (why !== null) assert.fail(`FUSE mount tests cannot run: ${why}`);
    const root = mkdtempSync(join(tmpdir(), `${name}-test-`));
    const [top, low, up, wk, mnt] = ['top', 'low', 'up', 'wk', 'mnt'].map((d) => join(root, d)) as [string, string, string, string, string];
    for (const d of [top, low, up, wk, mnt]) mkdirSync(d);
    const log = join(root, 'log');
    try {
      mkdirSync(join(low, 'etc/conf.d'), { recursive: true });
      chmodSync(join(low, 'etc/conf.d'), 0o750);
      lchownSync(join(low, 'etc/conf.d'), 7, 8);
      const data = Buffer.alloc(300_000);
      for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 9)) & 0xff;
      const big = join(low, 'etc/conf.d/big');
      writeFileSync(big, data);
      chmodSync(big, 0o640);
      lchownSync(big, 123, 456);
      utimesSync(big, 1_000_000, 1_000_000);
      writeFileSync(join(low, 'etc/later'), 'before the mount\n');
      writeFileSync(join(low, 'etc/hosts'), 'the lower copy\n');
      symlinkSync('hosts', join(low, 'etc/link'));
      mkdirSync(join(top, 'etc'));
      writeFileSync(join(top, 'etc/hosts'), '127.0.0.1 localhost\n'); // the top layer's wins
      const lowerBig = shown(lst(big));

      runLogged(process.execPath, [join(REPO, 'dist/bench', serve), `lowerdir=${top}:${low},upperdir=${up},workdir=${wk},io`, mnt], log);
      assert.ok(isMounted(mnt), `${name} is mounted when its launcher returns`);
      assert.equal(pidsMentioning(mnt).length, 1, 'one server process serves the mount');

      // changed behind the mount's back, before anything looked it up: lstat shows the file as it is now
      chmodSync(join(low, 'etc/later'), 0o604);
      appendFileSync(join(low, 'etc/later'), 'and after\n');
      utimesSync(join(low, 'etc/later'), 2_000_000, 2_000_000);
      for (const [rel, backing] of [
        ['etc', join(top, 'etc')],
        ['etc/hosts', join(top, 'etc/hosts')],
        ['etc/link', join(low, 'etc/link')],
        ['etc/conf.d', join(low, 'etc/conf.d')],
        ['etc/conf.d/big', big],
        ['etc/later', join(low, 'etc/later')],
      ] as const) {
        assert.equal(shown(lst(join(mnt, rel))), shown(lst(backing)), `${rel}: the backing file's attributes`);
      }
      if (exact) assert.equal(lst(join(mnt, 'etc/later')).size, BigInt('before the mount\nand after\n'.length));
      const ino = lst(join(mnt, 'etc/conf.d/big')).ino;

      chmodSync(join(mnt, 'etc/conf.d/big'), 0o600);
      const copy = join(up, 'etc/conf.d/big');
      const st = lst(copy);
      assert.ok(st.isFile(), 'a copy in the upper dir');
      assert.equal(st.mode & 0o7777n, 0o600n, 'with the new mode');
      assert.equal(`${st.uid}:${st.gid} size ${st.size} mtime ${st.mtimeNs}`, `123:456 size 300000 mtime ${lst(big).mtimeNs}`, 'owner, size, times of the lower file');
      assert.ok(readFileSync(copy).equals(data), 'the same contents');
      assert.equal(shown(lst(big)), lowerBig, 'the lower file untouched');
      assert.ok(readFileSync(big).equals(data));
      const dir = lst(join(up, 'etc/conf.d'));
      assert.equal(`${(dir.mode & 0o7777n).toString(8)} ${dir.uid}:${dir.gid}`, '750 7:8', 'the parent dir made with its mode and owner');
      assert.deepEqual(readdirSync(wk), [], 'nothing left in the work dir');
      const seen = lst(join(mnt, 'etc/conf.d/big'));
      assert.equal(seen.mode & 0o7777n, 0o600n, 'the mount shows the chmod');
      assert.notEqual(st.ino, ino, 'the upper copy is a new inode');
      assert.equal(seen.ino, ino, "the union's inode number kept over copy-up");

      // from now on the upper copy is the backing file: a fresh lookup shows what is done to it
      utimesSync(copy, 3_000_000, 3_000_000);
      writeFileSync('/proc/sys/vm/drop_caches', '2'); // the kernel forgets its dentries: the next lstat is a LOOKUP
      const again = lst(join(mnt, 'etc/conf.d/big'));
      assert.equal(again.mtimeNs, 3_000_000n * 1_000_000_000n, "the upper copy's mtime, not the lower's");
      assert.equal(again.ino, ino, 'the same inode number from a fresh lookup');
      chownSync(join(mnt, 'etc/conf.d/big'), 5, 6);
      assert.equal(`${lst(copy).uid}:${lst(copy).gid}`, '5:6', 'a change of an upper file is made on disk');

      // truncate of a file of the other lower dir: copied up, then cut
      truncateSync(join(mnt, 'etc/hosts'), 5);
      assert.equal(readFileSync(join(up, 'etc/hosts'), 'utf8'), '127.0', 'the upper copy, truncated');
      assert.equal(readFileSync(join(top, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n', 'the lower file untouched');
      if (exact) assert.equal(lst(join(mnt, 'etc/hosts')).size, 5n);
      assert.deepEqual(readdirSync(wk), [], 'nothing left in the work dir');

      runLogged('umount', [mnt], log);
      assert.ok(await waitFor(() => pidsMentioning(mnt).length === 0, 5_000), 'the server exits on unmount');
    } finally {
      if (isMounted(mnt)) spawnSync('umount', [mnt], { timeout: 10_000 });
      rmSync(root, { recursive: true, force: true });
    }
  });
}
