/**
 * One rule for the xattrs layerfs keeps to itself (engine/whiteout.ts isPrivateXattr): the union
 * hides them and the store never carries them in a layer. A user's xattr that merely contains
 * "layerfs" (user.layerfs-notes) is kept through import -> container -> commit -> export.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isPrivateXattr } from '../../src/format/index.js';
import { LayerStore } from '../../src/store/store.js';
import { collect, listTar, makeTar, once, tempDir } from './helpers.js';

function getfattr(file: string): Record<string, string> {
  const out = execFileSync('getfattr', ['-h', '-d', '-m', '-', '--absolute-names', file], { encoding: 'utf8' });
  const r: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([^#=][^=]*)="(.*)"$/.exec(line);
    if (m) r[m[1]!] = m[2]!;
  }
  return r;
}

test('the rule: trusted.overlay.* and names with a .layerfs. part are private, other names with "layerfs" are not', () => {
  for (const n of ['trusted.layerfs.merged', 'trusted.layerfs.origin', 'user.layerfs.private', 'trusted.overlay.opaque', 'trusted.overlay.redirect']) {
    assert.equal(isPrivateXattr(n), true, n);
  }
  for (const n of ['user.layerfs-notes', 'user.layerfs', 'user.mylayerfs.x', 'user.notes.layerfs', 'trusted.layerfsx.a', 'user.overlay.opaque', 'security.selinux', 'user.comment']) {
    assert.equal(isPrivateXattr(n), false, n);
  }
});

test('import -> container -> commit -> export keeps user xattrs containing "layerfs" and drops the private ones', async (t) => {
  if (process.getuid?.() !== 0) {
    if (process.env.CI) assert.fail('needs root (trusted.* xattrs)');
    t.skip('needs root');
    return;
  }
  const top = tempDir();
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const store = LayerStore.open(path.join(top, 'store'));
  const x = (k: string): string => `SCHILY.xattr.${k}`;
  const base = await store.importTar(
    once(
      await makeTar([
        { name: 'dir/', type: 'directory', pax: { [x('user.layerfs-notes')]: 'dir note', [x('trusted.layerfs.merged')]: 'y' } },
        {
          name: 'dir/f',
          body: 'f',
          pax: { [x('user.layerfs-notes')]: 'keep me', [x('user.layerfs.private')]: 'p', [x('trusted.layerfs.origin')]: 'o', [x('user.mylayerfs.x')]: 'mine' },
        },
      ]),
    ),
    { name: 'base' },
  );
  // import: the user's names are stored, the private ones are not
  const d = store.diffDir(base.id);
  assert.deepEqual(getfattr(path.join(d, 'dir')), { 'user.layerfs-notes': 'dir note' });
  assert.deepEqual(getfattr(path.join(d, 'dir/f')), { 'user.layerfs-notes': 'keep me', 'user.mylayerfs.x': 'mine' });

  // a container's rw dir as the engine leaves it: a copied-up file with a new user xattr, and the
  // engine's own markers on a dir a redirect rename made
  const c = await store.createContainer('base');
  const rw = store.diffDir(c.id);
  fs.mkdirSync(path.join(rw, 'dir'));
  execFileSync('setfattr', ['-n', 'trusted.layerfs.merged', '-v', 'y', path.join(rw, 'dir')]);
  execFileSync('setfattr', ['-n', 'user.layerfs-notes', '-v', 'dir note', path.join(rw, 'dir')]);
  fs.writeFileSync(path.join(rw, 'dir/f'), 'f2');
  execFileSync('setfattr', ['-n', 'user.layerfs-notes', '-v', 'changed', path.join(rw, 'dir/f')]);
  execFileSync('setfattr', ['-n', 'trusted.layerfs.origin', '-v', 'o', path.join(rw, 'dir/f')]);
  fs.writeFileSync(path.join(rw, 'new'), 'n');
  execFileSync('setfattr', ['-n', 'user.layerfs-notes', '-v', 'brand new', path.join(rw, 'new')]);

  const committed = await store.commit(c.id, { name: 'next' });
  const entries = await listTar(await collect(store.exportTar(committed.id)));
  const xa = (name: string): Record<string, string> | undefined => entries.find((e) => e.name === name)?.xattrs;
  assert.deepEqual(xa('dir/'), { 'user.layerfs-notes': 'dir note' });
  assert.deepEqual(xa('dir/f'), { 'user.layerfs-notes': 'changed' });
  assert.deepEqual(xa('new'), { 'user.layerfs-notes': 'brand new' });
  // and the base layer's export keeps its user xattrs too
  const baseEntries = await listTar(await collect(store.exportTar(base.id)));
  assert.deepEqual(baseEntries.find((e) => e.name === 'dir/f')?.xattrs, { 'user.layerfs-notes': 'keep me', 'user.mylayerfs.x': 'mine' });
});

test('through a mounted container: user.layerfs-notes can be set, read and survives commit and export; .layerfs. names stay hidden', { timeout: 120_000 }, async (t) => {
  if (!fs.existsSync('/dev/fuse') || process.getuid?.() !== 0) {
    if (process.env.CI) assert.fail('FUSE is not usable (need root and /dev/fuse)');
    t.skip('FUSE not usable here');
    return;
  }
  const { mountLayer, unmountLayer } = await import('../../src/cli/commands/container.js');
  const top = tempDir();
  const store = LayerStore.open(path.join(top, 'store'));
  let mnt: string | undefined;
  let cid: string | undefined;
  t.after(async () => {
    if (mnt !== undefined && cid !== undefined) {
      await unmountLayer(store, cid).catch(() => spawnSync('umount', ['-l', mnt!], { timeout: 10_000 }));
    }
    fs.rmSync(top, { recursive: true, force: true });
  });
  await store.importTar(once(await makeTar([{ name: 'f', body: 'f' }])), { name: 'base' });
  cid = (await store.createContainer('base')).id;
  mnt = await mountLayer(store, cid);
  const f = path.join(mnt, 'f');
  execFileSync('setfattr', ['-n', 'user.layerfs-notes', '-v', 'through the mount', f], { timeout: 10_000 });
  assert.equal(getfattr(f)['user.layerfs-notes'], 'through the mount');
  const refused = spawnSync('setfattr', ['-n', 'user.layerfs.private', '-v', 'x', f], { encoding: 'utf8', timeout: 10_000 });
  assert.notEqual(refused.status, 0, 'a .layerfs. name cannot be set through the union');
  await unmountLayer(store, cid);
  mnt = undefined;
  const committed = await store.commit(cid, { name: 'next' });
  const entries = await listTar(await collect(store.exportTar(committed.id)));
  assert.deepEqual(entries.find((e) => e.name === 'f')?.xattrs, { 'user.layerfs-notes': 'through the mount' });
});
