import { execFileSync } from 'node:child_process';
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

test('docker archives: layers linked by relative symlinks are read; links leading outside are refused', async (t) => {
  const top = tempDir();
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const { exportDocker } = await import('../../src/store/image-docker.js');
  const src = LayerStore.open(path.join(top, 'src'));
  await src.importTar(once(await makeTar([{ name: 'a', body: 'a' }])), { name: 'one' });
  const plain = path.join(top, 'one.tar');
  await exportDocker(src, 'one', plain, 'one:latest');
  // rebuild the archive with the layer moved and a symlink in its place, as old docker save did
  const x = path.join(top, 'x');
  fs.mkdirSync(x);
  execFileSync('tar', ['-C', x, '-xf', plain]);
  const manifest = JSON.parse(fs.readFileSync(path.join(x, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
  const layer = manifest[0]!.Layers[0]!;
  fs.mkdirSync(path.join(x, 'other'));
  fs.renameSync(path.join(x, layer), path.join(x, 'other', 'layer.tar'));
  fs.symlinkSync('../other/layer.tar', path.join(x, layer));
  const linked = path.join(top, 'linked.tar');
  execFileSync('tar', ['-C', x, '-cf', linked, '.']);
  const dst = LayerStore.open(path.join(top, 'dst'));
  const r = await importDocker(dst, linked, 'linked');
  assert.equal(fs.readFileSync(path.join(dst.diffDir(r.top), 'a'), 'utf8'), 'a');
  // a layer path through a symlinked directory pointing outside the archive is refused
  fs.rmSync(path.join(x, layer));
  fs.rmSync(path.join(x, path.dirname(layer)), { recursive: true });
  fs.symlinkSync(path.join(top, 'x', 'other'), path.join(x, path.dirname(layer)));
  const evil = path.join(top, 'evil.tar');
  execFileSync('tar', ['-C', x, '-cf', evil, '.']);
  const dst2 = LayerStore.open(path.join(top, 'dst2'));
  await assert.rejects(importDocker(dst2, evil, 'evil'), (e: Error) => /symlink|no file/.test(e.message));
  assert.deepEqual(dst2.list(), []);
});
