/**
 * The resident daemon: many mounts in one process, started race-free by concurrent clients,
 * fault isolation between mounts, every way of unmounting frees the mount, idle exit leaving
 * nothing behind, `layerfs info` showing the daemon.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN, cli, forceUnmount, isMounted, ok, pidAlive, requireFuse, residentDaemons, sh, stopDaemons, waitFor } from '../helpers/mount.js';
import { request } from '../../src/daemon/client.js';
import type { DaemonStatus } from '../../src/daemon/protocol.js';

function scratch(t: { after(fn: () => Promise<void> | void): void }, name: string, n: number) {
  const root = realpathSync(mkdtempSync(join(tmpdir(), `layerfs-${name}-`)));
  const run = join(root, 'run');
  mkdirSync(join(root, 'lo'));
  writeFileSync(join(root, 'lo', 'hello.txt'), 'hello\n');
  const mnts: string[] = [];
  for (let i = 0; i < n; i++) {
    for (const d of ['up', 'work', 'mnt']) mkdirSync(join(root, `${d}${i}`));
    mnts.push(join(root, `mnt${i}`));
  }
  t.after(async () => {
    for (const m of mnts) forceUnmount(m);
    await stopDaemons(run);
    rmSync(root, { recursive: true, force: true });
  });
  const opts = (i: number): string => `lowerdir=${root}/lo,upperdir=${root}/up${i},workdir=${root}/work${i}`;
  return { root, run, mnts, opts, env: { ...process.env, LAYERFS_RUN_DIR: run } };
}

/** Run the CLI without blocking this process (so that several run at once). */
function cliAsync(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI_MAIN, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr });
    });
  });
}

function daemonFiles(run: string): string[] {
  return existsSync(run) ? readdirSync(run).filter((n) => n.endsWith('.sock') || n.endsWith('.pid') || n.startsWith('si_')) : [];
}

test('concurrent mounts start one daemon, which serves them all; every unmount frees its mount; idle exit leaves nothing', async (t) => {
  if (!requireFuse(t)) return;
  const { run, mnts, opts, env } = scratch(t, 'many', 4);
  const denv = { ...env, LAYERFS_DAEMON_IDLE_MS: '500' };
  // no daemon yet: four clients at once, in the three command forms
  const rs = await Promise.all([
    cliAsync(['mount', '-o', opts(0), mnts[0]!], denv),
    cliAsync(['-o', opts(1), mnts[1]!], denv),
    cliAsync(['overlay', mnts[2]!, '-o', opts(2)], denv),
    cliAsync(['mount', '-o', opts(3), mnts[3]!], denv),
  ]);
  rs.forEach((r, i) => assert.equal(r.status, 0, `mount ${i}: ${r.stderr}`));
  const daemons = residentDaemons(run);
  assert.equal(daemons.length, 1, 'one daemon');
  const pid = daemons[0]!;
  for (const m of mnts) {
    assert.ok(isMounted(m));
    assert.equal(readFileSync(join(m, 'hello.txt'), 'utf8'), 'hello\n');
  }
  assert.match(readFileSync('/proc/self/mounts', 'utf8'), new RegExp(`^overlay ${mnts[2]} fuse\\.layerfs `, 'm'));
  // a process per mount no more: the mounts' pids are the daemon's
  const infos = JSON.parse(ok(cli(['info', '--json'], { env }), 'info --json')) as { pid: number }[];
  assert.deepEqual(infos.map((i) => i.pid), [pid, pid, pid, pid]);

  const status = (): Promise<DaemonStatus> =>
    request({ op: 'info' }, { start: false }).then((r) => {
      assert.ok(r && r.ok && r.status, 'info reply');
      return r.status;
    });
  process.env.LAYERFS_RUN_DIR = run;
  t.after(() => {
    delete process.env.LAYERFS_RUN_DIR;
  });
  assert.equal((await status()).mounts.length, 4);

  // umount(8), layerfs umount, umount -l: each frees its mount in the daemon
  ok(sh(`umount ${mnts[0]}`), 'umount');
  ok(cli(['umount', mnts[1]!], { env }), 'layerfs umount');
  ok(sh(`umount -l ${mnts[2]}`), 'umount -l');
  let st = await status();
  for (let i = 0; i < 100 && st.mounts.length > 1; i++) {
    await new Promise((r) => setTimeout(r, 50));
    st = await status();
  }
  assert.deepEqual(st.mounts.map((m) => m.mountpoint), [mnts[3]], 'only the last mount is still held');
  assert.ok(pidAlive(pid), 'the daemon serves on');
  assert.equal(readFileSync(join(mnts[3]!, 'hello.txt'), 'utf8'), 'hello\n');
  ok(cli(['umount', mnts[3]!], { env }), 'layerfs umount (last)');
  assert.ok(await waitFor(() => !pidAlive(pid), 10_000), 'the daemon exits after its idle time');
  await waitFor(() => daemonFiles(run).length === 0, 5_000); // the supervisor follows its daemon out a moment later
  assert.deepEqual(daemonFiles(run), [], 'no socket, pid file or si_ dir left');
  assert.deepEqual(readdirSync(join(run, 'mounts')), []);
});

