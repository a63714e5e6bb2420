/**
 * LAYERFS_MOUNT_TIMING=1: the daemon logs each mount's phases; and the spare serving thread: a
 * mount made after every mount ended (its thread gone) is served, and the daemon still exits idle
 * leaving nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, forceUnmount, isMounted, ok, requireFuse, residentDaemons, sh, stopDaemons, waitFor } from '../helpers/mount.js';

test('LAYERFS_MOUNT_TIMING=1 logs the phases of each mount; mounts after the last one ended are served; idle exit leaves nothing', async (t) => {
  if (!requireFuse(t)) return;
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-timing-')));
  const run = join(root, 'run');
  mkdirSync(join(root, 'lo'));
  writeFileSync(join(root, 'lo', 'hello.txt'), 'hello\n');
  const mnts = [0, 1, 2].map((i) => join(root, `mnt${i}`));
  t.after(async () => {
    for (const m of mnts) forceUnmount(m);
    await stopDaemons(run);
    rmSync(root, { recursive: true, force: true });
  });
  const env = { ...process.env, LAYERFS_RUN_DIR: run, LAYERFS_MOUNT_TIMING: '1', LAYERFS_DAEMON_IDLE_MS: '1500' };
  for (const [i, m] of mnts.entries()) {
    for (const d of [`up${i}`, `work${i}`]) mkdirSync(join(root, d));
    mkdirSync(m);
    ok(cli(['-o', `lowerdir=${root}/lo,upperdir=${root}/up${i},workdir=${root}/work${i}`, m], { env }), `mount ${i}`);
    assert.equal(readFileSync(join(m, 'hello.txt'), 'utf8'), 'hello\n');
    // every mount ended before the next: its serving thread has no mount left
    ok(sh(`umount '${m}'`), `umount ${i}`);
    assert.ok(await waitFor(() => !existsSync(join(run, 'mounts')) || readdirSync(join(run, 'mounts')).every((f) => !f.endsWith('.json'))));
  }
  const log = readdirSync(run).find((f) => /^daemon-\d+\.log$/.test(f));
  assert.ok(log, 'a daemon log');
  const lines = readFileSync(join(run, log), 'utf8').split('\n').filter((l) => l.includes(': timing (ms): '));
  assert.equal(lines.length, 3, lines.join('\n'));
  for (const [i, l] of lines.entries()) {
    assert.match(l, new RegExp(`^layerfs daemon \\d+: mount ${mnts[i]}: timing \\(ms\\): request [\\d.]+, thread [\\d.]+, union [\\d.]+, mount\\(2\\) [\\d.]+, init [\\d.]+, published [\\d.]+, reply [\\d.]+; total [\\d.]+$`));
  }
  // a failed mount says so
  mkdirSync(join(root, 'mnt3'));
  assert.equal(cli(['-o', `lowerdir=${root}/nope,upperdir=${root}/up0,workdir=${root}/work0`, join(root, 'mnt3')], { env }).status, 1);
  assert.ok(!isMounted(join(root, 'mnt3')));
  assert.ok(await waitFor(() => /: timing \(ms\): request [\d.]+, .*; total [\d.]+ \(failed: ENOENT\)$/m.test(readFileSync(join(run, log), 'utf8'))));
  // idle: the daemon (and its spare thread) exit, nothing left but the log
  const pids = residentDaemons(run);
  assert.equal(pids.length, 1);
  assert.ok(await waitFor(() => residentDaemons(run).length === 0, 15_000), 'the daemon exited on its own');
  // its supervisor follows it out (a moment later: it sees the daemon's exit first)
  const resident = (): string[] => readdirSync(run).filter((f) => f.endsWith('.sock') || f.endsWith('.pid'));
  await waitFor(() => resident().length === 0, 5_000);
  assert.deepEqual(resident(), []);
});
