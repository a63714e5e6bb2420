/**
 * Programs run from a mount: execve opens the file with kernel-internal open flags (__FMODE_EXEC)
 * that reach the daemon in FUSE OPEN; the branch must still open it (openat2 refuses unknown bits
 * with EINVAL, which once made every container on layerfs fail with "exec /bin/sh: invalid
 * argument"). Checked for a lower file and a copied-up one, with passthrough on and off.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, daemonPids, forceUnmount, fuseUnavailable, ok, requireFuse, sh, waitFor } from '../helpers/mount.js';

for (const passthrough of ['on', 'off']) {
  describe(`exec from a mount (passthrough=${passthrough})`, () => {
    let root = '';
    let mnt = '';
    const env = (): NodeJS.ProcessEnv => ({ ...process.env, LAYERFS_RUN_DIR: join(root, 'run') });

    before(() => {
      root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-exec-')));
      mnt = join(root, 'merged');
      for (const d of ['lower/bin', 'upper', 'work', 'merged']) mkdirSync(join(root, d), { recursive: true });
      copyFileSync('/bin/echo', join(root, 'lower/bin/echo'));
      copyFileSync('/bin/echo', join(root, 'lower/bin/echo2'));
      if (fuseUnavailable() !== null) return;
      const opts = `lowerdir=${join(root, 'lower')},upperdir=${join(root, 'upper')},workdir=${join(root, 'work')},passthrough=${passthrough}`;
      ok(cli(['-o', opts, mnt], { env: env() }), 'mount');
    });

    after(async () => {
      if (!root) return;
      forceUnmount(mnt);
      await waitFor(() => daemonPids(mnt).length === 0);
      rmSync(root, { recursive: true, force: true });
    });

    test('a lower program runs', (t) => {
      if (!requireFuse(t)) return;
      assert.equal(ok(sh(`${join(mnt, 'bin/echo')} hello`), 'exec lower'), 'hello\n');
    });

    test('a copied-up program runs', (t) => {
      if (!requireFuse(t)) return;
      appendFileSync(join(mnt, 'bin/echo2'), ''); // open for write: copy-up
      assert.ok(existsSync(join(root, 'upper/bin/echo2')), 'copied up');
      assert.equal(ok(sh(`${join(mnt, 'bin/echo2')} copied`), 'exec copied-up'), 'copied\n');
    });
  });
}