test('a throwing handler answers EIO on its mount only; a mount whose serving thread dies is detached; the others keep serving', async (t) => {
  if (!requireFuse(t)) return;
  const { run, mnts, opts } = scratch(t, 'fault', 3);
  const saved = { run: process.env.LAYERFS_RUN_DIR, hooks: process.env.LAYERFS_DAEMON_TEST_HOOKS };
  process.env.LAYERFS_RUN_DIR = run;
  process.env.LAYERFS_DAEMON_TEST_HOOKS = '1'; // the daemon this test starts accepts unionModule
  t.after(() => {
    if (saved.run === undefined) delete process.env.LAYERFS_RUN_DIR;
    else process.env.LAYERFS_RUN_DIR = saved.run;
    if (saved.hooks === undefined) delete process.env.LAYERFS_DAEMON_TEST_HOOKS;
    else process.env.LAYERFS_DAEMON_TEST_HOOKS = saved.hooks;
  });
  const faulty = new URL('./faulty-union.js', import.meta.url).href;
  const mount = async (i: number, unionModule?: string): Promise<void> => {
    const r = await request({ op: 'mount', options: opts(i), mountpoint: mnts[i]!, cwd: '/', ...(unionModule ? { unionModule } : {}) });
    assert.ok(r && r.ok, `mount ${i}: ${JSON.stringify(r)}`);
  };
  await mount(0);
  await mount(1, faulty);
  await mount(2, faulty);
  const [pid] = residentDaemons(run);
  assert.ok(pid);

  // a bug in one mount's handler: that request fails EIO, the mount and the others serve on
  await assert.rejects(stat(join(mnts[1]!, 'boom')), { code: 'EIO' });
  await assert.rejects(stat(join(mnts[1]!, 'other')), { code: 'ENOENT' });
  writeFileSync(join(mnts[1]!, 'f'), 'in memory\n');
  assert.equal(readFileSync(join(mnts[1]!, 'f'), 'utf8'), 'in memory\n');
  assert.equal(readFileSync(join(mnts[0]!, 'hello.txt'), 'utf8'), 'hello\n');

  // one mount's serving thread dies mid-request: that request fails, that mount is detached
  const crashed = await Promise.race([
    stat(join(mnts[2]!, 'crash')).then(
      () => 'answered',
      (e: NodeJS.ErrnoException) => e.code ?? 'error',
    ),
    new Promise<string>((r) => setTimeout(() => r('hung'), 20_000)),
  ]);
  assert.notEqual(crashed, 'hung', 'the request on the dead mount does not hang');
  assert.notEqual(crashed, 'answered');
  assert.ok(await waitFor(() => !isMounted(mnts[2]!), 10_000), 'the dead mount is detached');
  assert.ok(pidAlive(pid!), 'the daemon lives');
  assert.equal(readFileSync(join(mnts[0]!, 'hello.txt'), 'utf8'), 'hello\n', 'mount 0 serves on');
  assert.equal(readFileSync(join(mnts[1]!, 'f'), 'utf8'), 'in memory\n', 'mount 1 serves on');
  const r = await request({ op: 'info' }, { start: false });
  assert.ok(r && r.ok && r.status);
  assert.deepEqual(r.status.mounts.map((m) => m.mountpoint).sort(), [mnts[0], mnts[1]].sort());
  assert.ok(r.status.requests > 0);
  // a mount on the freed mount point works again
  await mount(2);
  assert.equal(readFileSync(join(mnts[2]!, 'hello.txt'), 'utf8'), 'hello\n');
});

test('a mount error reaches the client as one line; the daemon survives it', async (t) => {
  if (!requireFuse(t)) return;
  const { root, run, mnts, opts, env } = scratch(t, 'err', 1);
  const r1 = cli(['-o', `lowerdir=${root}/missing,upperdir=${root}/up0,workdir=${root}/work0`, mnts[0]!], { env });
  assert.equal(r1.status, 1);
  assert.equal(r1.stderr.trimEnd().split('\n').length, 1, r1.stderr);
  assert.match(r1.stderr, /^layerfs: mount .*missing/);
  const [pid] = residentDaemons(run);
  assert.ok(pid && pidAlive(pid), 'the daemon started and lives on');
  ok(cli(['-o', opts(0), mnts[0]!], { env }), 'then mounting works');
  assert.deepEqual(residentDaemons(run), [pid], 'the same daemon serves it');
});

