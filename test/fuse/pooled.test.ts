/**
 * Pooling disks through a real FUSE mount: two writable branches on two small tmpfs mounts over a
 * read-only one (what people use mergerfs for). create=mfs sends new files to the emptier disk, so
 * filling one makes writes go on to the other; create=rr falls over when a disk has no room for a
 * new name; a copy-up of a lower file lands where cpup= says; `layerfs info` shows every branch's
 * permission. Everything mounted is unmounted (tmpfs included), the test's daemon stopped.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, daemonPids, forceUnmount, ok, requireFuse, sh, stopDaemons, waitFor } from '../helpers/mount.js';

const KB = 1024;

describe('several writable branches on a real mount', () => {
  let root = '';
  let base = '';
  let env: NodeJS.ProcessEnv = {};
  const tmpfsMounts: string[] = [];
  const fuseMounts: string[] = [];

  before(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-pooled-')));
    base = join(root, 'base');
    mkdirSync(join(base, 'docs'), { recursive: true });
    writeFileSync(join(base, 'docs', 'lower.txt'), 'from the read-only branch\n');
    writeFileSync(join(base, 'seed.txt'), 'seed\n');
    env = { ...process.env, LAYERFS_RUN_DIR: join(root, 'run') };
  });

  after(async () => {
    if (!root) return;
    for (const m of fuseMounts) {
      forceUnmount(m);
      await waitFor(() => daemonPids(m, env.LAYERFS_RUN_DIR).length === 0);
    }
    await stopDaemons(join(root, 'run'));
    for (const m of tmpfsMounts) execFileSync('umount', [m]);
    rmSync(root, { recursive: true, force: true });
  });

  /** A fresh tmpfs disk of `size` (64 inodes) under the test root. */
  function disk(name: string, size = '1m'): string {
    const d = join(root, name);
    mkdirSync(d);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},nr_inodes=64`, 'tmpfs', d]);
    tmpfsMounts.push(d);
    return d;
  }

  function mount(name: string, opts: string): string {
    const mnt = join(root, name);
    mkdirSync(mnt);
    ok(cli(['mount', '-o', opts, mnt], { env }), `mount ${opts}`);
    fuseMounts.push(mnt);
    return mnt;
  }

  function unmount(mnt: string): void {
    ok(cli(['umount', mnt], { env }), `umount ${mnt}`);
  }

  /** Names in a branch, our private state left out. */
  const names = (d: string): string[] => readdirSync(d).filter((n) => !n.startsWith('.wh..wh.')).sort();

  test('create=mfs: new files go to the emptier disk; a full disk sends them on to the other; all stay readable', (t) => {
    if (!requireFuse(t)) return;
    const d1 = disk('mfs1');
    const d2 = disk('mfs2');
    const mnt = mount('mfs', `dirs=${d1}=rw:${d2}=rw:${base}=ro,create=mfs:0`);
    // 10 files of 150 KiB: 1.5 MiB, more than one 1 MiB disk holds
    const data = (i: number): Buffer => Buffer.alloc(150 * KB, 65 + i);
    for (let i = 0; i < 10; i++) writeFileSync(join(mnt, `f${i}`), data(i));
    const on1 = names(d1).filter((n) => n.startsWith('f'));
    const on2 = names(d2).filter((n) => n.startsWith('f'));
    assert.ok(on1.length >= 3 && on2.length >= 3, `spread over both disks: ${on1} | ${on2}`);
    assert.equal(on1.length + on2.length, 10);
    for (let i = 0; i < 10; i++) assert.ok(readFileSync(join(mnt, `f${i}`)).equals(data(i)), `f${i} reads back`);
    assert.deepEqual(readdirSync(mnt).sort(), ['docs', 'f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9', 'seed.txt']);
    // what df shows through the mount: both disks
    const df = ok(sh(`stat -f -c '%b %S' ${mnt}`), 'stat -f').trim().split(' ').map(Number);
    assert.ok(df[0]! * df[1]! > 1.5 * 1024 * KB, `statfs of the pool counts both disks: ${df}`);
    unmount(mnt);
  });

  test('create=mfs picks the emptier disk; create=rr falls over when a disk has no room for a new name', (t) => {
    if (!requireFuse(t)) return;
    const d1 = disk('pick1');
    const d2 = disk('pick2');
    writeFileSync(join(d1, 'already'), Buffer.alloc(600 * KB, 1)); // d1 is the fuller one
    const mnt = mount('pick', `dirs=${d1}=rw:${d2}=rw:${base}=ro,create=mfs:0`);
    writeFileSync(join(mnt, 'new.txt'), 'goes to d2\n');
    assert.ok(existsSync(join(d2, 'new.txt')));
    assert.ok(!existsSync(join(d1, 'new.txt')));
    ok(sh(`mkdir -p ${mnt}/a/b && echo deep > ${mnt}/a/b/c`), 'mkdir -p');
    assert.equal(readFileSync(join(d2, 'a', 'b', 'c'), 'utf8'), 'deep\n');
    unmount(mnt);

    // no inode left on d1: round robin's turn for d1 falls over to d2
    mkdirSync(join(d1, 'fill'));
    for (let i = 0; ; i++) {
      try {
        writeFileSync(join(d1, 'fill', String(i)), '');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw e;
      }
    }
    const rr = mount('rr', `dirs=${d1}=rw:${d2}=rw:${base}=ro,create=rr`);
    for (const n of ['r1', 'r2', 'r3']) writeFileSync(join(rr, n), n);
    for (const n of ['r1', 'r2', 'r3']) {
      assert.ok(existsSync(join(d2, n)), `${n} on d2`);
      assert.equal(readFileSync(join(rr, n), 'utf8'), n);
    }
    // create=tdp (the default) says ENOSPC instead, and leaves nothing
    unmount(rr);
    const tdp = mount('tdp', `dirs=${d1}=rw:${d2}=rw:${base}=ro`);
    const r = sh(`echo x > ${tdp}/t1`);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /No space left on device/);
    assert.ok(!existsSync(join(d2, 't1')) && !existsSync(join(tdp, 't1')));
    unmount(tdp);
  });

  test('a copy-up of a lower file lands where cpup= says; layerfs info shows each branch rw/ro', (t) => {
    if (!requireFuse(t)) return;
    const d1 = disk('cp1');
    const d2 = disk('cp2');
    const bu = mount('bu', `dirs=${d1}=rw:${d2}=rw:${base}=ro,cpup=bu`);
    ok(sh(`echo more >> ${bu}/docs/lower.txt`), 'append');
    assert.equal(readFileSync(join(d2, 'docs', 'lower.txt'), 'utf8'), 'from the read-only branch\nmore\n', 'cpup=bu: the disk nearest above');
    assert.ok(!existsSync(join(d1, 'docs')));
    assert.equal(readFileSync(join(base, 'docs', 'lower.txt'), 'utf8'), 'from the read-only branch\n', 'the read-only branch is untouched');
    assert.equal(statSync(join(d2, 'docs')).mode & 0o7777, statSync(join(base, 'docs')).mode & 0o7777, 'parent copied with its mode');
    const info = ok(cli(['info', bu], { env }), 'info');
    assert.match(info, new RegExp(`^${d1}=rw$`, 'm'));
    assert.match(info, new RegExp(`^${d2}=rw$`, 'm'));
    assert.match(info, new RegExp(`^${base}=ro$`, 'm'));
    assert.match(info, /create=tdp cpup=bu/);
    ok(sh(`rm ${bu}/seed.txt`), 'rm');
    assert.ok(existsSync(join(d2, '.wh.seed.txt')), 'the whiteout goes where the copy-up would');
    unmount(bu);

    const tdp = mount('cptdp', `dirs=${d1}=rw:${d2}=rw:${base}=ro`);
    ok(sh(`touch ${tdp}/docs/lower.txt`), 'touch'); // now on d2: changed in place, no copy-up
    assert.ok(!existsSync(join(d1, 'docs')));
    ok(sh(`echo x > ${tdp}/newtop`), 'create at the root');
    assert.ok(existsSync(join(d1, 'newtop')), 'tdp: the root is on every disk: the topmost');
    // rename(2) of the d2 file over a name on d1 above it is EXDEV (as AUFS): mv copies instead
    ok(sh(`mv ${tdp}/docs/lower.txt ${tdp}/newtop`), 'mv across disks');
    assert.equal(readFileSync(join(tdp, 'newtop'), 'utf8'), 'from the read-only branch\nmore\n');
    assert.equal(readFileSync(join(d1, 'newtop'), 'utf8'), 'from the read-only branch\nmore\n');
    assert.ok(!existsSync(join(tdp, 'docs', 'lower.txt')));
    assert.ok(existsSync(join(d2, 'docs', '.wh.lower.txt')), 'the whiteout next to the removed copy');
    unmount(tdp);
  });
});
