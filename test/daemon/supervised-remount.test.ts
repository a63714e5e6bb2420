/**
 * Live branch changes survive a daemon crash (README "Surviving a daemon crash", "Changing branches
 * of a live mount"): after `layerfs mount -o remount,add:...` and `del:`/`mod:`, kill -9 of the
 * serving daemon; the daemon that takes over serves the CURRENT branch list (not the one the mount
 * was made with), with the same branch ids and the same inode numbers, and a file held open across
 * both kills keeps reading.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pidAlive, requireFuse, waitFor } from '../helpers/mount.js';
import { supervisedScratch } from '../helpers/supervised-mount.js';

test('branch changes survive kill -9: an added layer stays (same inode numbers, brid), a deleted one stays gone, mod: keeps its permission, brids are not reused, an open fd reads on', async (t) => {
  if (!requireFuse(t)) return;
  const { root, mnt, cli, killAndWait: kill9, hold, closeHeld } = supervisedScratch(t, 'sup-remount', ['up', 'base', 'gone', 'mid']);
  const killAndWait = (): Promise<void> => kill9(15_000);
  const d = (n: string): string => join(root, n);
  mkdirSync(d('base/dir'));
  writeFileSync(d('base/dir/base.txt'), 'base\n');
  writeFileSync(d('base/held.txt'), 'held open across the kills\n');
  writeFileSync(d('gone/gone.txt'), 'gone\n');
  mkdirSync(d('mid/dir'));
  writeFileSync(d('mid/dir/mid.txt'), 'mid\n');
  writeFileSync(d('mid/shadow.txt'), 'mid copy\n');
  writeFileSync(d('gone/shadow.txt'), 'gone copy\n');
  const ok = (...args: string[]): string => {
    const r = cli(...args);
    assert.equal(r.status, 0, `layerfs ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  // branch lines of `layerfs info MNT`: `path=perm` lines, then the brids
  const info = (): string[] => ok('info', mnt).trim().split('\n').filter((l) => !l.startsWith('restarts:') && !l.endsWith('.xino'));
  const ino = (p: string): number => statSync(join(mnt, p)).ino;
  const held = (): string => {
    const b = Buffer.alloc(64);
    return b.toString('utf8', 0, readSync(fd, b, 0, 64, 0));
  };

  ok('mount', '-o', `dirs=${d('up')}=rw:${d('base')}=ro:${d('gone')}=ro`, mnt);
  assert.deepEqual(info(), [`${d('up')}=rw`, `${d('base')}=ro`, `${d('gone')}=ro`, '64', '65', '66']);
  const fd = openSync(join(mnt, 'held.txt'), 'r');
  hold(fd);
  const baseIno = ino('dir/base.txt');
  const dirIno = ino('dir');
  assert.equal(readFileSync(join(mnt, 'shadow.txt'), 'utf8'), 'gone copy\n');

  // add a layer with a file, read it, then the crash
  ok('mount', '-o', `remount,add:1:${d('mid')}`, mnt);
  assert.equal(readFileSync(join(mnt, 'dir/mid.txt'), 'utf8'), 'mid\n');
  assert.equal(readFileSync(join(mnt, 'shadow.txt'), 'utf8'), 'mid copy\n');
  const midIno = ino('dir/mid.txt');
  const shadowIno = ino('shadow.txt');
  const added = [`${d('up')}=rw`, `${d('mid')}=ro`, `${d('base')}=ro`, `${d('gone')}=ro`, '64', '67', '65', '66'];
  assert.deepEqual(info(), added);
  await killAndWait();
  assert.equal(readFileSync(join(mnt, 'dir/mid.txt'), 'utf8'), 'mid\n', 'the added layer serves after the takeover');
  assert.equal(readFileSync(join(mnt, 'shadow.txt'), 'utf8'), 'mid copy\n', 'the added layer is still above the older ones');
  assert.deepEqual(readdirSync(join(mnt, 'dir')).sort(), ['base.txt', 'mid.txt']);
  assert.equal(ino('dir/mid.txt'), midIno, 'a file of the added layer keeps its inode number');
  assert.equal(ino('shadow.txt'), shadowIno);
  assert.equal(ino('dir/base.txt'), baseIno, 'a file of an older layer keeps its inode number');
  assert.equal(ino('dir'), dirIno, 'a merged directory keeps its number');
  assert.deepEqual(info(), added, 'layerfs info lists the new branch with its brid');
  assert.equal(held(), 'held open across the kills\n');

  // del: an original branch, mod: another; crash again
  ok('mount', '-o', `remount,del:${d('gone')},mod:${d('base')}=rr`, mnt);
  assert.deepEqual(readdirSync(mnt).sort(), ['dir', 'held.txt', 'shadow.txt']);
  await killAndWait();
  assert.deepEqual(readdirSync(mnt).sort(), ['dir', 'held.txt', 'shadow.txt'], "the deleted branch's names stay gone");
  assert.throws(() => statSync(join(mnt, 'gone.txt')), /ENOENT/);
  assert.deepEqual(info(), [`${d('up')}=rw`, `${d('mid')}=ro`, `${d('base')}=rr`, '64', '67', '65']);
  assert.equal(ino('dir/mid.txt'), midIno);
  assert.equal(ino('dir/base.txt'), baseIno);
  assert.equal(held(), 'held open across the kills\n', 'a file held open across both takeovers reads on');

  // branch ids are never reused, across takeovers too: gone comes back with a new one
  ok('mount', '-o', `remount,append:${d('gone')}`, mnt);
  assert.deepEqual(info(), [`${d('up')}=rw`, `${d('mid')}=ro`, `${d('base')}=rr`, `${d('gone')}=ro`, '64', '67', '65', '68']);
  assert.equal(readFileSync(join(mnt, 'gone.txt'), 'utf8'), 'gone\n');
  // writes still go to the rw branch
  writeFileSync(join(mnt, 'dir/new.txt'), 'new\n');
  assert.equal(readFileSync(d('up/dir/new.txt'), 'utf8'), 'new\n');
  closeHeld();
  assert.equal(cli('umount', mnt).status, 0);
});

test('a daemon killed inside a remount: the resent request ends with the change made once (killed after the switch, before the supervisor had the new list; killed after it had it, before the reply)', async (t) => {
  if (!requireFuse(t)) return;
  const { root, mnt, cli, daemonPid } = supervisedScratch(t, 'sup-remount-die', ['up', 'base', 'mid', 'extra'], (r) => ({
    LAYERFS_DAEMON_TEST_HOOKS: '1',
    LAYERFS_TEST_DIE_FILE: join(r, 'die'),
  }));
  const die = join(root, 'die');
  const d = (n: string): string => join(root, n);
  writeFileSync(d('base/base.txt'), 'base\n');
  writeFileSync(d('mid/mid.txt'), 'mid\n');
  writeFileSync(d('extra/extra.txt'), 'extra\n');
  const info = (): string[] => {
    // an open is answered once the new daemon serves, its runtime info written (a stat may come from
    // the kernel's cache, and `info` before that finds the dead daemon's entry only)
    readFileSync(join(mnt, 'base.txt'));
    const r = cli('info', mnt);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim().split('\n').filter((l) => !l.startsWith('restarts:') && !l.endsWith('.xino'));
  };
  assert.equal(cli('mount', '-o', `dirs=${d('up')}=rw:${d('base')}=ro`, mnt).status, 0);
  const baseIno = statSync(join(mnt, 'base.txt')).ino;
  assert.throws(() => statSync(join(mnt, 'mid.txt')), /ENOENT/); // a negative entry the kernel keeps

  for (const [at, change, expect] of [
    ['remount-switched', `add:1:${d('mid')}`, [`${d('up')}=rw`, `${d('mid')}=ro`, `${d('base')}=ro`, '64', '66', '65']],
    ['remount-registered', `append:${d('extra')}`, [`${d('up')}=rw`, `${d('mid')}=ro`, `${d('base')}=ro`, `${d('extra')}=ro`, '64', '66', '65', '67']],
  ] as const) {
    const before = daemonPid();
    writeFileSync(die, at);
    const r = cli('mount', '-o', `remount,${change}`, mnt);
    assert.equal(r.status, 0, `killed at ${at}: ${r.stderr}`);
    assert.throws(() => statSync(die), /ENOENT/, `the daemon reached ${at}`);
    assert.ok(await waitFor(() => daemonPid() !== before && pidAlive(daemonPid()), 15_000), 'a new daemon serves');
    assert.deepEqual(info(), [...expect], `killed at ${at}: the change made once`);
  }
  assert.equal(readFileSync(join(mnt, 'mid.txt'), 'utf8'), 'mid\n');
  assert.equal(readFileSync(join(mnt, 'extra.txt'), 'utf8'), 'extra\n');
  assert.equal(statSync(join(mnt, 'base.txt')).ino, baseIno);
  assert.deepEqual(readdirSync(mnt).sort(), ['base.txt', 'extra.txt', 'mid.txt']);
  // and after one more crash, the list stays
  const before = daemonPid();
  process.kill(before, 'SIGKILL');
  assert.ok(await waitFor(() => daemonPid() !== before && pidAlive(daemonPid()), 15_000));
  assert.equal(info().length, 8);
  assert.equal(readFileSync(join(mnt, 'extra.txt'), 'utf8'), 'extra\n');
  assert.equal(cli('umount', mnt).status, 0);
});