test('mounts of the same lower layer share its listings in the daemon; each still sees only its own upper', async (t) => {
  if (!requireFuse(t)) return;
  const { root, run, mnts, opts } = scratch(t, 'share', 3);
  for (const d of ['a', 'a/b', 'c']) mkdirSync(join(root, 'lo', d), { recursive: true });
  for (const f of ['a/one', 'a/b/two', 'c/three']) writeFileSync(join(root, 'lo', f), `${f}\n`);
  const other = join(root, 'lo2');
  mkdirSync(join(other, 'x'), { recursive: true });
  const saved = process.env.LAYERFS_RUN_DIR;
  process.env.LAYERFS_RUN_DIR = run;
  t.after(() => {
    if (saved === undefined) delete process.env.LAYERFS_RUN_DIR;
    else process.env.LAYERFS_RUN_DIR = saved;
  });
  const status = async (): Promise<DaemonStatus> => {
    const r = await request({ op: 'info' }, { start: false });
    assert.ok(r && r.ok && r.status, 'info reply');
    return r.status;
  };
  const walk = (dir: string): string[] => (readdirSync(dir, { recursive: true }) as string[]).sort();
  for (const i of [0, 1]) {
    const r = await request({ op: 'mount', options: opts(i), mountpoint: mnts[i]!, cwd: '/' });
    assert.ok(r && r.ok, `mount ${i}: ${JSON.stringify(r)}`);
  }
  const r2 = await request({ op: 'mount', options: `lowerdir=${other},upperdir=${root}/up2,workdir=${root}/work2`, mountpoint: mnts[2]!, cwd: '/' });
  assert.ok(r2 && r2.ok, `mount 2: ${JSON.stringify(r2)}`);
  const tree = ['a', 'a/b', 'a/b/two', 'a/one', 'c', 'c/three', 'hello.txt'];
  assert.deepEqual(walk(mnts[0]!), tree);
  assert.deepEqual(walk(mnts[1]!), tree);
  assert.deepEqual(walk(mnts[2]!), ['x']);
  const st = await status();
  const by = (m: string) => st.mounts.find((x) => x.mountpoint === m)!;
  assert.equal(by(mnts[0]!).thread, by(mnts[1]!).thread, 'mounts of one lower are served by one thread');
  assert.ok(by(mnts[0]!).lowerListingsRead > 0, 'the first mount read the lower listings');
  assert.equal(by(mnts[1]!).lowerListingsRead, 0, 'the second mount read none: it shares the first one\'s');
  assert.ok(by(mnts[2]!).lowerListingsRead > 0, 'another lower is read by its own mount');
  assert.equal(st.threads, 1);

  // semantics hold: each mount writes its own upper and sees only its own changes
  writeFileSync(join(mnts[1]!, 'a', 'mine'), 'mount 1\n');
  rmSync(join(mnts[0]!, 'a', 'one'));
  rmSync(join(mnts[0]!, 'c'), { recursive: true });
  assert.deepEqual(walk(mnts[0]!), ['a', 'a/b', 'a/b/two', 'hello.txt']);
  assert.deepEqual(walk(mnts[1]!), ['a', 'a/b', 'a/b/two', 'a/mine', 'a/one', 'c', 'c/three', 'hello.txt']);
  assert.equal(readFileSync(join(mnts[1]!, 'a', 'one'), 'utf8'), 'a/one\n');
  assert.ok(existsSync(join(root, 'up1', 'a', 'mine')) && !existsSync(join(root, 'up0', 'a', 'mine')));
  assert.deepEqual(readdirSync(join(root, 'lo', 'a')).sort(), ['b', 'one'], 'the lower layer is never written');

  // a mount that ends lets go of its share; the other keeps serving from the listings
  ok(sh(`umount ${mnts[0]}`), 'umount 0');
  let left = (await status()).mounts.length;
  for (let i = 0; i < 200 && left !== 2; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = (await status()).mounts.length;
  }
  assert.equal(left, 2);
  assert.deepEqual(walk(mnts[1]!), ['a', 'a/b', 'a/b/two', 'a/mine', 'a/one', 'c', 'c/three', 'hello.txt']);
});
