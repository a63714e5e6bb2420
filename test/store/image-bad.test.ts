import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LayerStore } from '../../src/store/store.js';
import { exportOci, importOci } from '../../src/store/image-oci.js';
import { importDocker } from '../../src/store/image-docker.js';
import { makeTar, once, tempDir } from './helpers.js';

async function twoLayerImage(top: string): Promise<string> {
  const src = LayerStore.open(path.join(top, 'src'));
  const a = await src.importTar(once(await makeTar([{ name: 'a', body: 'a' }])));
  await src.importTar(once(await makeTar([{ name: 'b', body: 'b' }])), { parent: a.id, name: 'two' });
  const dir = path.join(top, 'layout');
  await exportOci(src, 'two', dir, 'latest');
  return dir;
}

function blob(dir: string, digest: string): string {
  return path.join(dir, 'blobs', 'sha256', digest.slice(7));
}

function rewriteJsonBlob(dir: string, digest: string, edit: (v: Record<string, unknown>) => void): string {
  const v = JSON.parse(fs.readFileSync(blob(dir, digest), 'utf8')) as Record<string, unknown>;
  edit(v);
  const data = Buffer.from(JSON.stringify(v));
  const d = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  fs.writeFileSync(blob(dir, d), data);
  return d;
}

test('an OCI image whose config lies about a DiffID is refused and leaves the store as it was', async (t) => {
  const top = tempDir();
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const dir = await twoLayerImage(top);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number }[] };
  const mDigest = index.manifests[0]!.digest;
  const manifest = JSON.parse(fs.readFileSync(blob(dir, mDigest), 'utf8')) as { config: { digest: string; size: number } };
  const newConfig = rewriteJsonBlob(dir, manifest.config.digest, (c) => {
    (c.rootfs as { diff_ids: string[] }).diff_ids[1] = `sha256:${'0'.repeat(64)}`;
  });
  const newManifest = rewriteJsonBlob(dir, mDigest, (m) => {
    (m.config as { digest: string; size: number }).digest = newConfig;
    (m.config as { digest: string; size: number }).size = fs.statSync(blob(dir, newConfig)).size;
  });
  index.manifests[0]!.digest = newManifest;
  index.manifests[0]!.size = fs.statSync(blob(dir, newManifest)).size;
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));

  const store = LayerStore.open(path.join(top, 'dst'));
  await assert.rejects(importOci(store, dir, 'latest', 'x'), /DiffID/);
  assert.deepEqual(store.list(), []);
  assert.deepEqual(store.images(), {});
});

test('a tampered blob, a missing tag and a non-layout dir are refused', async (t) => {
  const top = tempDir();
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const dir = await twoLayerImage(top);
  const store = LayerStore.open(path.join(top, 'dst'));
  await assert.rejects(importOci(store, dir, 'nope', 'x'), { code: 'ENOENT' });
  await assert.rejects(importOci(store, top, undefined, 'x'), /not an OCI image layout/);
  const blobs = fs.readdirSync(path.join(dir, 'blobs', 'sha256'));
  const biggest = blobs.map((b) => path.join(dir, 'blobs', 'sha256', b)).sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
  fs.appendFileSync(biggest, 'x');
  await assert.rejects(importOci(store, dir, 'latest', 'x'), /does not match its digest/);
  const notTar = path.join(top, 'not.tar');
  fs.writeFileSync(notTar, 'hello');
  await assert.rejects(importDocker(store, notTar, 'x'), { code: 'EINVAL' });
  assert.deepEqual(store.list(), []);
  assert.deepEqual(fs.readdirSync(path.join(top, 'dst', 'tmp')), []);
});
