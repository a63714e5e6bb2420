/**
 * `image rm` removes the name and then the layers only that name kept (as `docker image rm`);
 * `image prune` removes every layer no image name or container needs. Never a layer another
 * image, a child layer or a container uses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { LayerStore } from '../../src/store/store.js';
import { makeTar, once, tempDir } from './helpers.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');

async function layerfs(root: string, ...args: string[]): Promise<string> {
  const r = await run(process.execPath, [CLI, ...args], { env: { ...process.env, LAYERFS_ROOT: root }, timeout: 60_000 });
  return r.stdout;
}

/** Nothing of layer `id` is left on disk (meta, layers file, diff dir, mnt dir). */
function goneFromDisk(store: LayerStore, id: string): boolean {
  const p = store.paths;
  return [p.meta(id), p.layers(id), p.diff(id), p.mnt(id)].every((f) => !fs.existsSync(f));
}

/**
 *   L1 base:1  <-  L2 (no name)  <-  L3 app    <- container
 *                               <-  L4 other
 */
async function fixture(t: { after(fn: () => void): void }): Promise<{ root: string; store: LayerStore; l: string[]; cid: string }> {
  const top = tempDir();
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const root = path.join(top, 'store');
  const store = LayerStore.open(root);
  const layer = async (n: number, parent: string | undefined, name: string | undefined): Promise<string> =>
    (await store.importTar(once(await makeTar([{ name: `f${n}`, body: `layer ${n}` }])), { ...(parent ? { parent } : {}), ...(name ? { name } : {}) })).id;
  const l1 = await layer(1, undefined, 'base:1');
  const l2 = await layer(2, l1, undefined);
  const l3 = await layer(3, l2, 'app');
  const l4 = await layer(4, l2, 'other');
  const cid = (await store.createContainer('app')).id;
  return { root, store, l: [l1, l2, l3, l4], cid };
}

test('image rm prunes the layers only that name kept, stopping at a layer still in use', async (t) => {
  const { root, store, l, cid } = await fixture(t);
  const [l1, l2, l3, l4] = l as [string, string, string, string];

  // app's top layer carries a container: only the name goes
  assert.equal(await layerfs(root, 'image', 'rm', 'app'), 'Untagged: app:latest\n');
  assert.ok(store.has(l3) && store.has(cid));

  // other: its top layer goes; the unnamed L2 below stays, as L3 (the container's image) is on it
  assert.equal(await layerfs(root, 'image', 'rm', 'other'), `Untagged: other:latest\nDeleted: ${l4}\n`);
  assert.ok(goneFromDisk(store, l4));
  assert.ok(store.has(l2) && store.has(l1));

  // with the container gone, L3 and L2 are left unneeded: prune removes them, children first
  await store.remove(cid);
  assert.equal(await layerfs(root, 'image', 'prune'), `Deleted: ${l3}\nDeleted: ${l2}\n2 layer(s) removed\n`);
  assert.ok(goneFromDisk(store, l3) && goneFromDisk(store, l2));
  assert.deepEqual(store.list().map((m) => m.id), [l1]);
  assert.equal(await layerfs(root, 'image', 'prune'), '0 layer(s) removed\n');

  // another name for the same layer keeps it; the last name takes it along
  await layerfs(root, 'image', 'tag', 'base:1', 'alias');
  assert.equal(await layerfs(root, 'image', 'rm', 'base:1'), 'Untagged: base:1\n');
  assert.ok(store.has(l1));
  assert.equal(await layerfs(root, 'image', 'rm', 'alias'), `Untagged: alias:latest\nDeleted: ${l1}\n`);
  assert.deepEqual(store.list(), []);
  assert.deepEqual(store.images(), {});
});

test('image rm walks down through unnamed parents and stops at a named one', async (t) => {
  const { store, l, cid } = await fixture(t);
  const [l1, l2, l3, l4] = l as [string, string, string, string];
  await store.remove(cid);
  assert.deepEqual(await store.untag('other', { prune: true }), [l4]); // L2 still holds L3 (app)
  assert.deepEqual(await store.untag('app', { prune: true }), [l3, l2]); // stops at base:1
  assert.ok(store.has(l1));
  assert.equal(store.images()['base:1']?.layer, l1);
});

test('image rm --no-prune keeps the layers; prune then collects them, never a container or its image', async (t) => {
  const { root, store, l, cid } = await fixture(t);
  const [l1, l2, l3, l4] = l as [string, string, string, string];
  assert.equal(await layerfs(root, 'image', 'rm', '--no-prune', 'other', 'base:1'), 'Untagged: other:latest\nUntagged: base:1\n');
  assert.equal(store.list().length, 5);
  // L4 is needed by nothing; L1..L3 are the container's chain
  assert.deepEqual(await store.prune(), [l4]);
  assert.deepEqual(new Set(store.list().map((m) => m.id)), new Set([l1, l2, l3, cid]));
  assert.deepEqual(Object.keys(store.images()), ['app:latest']);
});

test('image rm of an unknown name fails and removes nothing', async (t) => {
  const { store } = await fixture(t);
  await assert.rejects(store.untag('nope', { prune: true }), /no such image: nope:latest/);
  assert.equal(store.list().length, 5);
});

test('a mounted layer is never removed, by image rm or by prune', { timeout: 120_000 }, async (t) => {
  if (!fs.existsSync('/dev/fuse') || process.getuid?.() !== 0) {
    if (process.env.CI) assert.fail('FUSE is not usable (need root and /dev/fuse)');
    t.skip('FUSE not usable here');
    return;
  }
  const { mountLayer, unmountLayer } = await import('../../src/cli/commands/container.js');
  const { store, l } = await fixture(t);
  const l4 = l[3]!;
  const mnt = await mountLayer(store, l4);
  let mounted = true;
  t.after(async () => {
    if (mounted) await unmountLayer(store, l4).catch(() => spawnSync('umount', ['-l', mnt], { timeout: 10_000 }));
  });
  assert.equal(fs.readFileSync(path.join(mnt, 'f4'), 'utf8'), 'layer 4');
  assert.deepEqual(await store.untag('other', { prune: true }), []);
  assert.deepEqual(await store.prune(), []);
  assert.equal(fs.readFileSync(path.join(mnt, 'f4'), 'utf8'), 'layer 4');
  await unmountLayer(store, l4);
  mounted = false;
  assert.deepEqual(await store.prune(), [l4]);
  assert.ok(goneFromDisk(store, l4));
});
