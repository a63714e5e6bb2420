/**
 * spin=US: after each reply the serving thread keeps polling /dev/fuse for US microseconds before
 * it sleeps. Both ways of reading (spin=0: blocking reads; spin>0: non-blocking reads + poll) serve
 * a real mount, and an idle mount costs no CPU either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forceUnmount, isMounted, ok, requireFuse, sh } from '../helpers/mount.js';
import { startSession } from '../../src/fuse/session.js';
import { splitOptions } from '../../src/fuse/mount.js';

const memUnion = new URL('./mem-union.js', import.meta.url).href;

test('spin= is a transport option: microseconds, 0 allowed, bad values refused', () => {
  assert.equal(splitOptions('spin=0,dirs=a').spinUs, 0);
  assert.equal(splitOptions('dirs=a,spin=75').spinUs, 75);
  assert.equal(splitOptions('spin=75,dirs=a').unionOptions, 'dirs=a');
  assert.equal(splitOptions('dirs=a').spinUs, undefined);
  for (const bad of ['spin=', 'spin=fast', 'spin=-1', 'spin=1.5', 'spin=1000000']) {
    assert.throws(() => splitOptions(`dirs=a,${bad}`), /spin needs a whole number of microseconds/, bad);
  }
});

for (const spin of [0, 300]) {
  test(`spin=${spin}: a mount serves a burst of requests, then sits idle without using CPU`, async (t) => {
    if (!requireFuse(t)) return;
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-spin-')));
    const mnt = join(root, 'mnt');
    mkdirSync(mnt);
    const saved = process.env.LAYERFS_RUN_DIR;
    process.env.LAYERFS_RUN_DIR = join(root, 'run');
    const s = await startSession({ options: `spin=${spin}`, mountpoint: mnt, unionModule: memUnion });
    t.after(async () => {
      await s.unmount(false).catch(() => forceUnmount(mnt));
      await Promise.race([s.done, new Promise((r) => setTimeout(r, 10_000))]);
      forceUnmount(mnt);
      if (saved === undefined) delete process.env.LAYERFS_RUN_DIR;
      else process.env.LAYERFS_RUN_DIR = saved;
      rmSync(root, { recursive: true, force: true });
    });
    // A separate process asks back to back (the case the spin is for).
    const out = ok(
      sh(`cd '${mnt}' && for i in $(seq 1 200); do echo "line $i" > f$i; done && ls -l | grep -c '^-' && cat f7 f200 && stat -c %s f1`, { timeoutMs: 60_000 }),
      'burst',
    );
    assert.deepEqual(out.trim().split('\n'), ['200', 'line 7', 'line 200', '7']);
    assert.equal(readFileSync(join(mnt, 'f42'), 'utf8'), 'line 42\n');

    // Idle: this process (main thread + serving thread) sleeps.
    const cpu0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 500));
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    assert.ok(cpuMs < 100, `an idle mount used ${cpuMs.toFixed(1)} ms of CPU in 500 ms`);
    assert.ok(isMounted(mnt));
  });
}

test('spin= with a bad value: one-line error, nothing mounted', async (t) => {
  if (!requireFuse(t)) return;
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-spin-')));
  const mnt = join(root, 'mnt');
  mkdirSync(mnt);
  t.after(() => {
    forceUnmount(mnt);
    rmSync(root, { recursive: true, force: true });
  });
  await assert.rejects(startSession({ options: 'spin=soon', mountpoint: mnt, unionModule: memUnion }), /spin needs a whole number/);
  assert.ok(!isMounted(mnt));
});
