/**
 * Rootless podman with layerfs as its overlay mount program, as a normal user runs it: the test
 * user `layerfs-test` (with /etc/subuid and /etc/subgid ranges, helpers/rootless-user.ts) imports a
 * tiny busybox image built here from Debian's busybox-static (no registry), runs a container that
 * reads, writes and deletes lower files, and checks `podman diff` and the container's upper dir
 * (AUFS whiteouts: layerfs, not the kernel, served it). podman runs the mount program inside its
 * user namespace, so this is layerfs's mount(2)-as-namespace-root path. Its storage, runtime and
 * config dirs are under a temp dir; everything is removed and stopped afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireFuse, stopDaemons, waitFor } from '../helpers/mount.js';
import { ensureTestUser, openDevFuse, runAs, type TestUser } from '../helpers/rootless-user.js';

/** What podman needs on these VMs (COMMON.md), plus layerfs as the mount program. */
const podmanArgv = (bin: string): string[] => ['podman', '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--storage-driver', 'overlay', '--storage-opt', `overlay.mount_program=${bin}`];
const RUN_FLAGS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--network', 'none'];
const IMAGE = 'localhost/layerfs-rootless-bb:1';

function missing(): string | null {
  if (!existsSync('/bin/busybox')) return '/bin/busybox missing (Debian package busybox-static)';
  for (const tool of ['podman', 'runc', 'newuidmap']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} missing (podman, runc, uidmap)`;
  }
  return null;
}

/** A root filesystem tar: busybox and a few applet links, /hello.txt, /etc/keep.txt. */
function buildRootfsTar(dir: string): string {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(join(rootfs, 'etc'));
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'ls', 'cat', 'echo', 'rm', 'mkdir', 'mv']) symlinkSync('busybox', join(rootfs, 'bin', a));
  writeFileSync(join(rootfs, 'hello.txt'), 'hello from the image\n');
  writeFileSync(join(rootfs, 'etc', 'keep.txt'), 'kept\n');
  const tar = join(dir, 'rootfs.tar');
  const r = spawnSync('tar', ['-C', rootfs, '--numeric-owner', '--owner=0', '--group=0', '-cf', tar, '.'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return tar;
}

test('rootless podman runs a container on layerfs (mount program inside its user namespace): run, diff, upper dir', { timeout: 300_000 }, async (t) => {
  if (!requireFuse(t)) return;
  const why = missing();
  if (why) {
    if (process.env.CI) assert.fail(`rootless podman test cannot run: ${why}`);
    t.skip(why);
    return;
  }
  const u = ensureTestUser();
  if (typeof u === 'string') {
    if (process.env.CI) assert.fail(`rootless podman test cannot run: ${u}`);
    t.skip(u);
    return;
  }
  const restoreFuse = openDevFuse();
  const root = mkdtempSync(join(tmpdir(), 'layerfs-rootless-podman-'));
  chmodSync(root, 0o755);
  const home = join(root, 'home');
  const run = join(home, 'run');
  for (const d of [home, run]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const tar = buildRootfsTar(root);
  for (const p of [home, run, tar]) chownSync(p, u.uid, u.gid);
  const env = {
    HOME: home,
    XDG_RUNTIME_DIR: run,
    XDG_DATA_HOME: join(home, 'data'),
    XDG_CONFIG_HOME: join(home, 'config'),
    LAYERFS_DAEMON_IDLE_MS: '1000',
  };
  const podman = (args: string[], timeoutMs = 120_000) => runAs(u as TestUser, [...podmanArgv((u as TestUser).bin), ...args], env, { timeoutMs });
  try {
    const imp = podman(['import', tar, IMAGE]);
    assert.equal(imp.status, 0, `podman import: ${imp.stderr}`);

    const r = podman(['run', '--rm', ...RUN_FLAGS, IMAGE, 'sh', '-c', 'cat /hello.txt; echo hi > /x; cat /x; rm /hello.txt; ls /']);
    assert.equal(r.status, 0, `podman run --rm: ${r.stderr}`);
    assert.equal(r.stdout, 'hello from the image\nhi\n' + ['bin', 'dev', 'etc', 'proc', 'run', 'sys', 'x'].join('\n') + '\n');

    const c = podman(['run', '--name', 'c1', ...RUN_FLAGS, IMAGE, 'sh', '-c', 'echo new > /etc/new.txt; rm /hello.txt; mkdir /made; mv /etc/keep.txt /etc/moved.txt']);
    assert.equal(c.status, 0, `podman run: ${c.stderr}`);
    const diff = podman(['diff', 'c1']);
    assert.equal(diff.status, 0, `podman diff: ${diff.stderr}`);
    const lines = diff.stdout.trim().split('\n').sort();
    for (const want of ['A /etc/new.txt', 'A /etc/moved.txt', 'D /etc/keep.txt', 'D /hello.txt', 'A /made', 'C /etc']) assert.ok(lines.includes(want), `podman diff has '${want}': ${lines.join(', ')}`);

    // the upper dir was written by layerfs in the overlay format podman reads (as the kernel and
    // fuse-overlayfs write it): a 0/0 character device for the deleted name, no AUFS file
    const ins = podman(['inspect', 'c1', '--format', '{{.GraphDriver.Data.UpperDir}}']);
    assert.equal(ins.status, 0, ins.stderr);
    const upper = ins.stdout.trim();
    const wh = lstatSync(join(upper, 'hello.txt'), { throwIfNoEntry: false });
    assert.ok(wh?.isCharacterDevice() && wh.rdev === 0, `0/0 whiteout in ${upper}: ${readdirSync(upper).join(' ')}`);
    assert.ok(!existsSync(join(upper, '.wh.hello.txt')), 'no AUFS whiteout next to it');
    assert.ok(existsSync(join(upper, '.wh..wh.layerfs.xino')), 'layerfs inode table in the upper dir');

    assert.equal(podman(['rm', 'c1']).status, 0);
  } finally {
    podman(['rm', '-a', '-f'], 60_000);
    podman(['system', 'reset', '-f'], 60_000); // removes the storage and stops podman's pause process
    await stopDaemons(join(run, 'layerfs'));
    await waitFor(() => spawnSync('pgrep', ['-u', String(u.uid), '-x', 'podman']).status !== 0, 10_000);
    rmSync(root, { recursive: true, force: true });
    restoreFuse();
  }
});
