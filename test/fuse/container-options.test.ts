/**
 * A real mount with the options podman passes a mount program (the fuse-overlayfs form
 * `layerfs -o OPTS MNT`): empty option, trailing comma, volatile, context with a quoted comma,
 * lazytime (warned about, ignored) and uidmapping/gidmapping applied to what stat shows and to chown.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, daemonPids, forceUnmount, fuseUnavailable, ok, requireFuse, sh, waitFor } from '../helpers/mount.js';

describe('container engine mount options on a real mount', () => {
  let root = '';
  let mnt = '';
  let up = '';
  let lo = '';
  let stderr = '';

  before(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-ctropts-')));
    chmodSync(root, 0o755); // uid 100000 reaches the mount
    up = join(root, 'diff');
    lo = join(root, 'l1');
    mnt = join(root, 'merged');
    for (const d of [up, lo, mnt, join(root, 'work')]) mkdirSync(d);
    writeFileSync(join(lo, 'etc-passwd'), 'root:x:0:0\n');
    mkdirSync(join(lo, 'home'));
    chownSync(join(lo, 'home'), 1000, 1000);
    if (fuseUnavailable() !== null) return;
    const opts =
      `lowerdir=${lo},upperdir=${up},workdir=${join(root, 'work')},,volatile,` +
      'context="system_u:object_r:container_file_t:s0:c1,c2",lazytime,' +
      'uidmapping=0:100000:65536,gidmapping=0:100000:65536,';
    const r = cli(['-o', opts, mnt], { cwd: root, env: { ...process.env, LAYERFS_RUN_DIR: join(root, 'run') } });
    ok(r, 'mount');
    stderr = r.stderr;
  });

  after(async () => {
    if (!root) return;
    forceUnmount(mnt);
    await waitFor(() => daemonPids(mnt).length === 0);
    rmSync(root, { recursive: true, force: true });
  });

  test('unknown lazytime: one warning line; the rest accepted silently', (t) => {
    if (!requireFuse(t)) return;
    assert.equal(stderr, "layerfs: ignoring unknown mount option 'lazytime'\n");
  });

  test('stored ids show shifted; chown and new files store them unshifted', (t) => {
    if (!requireFuse(t)) return;
    assert.equal(readFileSync(join(mnt, 'etc-passwd'), 'utf8'), 'root:x:0:0\n');
    assert.deepEqual([statSync(join(mnt, 'etc-passwd')).uid, statSync(join(mnt, 'etc-passwd')).gid], [100000, 100000]);
    assert.equal(statSync(join(mnt, 'home')).uid, 101000);
    assert.equal(ok(sh(`stat -c %u:%g ${join(mnt, 'home')}`), 'stat').trim(), '101000:101000');
    chownSync(join(mnt, 'etc-passwd'), 100033, 100044);
    assert.deepEqual([lstatSync(join(up, 'etc-passwd')).uid, lstatSync(join(up, 'etc-passwd')).gid], [33, 44], 'stored as container ids');
    assert.equal(statSync(join(mnt, 'etc-passwd')).uid, 100033);
    // a file made by host uid 100000 (the container's root) is stored as 0
    ok(sh(`setpriv --reuid=100000 --regid=100000 --clear-groups sh -c 'echo hi > ${join(mnt, 'made')}'`), 'create as 100000');
    assert.deepEqual([lstatSync(join(up, 'made')).uid, lstatSync(join(up, 'made')).gid], [0, 0]);
    assert.equal(statSync(join(mnt, 'made')).uid, 100000);
  });
});
