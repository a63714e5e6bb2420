/**
 * Serving mounts: foreground with request tracing; in the background the resident daemon
 * (src/daemon): SIGTERM, the fuse-overlayfs option form, and the programmatic
 * startMount/stopMount/listMounts API. test/daemon/ covers the daemon itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN, cli, daemonPids, forceUnmount, isMounted, ok, pidAlive, requireFuse, residentDaemons, stopDaemons, waitFor } from '../helpers/mount.js';
import { listMounts } from '../../src/fuse/index.js';
import { startMount, stopMount } from '../../src/daemon/index.js';

function scratch(t: { after(fn: () => void): void }, name: string) {
  const root = realpathSync(mkdtempSync(join(tmpdir(), `layerfs-${name}-`)));
  const mnt = join(root, 'mnt');
  const run = join(root, 'run');
  for (const d of ['up', 'lo', 'work', 'mnt']) mkdirSync(join(root, d));
  writeFileSync(join(root, 'lo', 'hello.txt'), 'hello\n');
  t.after(async () => {
    forceUnmount(mnt);
    await stopDaemons(run);
    rmSync(root, { recursive: true, force: true });
  });
  return { root, mnt, run, env: { ...process.env, LAYERFS_RUN_DIR: run } };
}

test('-f -d serves in the foreground, traces requests, and SIGTERM unmounts and exits 0', async (t) => {
  if (!requireFuse(t)) return;
  const { root, mnt, env } = scratch(t, 'fg');
  const child = spawn(process.execPath, [CLI_MAIN, 'mount', '-f', '-d', '-o', `lowerdir=${root}/lo,upperdir=${root}/up,workdir=${root}/work`, mnt], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  assert.ok(await waitFor(() => isMounted(mnt), 15_000), `mounted in the foreground; stderr: ${stderr}`);
  assert.equal(readFileSync(join(mnt, 'hello.txt'), 'utf8'), 'hello\n');
  writeFileSync(join(mnt, 'new.txt'), 'new\n');
  assert.equal(readFileSync(join(root, 'up', 'new.txt'), 'utf8'), 'new\n', 'overlay-style upperdir receives writes');
  mkdirSync(join(mnt, 'd'));
  writeFileSync(join(mnt, 'd', 'f'), '');
  assert.throws(() => rmdirSync(join(mnt, 'd')), { code: 'ENOTEMPTY' });
  await waitFor(() => /RMDIR/.test(stderr), 2000);
  assert.match(stderr, /INIT nodeid=0 .* -> \d+/);
  assert.match(stderr, /LOOKUP nodeid=1 .* -> \d+/);
  assert.match(stderr, /CREATE nodeid=1 .* -> \d+/);
  assert.match(stderr, /RMDIR nodeid=1 .* -> ENOTEMPTY/);
  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 10_000))]);
  assert.equal(code, 0, `exit status after SIGTERM; stderr tail: ${stderr.slice(-500)}`);
  assert.ok(!isMounted(mnt), 'unmounted');
});

test('SIGTERM to the resident daemon unmounts its mounts and leaves nothing in the runtime dir', async (t) => {
  if (!requireFuse(t)) return;
  const { root, mnt, run, env } = scratch(t, 'term');
  ok(cli(['-o', `lowerdir=${root}/lo,upperdir=${root}/up,workdir=${root}/work`, mnt], { env }), 'fuse-overlayfs form without a command');
  assert.ok(isMounted(mnt));
  const [pid] = daemonPids(mnt, run);
  assert.ok(pid && pidAlive(pid), 'daemon runs');
  assert.deepEqual(residentDaemons(run), [pid], 'the resident daemon serves it');
  assert.equal(readdirSync(run).filter((n) => n.startsWith('si_')).length, 1);
  process.kill(pid, 'SIGTERM');
  assert.ok(await waitFor(() => !pidAlive(pid)), 'daemon exited');
  assert.ok(!isMounted(mnt));
  // the supervisor follows its daemon out a moment later
  const left = (): string[] => readdirSync(run).filter((n) => n.startsWith('si_') || n.endsWith('.sock') || n.endsWith('.pid'));
  await waitFor(() => left().length === 0, 5_000);
  assert.deepEqual(left(), []);
  assert.deepEqual(readdirSync(join(run, 'mounts')), []);
});

test('startMount / listMounts / stopMount', async (t) => {
  if (!requireFuse(t)) return;
  const { root, mnt, run } = scratch(t, 'api');
  const saved = process.env.LAYERFS_RUN_DIR;
  process.env.LAYERFS_RUN_DIR = run;
  t.after(() => {
    if (saved === undefined) delete process.env.LAYERFS_RUN_DIR;
    else process.env.LAYERFS_RUN_DIR = saved;
  });
  const { id, pid } = await startMount({ options: `dirs=${root}/up=rw:${root}/lo=ro`, mountpoint: mnt, source: 'mysrc' });
  assert.match(id, /^[0-9a-f]{16}$/);
  assert.ok(pidAlive(pid));
  assert.deepEqual(residentDaemons(run), [pid]);
  assert.match(readFileSync('/proc/self/mounts', 'utf8'), new RegExp(`^mysrc ${mnt} fuse\\.layerfs `, 'm'));
  const mounts = listMounts();
  assert.equal(mounts.length, 1);
  assert.equal(mounts[0]!.id, id);
  assert.equal(mounts[0]!.mountpoint, mnt);
  assert.deepEqual(mounts[0]!.branches.map((b) => `${b.path}=${b.perm}`), [`${root}/up=rw`, `${root}/lo=ro`]);
  assert.ok(existsSync(join(run, `si_${id}`, 'br0')));
  assert.equal(readFileSync(join(mnt, 'hello.txt'), 'utf8'), 'hello\n');
  await assert.rejects(startMount({ options: `dirs=${root}/up`, mountpoint: mnt }), /busy/);
  await stopMount(mnt);
  assert.ok(!isMounted(mnt));
  assert.deepEqual(listMounts(), [], 'stopMount waits until the daemon freed the mount');
  assert.ok(!existsSync(join(run, `si_${id}`)));
  await assert.rejects(stopMount(mnt), /not a layerfs mount point/);
  await assert.rejects(startMount({ options: `dirs=${root}/missing`, mountpoint: mnt }), /missing/);
  assert.ok(!isMounted(mnt));
});
