/**
 * A container's rw dir may hold whiteouts in either on-disk format (AUFS files or overlay's char
 * 0/0 devices and trusted.overlay.opaque): `container diff`, commit and export read both with the
 * engine's rules, and the exported OCI tar holds only `.wh.` entries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { LayerStore } from '../../src/store/store.js';
import { collect, listTar, makeTar, once, snapshot, tempDir } from './helpers.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');

/** Overlay-format markers need root (mknod, trusted.* xattrs). */
function rootOrFail(t: { skip(msg: string): void }): boolean {
  if (process.getuid?.() === 0) return true;
  if (process.env.CI) assert.fail('needs root (mknod c 0 0, trusted.* xattrs)');
  t.skip('needs root');
  return false;
}

async function baseStore(t: { after(fn: () => void): void }): Promise<{ store: LayerStore; root: string; top: string }> {
  const top = tempDir();
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const root = path.join(top, 'store');
  const store = LayerStore.open(root);
  await store.importTar(
    once(
      await makeTar([
        { name: 'etc/', type: 'directory' },
        { name: 'etc/gone', body: 'bye' },
        { name: 'etc/keep', body: 'kept' },
        { name: 'opt/', type: 'directory' },
        { name: 'opt/app/', type: 'directory' },
        { name: 'opt/app/old', body: 'old' },
        { name: 'gone-top', body: 'x' },
      ]),
    ),
    { name: 'base' },
  );
  return { store, root, top };
}

test('overlay-format whiteouts in a container: D in `container diff`, .wh. entries in the export of the commit', async (t) => {
  if (!rootOrFail(t)) return;
  const { store, root, top } = await baseStore(t);
  const c = await store.createContainer('base');
  const rw = store.diffDir(c.id);
  // what an overlay-format upper dir holds after `rm etc/gone gone-top; rm -r opt/app; mkdir opt/app; echo > opt/app/new`
  fs.mkdirSync(path.join(rw, 'etc'));
  execFileSync('mknod', [path.join(rw, 'etc/gone'), 'c', '0', '0']);
  execFileSync('mknod', [path.join(rw, 'gone-top'), 'c', '0', '0']);
  fs.mkdirSync(path.join(rw, 'opt/app'), { recursive: true });
  execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.join(rw, 'opt/app')]);
  fs.writeFileSync(path.join(rw, 'opt/app/new'), 'new');

  const diff = await run(process.execPath, [CLI, 'container', 'diff', c.id], { env: { ...process.env, LAYERFS_ROOT: root } });
  assert.equal(diff.stdout, 'C /etc\nD /etc/gone\nD /gone-top\nC /opt\nC /opt/app\nA /opt/app/new\n');

  // the container's own export: OCI whiteouts only, the opaque marker first in its dir
  const entries = await listTar(await collect(store.exportTar(c.id)));
  assert.deepEqual(
    entries.map((e) => `${e.type} ${e.name}`),
    ['directory etc/', 'file etc/.wh.gone', 'file .wh.gone-top', 'directory opt/', 'directory opt/app/', 'file opt/app/.wh..wh..opq', 'file opt/app/new'],
  );
  assert.ok(entries.every((e) => Object.keys(e.xattrs).every((k) => !k.startsWith('trusted.overlay.'))), 'no overlay xattrs in the tar');

  // committed, the layer holds AUFS whiteouts and the image reads as the container did
  const committed = await store.commit(c.id, { name: 'next' });
  const stored = snapshot(store.diffDir(committed.id));
  assert.ok(stored['etc/.wh.gone']?.startsWith('file'));
  assert.ok(stored['.wh.gone-top']?.startsWith('file'));
  assert.ok(stored['opt/app/.wh..wh..opq']?.startsWith('file'));
  assert.deepEqual(store.diff('next'), [
    { kind: 'C', path: '/etc' },
    { kind: 'D', path: '/etc/gone' },
    { kind: 'D', path: '/gone-top' },
    { kind: 'C', path: '/opt' },
    { kind: 'C', path: '/opt/app' },
    { kind: 'A', path: '/opt/app/new' },
  ]);
  const flat = path.join(top, 'flat');
  fs.mkdirSync(flat);
  await store.flattenInto(committed.id, flat);
  assert.deepEqual(Object.keys(snapshot(flat)).sort(), ['etc', 'etc/keep', 'opt', 'opt/app', 'opt/app/new']);
});

test('the same change in both formats gives the same diff and the same tar entry names', async (t) => {
  if (!rootOrFail(t)) return;
  const { store } = await baseStore(t);
  const aufs = await store.createContainer('base');
  const ovl = await store.createContainer('base');
  const a = store.diffDir(aufs.id);
  const o = store.diffDir(ovl.id);
  fs.mkdirSync(path.join(a, 'etc'));
  fs.writeFileSync(path.join(a, 'etc/.wh.gone'), '');
  fs.mkdirSync(path.join(a, 'opt/app'), { recursive: true });
  fs.writeFileSync(path.join(a, 'opt/app/.wh..wh..opq'), '');
  fs.mkdirSync(path.join(o, 'etc'));
  execFileSync('mknod', [path.join(o, 'etc/gone'), 'c', '0', '0']);
  fs.mkdirSync(path.join(o, 'opt/app'), { recursive: true });
  execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.join(o, 'opt/app')]);
  assert.deepEqual(store.diff(ovl.id), store.diff(aufs.id));
  const names = async (id: string): Promise<string[]> => (await listTar(await collect(store.exportTar(id)))).map((e) => e.name);
  assert.deepEqual(await names(ovl.id), await names(aufs.id));
  assert.deepEqual(await names(ovl.id), ['etc/', 'etc/.wh.gone', 'opt/', 'opt/app/', 'opt/app/.wh..wh..opq']);
  // a char device that is not 0/0 is a file like any other, not a whiteout
  execFileSync('mknod', [path.join(o, 'tty'), 'c', '5', '0']);
  assert.deepEqual(store.diff(ovl.id).find((ch) => ch.path === '/tty'), { kind: 'A', path: '/tty' });
  assert.ok((await listTar(await collect(store.exportTar(ovl.id)))).some((e) => e.name === 'tty' && e.type === 'character-device'));
});
