/**
 * The seed walkthrough (shared/seed/union-file-system.md) through a real kernel mount: build the
 * aufs/ tree, mount with the seed's exact dirs= string, list, append through the mount, check where
 * the copy-up landed, read the branch listing, unmount; then the same with `mount -t fuse.layerfs`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, cli, daemonPids, stopDaemons, forceUnmount, isMounted, ok, requireFuse, sh, waitFor } from '../helpers/mount.js';

const DIRS = 'dirs=./container-layer:./image-layer4:./image-layer3:./image-layer2:./image-layer1';
const FILES = ['container-layer.txt', 'image-layer1.txt', 'image-layer2.txt', 'image-layer3.txt', 'image-layer4.txt'];

function buildSeed(root: string): string {
  const aufs = join(root, 'aufs');
  mkdirSync(join(aufs, 'container-layer'), { recursive: true });
  writeFileSync(join(aufs, 'container-layer', 'container-layer.txt'), 'I am container layer\n');
  for (let i = 1; i <= 4; i++) {
    mkdirSync(join(aufs, `image-layer${i}`));
    writeFileSync(join(aufs, `image-layer${i}`, `image-layer${i}.txt`), `I am image layer ${i}\n`);
  }
  mkdirSync(join(aufs, 'mnt'));
  return aufs;
}

const LINK = '/usr/local/bin/layerfs';

test('seed walkthrough through a real FUSE mount (layerfs mount, info, umount; mount -t fuse.layerfs)', async (t) => {
  if (!requireFuse(t)) return;
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-seed-')));
  const aufs = buildSeed(root);
  const mnt = join(aufs, 'mnt');
  const run = join(root, 'run');
  const env = { ...process.env, LAYERFS_RUN_DIR: run };
  // What /usr/local/bin/layerfs was before (undefined: absent), restored afterwards.
  let savedLink: string | undefined | null = null;
  t.after(async () => {
    forceUnmount(mnt);
    await stopDaemons(run);
    if (savedLink !== null) {
      rmSync(LINK, { force: true });
      if (savedLink !== undefined) symlinkSync(savedLink, LINK);
    }
    rmSync(root, { recursive: true, force: true });
  });

  // mount with the seed's exact string, from the aufs dir
  ok(sh(`${BIN} mount -o ${DIRS} ./mnt`, { cwd: aufs, env, timeoutMs: 30_000 }), 'layerfs mount');
  assert.ok(isMounted(mnt), 'mnt is in the mount table as fuse.layerfs');

  // ls / tree
  assert.deepEqual(ok(sh('ls mnt', { cwd: aufs }), 'ls').trim().split('\n'), FILES);
  const ref = join(root, 'ref', 'mnt');
  mkdirSync(ref, { recursive: true });
  for (const f of FILES) writeFileSync(join(ref, f), '');
  assert.equal(ok(sh('tree mnt/', { cwd: aufs }), 'tree'), ok(sh('tree mnt/', { cwd: join(root, 'ref') }), 'tree ref'));
  assert.match(ok(sh('tree mnt/', { cwd: aufs }), 'tree'), /├── container-layer\.txt\n├── image-layer1\.txt\n├── image-layer2\.txt\n├── image-layer3\.txt\n└── image-layer4\.txt\n/);
  assert.equal(readFileSync(join(mnt, 'container-layer.txt'), 'utf8'), 'I am container layer\n');
  assert.equal(readFileSync(join(mnt, 'image-layer2.txt'), 'utf8'), 'I am image layer 2\n');

  // the branch listing, as `cat /sys/fs/aufs/si_*/*` shows it
  const siDirs = readdirSync(run).filter((n) => n.startsWith('si_'));
  assert.equal(siDirs.length, 1);
  assert.match(siDirs[0]!, /^si_[0-9a-f]{16}$/);
  assert.deepEqual(readdirSync(join(run, siDirs[0]!)).sort(), ['br0', 'br1', 'br2', 'br3', 'br4', 'brid0', 'brid1', 'brid2', 'brid3', 'brid4', 'xi_path']);
  const catLines = ok(sh(`cat ${run}/si_*/*`), 'cat si').trim().split('\n');
  assert.deepEqual(catLines.slice(0, 10), [
    `${aufs}/container-layer=rw`,
    `${aufs}/image-layer4=ro`,
    `${aufs}/image-layer3=ro`,
    `${aufs}/image-layer2=ro`,
    `${aufs}/image-layer1=ro`,
    '64',
    '65',
    '66',
    '67',
    '68',
  ]);
  assert.equal(catLines.length, 11);
  assert.ok(catLines[10]!.startsWith(`${aufs}/container-layer/`), `xi_path in the rw branch: ${catLines[10]}`);
  const info = cli(['info'], { env });
  // every mount's branches as the si files list them, then the daemon serving the mount
  const [branches, daemon] = ok(info, 'layerfs info').split('\n\n');
  assert.equal(branches + '\n', catLines.join('\n') + '\n');
  assert.match(daemon!, /^daemon: pid \d+, 1 mount, rss [\d.]+ MB .*\d+ requests served/);
  assert.ok(daemon!.includes(`  ${mnt}: `), daemon);
  assert.equal(ok(cli(['info', mnt], { env }), 'layerfs info MNT'), catLines.join('\n') + '\n');
  const json = JSON.parse(ok(cli(['info', '--json', mnt], { env }), 'layerfs info --json')) as { mountpoint: string; branches: { path: string; perm: string }[] };
  assert.equal(json.mountpoint, mnt);
  assert.deepEqual(json.branches.map((b) => b.perm), ['rw', 'ro', 'ro', 'ro', 'ro']);

  // the write, as in the seed (bash's echo -e)
  ok(sh(`echo -e "\\nwrite to mnt's image-layer1.txt" >> mnt/image-layer4.txt`, { cwd: aufs }), 'append');
  const expected = "I am image layer 4\n\nwrite to mnt's image-layer1.txt\n";
  assert.equal(ok(sh('cat mnt/image-layer4.txt', { cwd: aufs }), 'cat mnt'), expected);
  assert.equal(readFileSync(join(aufs, 'image-layer4', 'image-layer4.txt'), 'utf8'), 'I am image layer 4\n', 'lower branch unchanged');
  assert.equal(readFileSync(join(aufs, 'container-layer', 'image-layer4.txt'), 'utf8'), expected, 'copied up into the container layer');
  assert.deepEqual(ok(sh('ls', { cwd: join(aufs, 'container-layer') }), 'ls container-layer').trim().split(/\s+/), ['container-layer.txt', 'image-layer4.txt']);

  // layerfs umount: unmounted, the daemon no longer serves it, runtime dir cleaned
  const pids = daemonPids(mnt, run);
  assert.equal(pids.length, 1, 'one daemon serves the mount');
  ok(cli(['umount', mnt], { env }), 'layerfs umount');
  assert.ok(!isMounted(mnt));
  assert.ok(await waitFor(() => daemonPids(mnt, run).length === 0), 'the daemon freed the mount');
  assert.deepEqual(readdirSync(run).filter((n) => n.startsWith('si_')), []);
  assert.deepEqual(readdirSync(mnt), [], 'the mount point is an empty dir again');

  // mount(8) with the fuse.layerfs type: mount.fuse3 runs `layerfs none MNT -o ...` found through PATH
  // (a dangling or foreign link, e.g. left by another checkout's setup, is replaced for the test)
  if (!existsSync(LINK) || realpathSync(LINK) !== realpathSync(BIN)) {
    const st = lstatSync(LINK, { throwIfNoEntry: false });
    assert.ok(!st || st.isSymbolicLink(), `${LINK} is not a symlink: not replacing it`);
    savedLink = st ? readlinkSync(LINK) : undefined;
    rmSync(LINK, { force: true });
    symlinkSync(BIN, LINK);
  }
  ok(sh(`mount -t fuse.layerfs -o ${DIRS} none mnt`, { cwd: aufs, env, timeoutMs: 30_000 }), 'mount -t fuse.layerfs');
  assert.ok(isMounted(mnt));
  assert.match(readFileSync('/proc/self/mounts', 'utf8'), new RegExp(`^none ${mnt} fuse\\.layerfs `, 'm'));
  assert.deepEqual(ok(sh('ls mnt', { cwd: aufs }), 'ls').trim().split('\n'), FILES);
  assert.equal(readFileSync(join(mnt, 'image-layer4.txt'), 'utf8'), expected, 'the copied-up file is seen after remount');
  assert.equal(readdirSync(run).filter((n) => n.startsWith('si_')).length, 1);
  ok(sh('umount mnt', { cwd: aufs }), 'plain umount');
  assert.ok(!isMounted(mnt));
  assert.ok(await waitFor(() => daemonPids(mnt, run).length === 0), 'the daemon freed the mount after plain umount');
  assert.ok(await waitFor(() => readdirSync(run).filter((n) => n.startsWith('si_')).length === 0), 'runtime dir removed');
});
