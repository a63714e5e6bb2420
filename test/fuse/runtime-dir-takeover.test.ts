/**
 * The runtime dir's mount entries while a mount is taken over (README "Surviving a daemon crash"):
 * the entry names the dead daemon until the next one writes it again. A listing must not remove it
 * then (it would remove the mount from `layerfs info`, or even the next daemon's fresh entry), and
 * a client asking about that mount waits for the takeover.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findMountAfterTakeover, listMounts, type MountInfo } from '../../src/fuse/runtime-dir.js';

const deadPid = (): number => spawnSync('true').pid!;

function setup(t: { after(fn: () => void): void }, supervisorPid: number) {
  const run = mkdtempSync(join(tmpdir(), 'layerfs-rdtk-'));
  const old = process.env.LAYERFS_RUN_DIR;
  process.env.LAYERFS_RUN_DIR = run;
  t.after(() => {
    if (old === undefined) delete process.env.LAYERFS_RUN_DIR;
    else process.env.LAYERFS_RUN_DIR = old;
    rmSync(run, { recursive: true, force: true });
  });
  mkdirSync(join(run, 'mounts'));
  writeFileSync(join(run, 'supervisor-1.pid'), `${supervisorPid}\n`);
  const file = join(run, 'mounts', 'm1.json');
  const entry = (pid: number, supervision?: string): string => {
    const info: MountInfo = { id: 'm1', mountpoint: '/mnt/x', source: 'layerfs', pid, options: '', branches: [], xiPath: '', startedAt: '2026-12-05T00:00:00Z', ...(supervision ? { supervision } : {}) };
    return JSON.stringify(info);
  };
  return { run, file, entry };
}

test('a dead daemon\'s entry while the supervisor lives: kept, left out without a wait', (t) => {
  const { file, entry } = setup(t, process.pid);
  writeFileSync(file, entry(deadPid()));
  assert.deepEqual(listMounts(), []);
  assert.ok(existsSync(file), 'the entry stays for the next daemon');
});

test('a client waiting for the takeover gets the entry the next daemon writes', (t) => {
  const { file, entry } = setup(t, process.pid);
  writeFileSync(file, entry(deadPid()));
  // the "next daemon" (another process: the wait blocks this one) writes it again after 300 ms
  const writer = spawn(process.execPath, ['-e', `setTimeout(() => require('fs').writeFileSync(${JSON.stringify(file)}, ${JSON.stringify(entry(process.pid))}), 300)`]);
  t.after(() => writer.kill());
  const t0 = Date.now();
  const got = listMounts({ waitTakeoverMs: 5000 });
  assert.equal(got.length, 1);
  assert.equal(got[0]!.pid, process.pid);
  assert.ok(Date.now() - t0 < 4000, 'answered once taken over, not after the whole wait');
});

test('not taken over within the wait, or no supervisor alive, or not supervised: a dead mount\'s entry, removed', (t) => {
  const a = setup(t, process.pid);
  writeFileSync(a.file, a.entry(deadPid()));
  assert.deepEqual(listMounts({ waitTakeoverMs: 100 }), []);
  assert.equal(existsSync(a.file), false, 'removed after the wait');

  writeFileSync(a.file, a.entry(deadPid(), 'restarts: not supervised (supervise=off)'));
  assert.deepEqual(listMounts(), []);
  assert.equal(existsSync(a.file), false, 'an unsupervised mount is not waited for');

  const b = setup(t, deadPid());
  writeFileSync(b.file, b.entry(deadPid()));
  assert.deepEqual(listMounts(), []);
  assert.equal(existsSync(b.file), false, 'no supervisor: removed at once');
});

test('findMountAfterTakeover waits without blocking (services call it)', async (t) => {
  const { file, entry } = setup(t, process.pid);
  writeFileSync(file, entry(deadPid()));
  setTimeout(() => writeFileSync(file, entry(process.pid)), 200);
  const m = await findMountAfterTakeover('/mnt/x');
  assert.equal(m?.pid, process.pid);
  assert.equal(await findMountAfterTakeover('/mnt/none'), undefined);
});
