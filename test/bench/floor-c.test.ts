/**
 * floor-c (native/floor-server.c through bench/floor-c-serve.ts): a real mount over a small union
 * of two overlay-format layers shows what kernel overlayfs shows of the same layers (names, types,
 * modes, owners, sizes, link targets, mtimes; a directory of 600 names read in several batches),
 * takes a chmod in memory, and unmounts leaving no server running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMounted, pidsMentioning } from '../../bench/mount.js';
import { fuseUnavailable, REPO, waitFor } from '../helpers/mount.js';
import { runLogged } from '../helpers/run-logged.js';

/** One line per entry under `root`, sorted: path, type and mode, owner, size, mtime, link target. */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      const link = st.isSymbolicLink() ? ` -> ${readlinkSync(p)}` : '';
      const size = st.isDirectory() ? '' : ` ${st.size}`;
      out.push(`${r} ${st.mode.toString(8)} ${st.uid}:${st.gid}${size} ${Math.floor(st.mtimeMs / 1000)}${link}`);
      if (st.isDirectory()) walk(p, r);
    }
  };
  walk(root, '');
  return out.sort();
}

test('floor-c serves the merged tree as kernel overlayfs shows it, chmod included, and exits on unmount', async () => {
  const why = fuseUnavailable();
  if (why !== null) assert.fail(`FUSE mount tests cannot run: ${why}`);
  const root = mkdtempSync(join(tmpdir(), 'floor-c-test-'));
  const [top, low, mnt, ovl] = ['top', 'low', 'mnt', 'ovl'].map((d) => join(root, d)) as [string, string, string, string];
  for (const d of [top, low, mnt, ovl]) mkdirSync(d);
  const log = join(root, 'log');
  try {
    // low: a tree with files of several sizes, a symlink, a fifo, a wide dir; top hides and adds
    mkdirSync(join(low, 'etc/conf.d'), { recursive: true });
    writeFileSync(join(low, 'etc/hosts'), '127.0.0.1 localhost\n');
    writeFileSync(join(low, 'etc/gone'), 'hidden by a whiteout\n');
    writeFileSync(join(low, 'etc/conf.d/big'), Buffer.alloc(300_000, 7));
    chmodSync(join(low, 'etc/conf.d/big'), 0o640);
    lchownSync(join(low, 'etc/conf.d/big'), 123, 456);
    symlinkSync('../etc/hosts', join(low, 'etc/link'));
    runLogged('mkfifo', [join(low, 'etc/fifo')], log);
    mkdirSync(join(low, 'wide'));
    for (let i = 0; i < 600; i++) writeFileSync(join(low, 'wide', `name-with-some-length-${i}`), 'x'.repeat(i % 7));
    utimesSync(join(low, 'etc/hosts'), 1_000_000, 1_000_000);
    mkdirSync(join(top, 'etc'));
    runLogged('mknod', [join(top, 'etc/gone'), 'c', '0', '0'], log); // overlay whiteout
    writeFileSync(join(top, 'etc/hosts'), 'the upper copy wins\n');
    writeFileSync(join(top, 'new-on-top'), 'n');

    runLogged('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${top}:${low}`, ovl], log);
    const want = listing(ovl);
    const dumps = (): string[] => readdirSync(tmpdir()).filter((n) => /^floor-c-\d+\.dump$/.test(n));
    const dumpsBefore = dumps();
    runLogged(process.execPath, [join(REPO, 'dist/bench/floor-c-serve.js'), `lowerdir=${top}:${low}`, mnt], log);
    assert.deepEqual(dumps(), dumpsBefore, 'the server removed its dump file');
    assert.ok(isMounted(mnt), 'floor-c is mounted when its launcher returns');
    const servers = pidsMentioning(mnt);
    assert.equal(servers.length, 1, 'one server process serves the mount');
    assert.deepEqual(listing(mnt), want, 'the same tree as kernel overlayfs');
    assert.ok(!listing(mnt).some((l) => l.startsWith('etc/gone ')), 'the whiteout hides etc/gone');
    assert.equal(readdirSync(join(mnt, 'wide')).length, 600);
    const ls = spawnSync('ls', ['-lR', mnt], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
    assert.equal(ls.status, 0, `ls -lR: ${ls.stderr}`);
    assert.match(ls.stdout, /lrwxrwxrwx .* link -> \.\.\/etc\/hosts/);
    assert.equal(readFileSync(join(mnt, 'etc/conf.d/big')).length, 300_000, 'contents: zeros of the right size');

    const before = lstatSync(join(mnt, 'etc/conf.d/big'));
    chmodSync(join(mnt, 'etc/conf.d/big'), 0o600);
    const after = lstatSync(join(mnt, 'etc/conf.d/big'));
    assert.equal(after.mode & 0o7777, 0o600, 'chmod shows');
    assert.equal(after.uid, 123);
    assert.equal(after.size, before.size);
    assert.equal(lstatSync(join(low, 'etc/conf.d/big')).mode & 0o7777, 0o640, 'the layer is untouched');

    runLogged('umount', [mnt], log);
    assert.ok(await waitFor(() => pidsMentioning(mnt).length === 0, 5_000), 'the server exits on unmount');
  } finally {
    for (const m of [mnt, ovl]) if (isMounted(m)) spawnSync('umount', [m], { timeout: 10_000 });
    rmSync(root, { recursive: true, force: true });
  }
});
