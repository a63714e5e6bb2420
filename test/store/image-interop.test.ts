import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LayerStore } from '../../src/store/store.js';
import { exportOci, importOci } from '../../src/store/image-oci.js';
import { exportDocker, familiarTag, importDocker } from '../../src/store/image-docker.js';
import { collect, listTar, makeTar, once, sha256, snapshot, tempDir } from './helpers.js';

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function have(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A two-layer image built by umoci from local trees: base files, then a change + a deletion. */
function buildUmociImage(top: string): string {
  const layout = path.join(top, 'oci');
  const b = path.join(top, 'bundle');
  sh('umoci', ['init', '--layout', layout]);
  sh('umoci', ['new', '--image', `${layout}:img`]);
  sh('umoci', ['unpack', '--image', `${layout}:img`, b]);
  const r = path.join(b, 'rootfs');
  fs.mkdirSync(path.join(r, 'etc'));
  fs.writeFileSync(path.join(r, 'etc/hostname'), 'umoci\n');
  fs.writeFileSync(path.join(r, 'etc/gone'), 'bye');
  fs.mkdirSync(path.join(r, 'opt/app'), { recursive: true });
  fs.writeFileSync(path.join(r, 'opt/app/old'), 'old');
  fs.writeFileSync(path.join(r, 'opt/app/run.sh'), '#!/bin/sh\n', { mode: 0o755 });
  fs.symlinkSync('run.sh', path.join(r, 'opt/app/start'));
  fs.linkSync(path.join(r, 'etc/hostname'), path.join(r, 'etc/hostname.bak'));
  sh('umoci', ['repack', '--image', `${layout}:img`, b]);
  fs.rmSync(b, { recursive: true });
  sh('umoci', ['unpack', '--image', `${layout}:img`, b]);
  fs.unlinkSync(path.join(b, 'rootfs/etc/gone'));
  fs.rmSync(path.join(b, 'rootfs/opt/app'), { recursive: true });
  fs.mkdirSync(path.join(b, 'rootfs/opt/app'));
  fs.writeFileSync(path.join(b, 'rootfs/opt/app/new'), 'new');
  fs.chownSync(path.join(b, 'rootfs/opt/app/new'), 1234, 5678);
  sh('umoci', ['repack', '--image', `${layout}:img`, b]);
  fs.rmSync(b, { recursive: true });
  return layout;
}

function unpacked(layout: string, tag: string, top: string): Record<string, string> {
  const b = path.join(top, `unpack-${Math.random().toString(16).slice(2)}`);
  sh('umoci', ['unpack', '--image', `${layout}:${tag}`, b]);
  const snap = snapshot(path.join(b, 'rootfs'));
  fs.rmSync(b, { recursive: true });
  return snap;
}

async function flat(store: LayerStore, ref: string, top: string): Promise<Record<string, string>> {
  const d = path.join(top, `flat-${Math.random().toString(16).slice(2)}`);
  fs.mkdirSync(d);
  await store.flattenInto(store.resolve(ref), d);
  const snap = snapshot(d);
  fs.rmSync(d, { recursive: true });
  return snap;
}

const tools = have('umoci') && have('skopeo') && process.getuid?.() === 0;

test('umoci image -> import -> merged tree equals umoci unpack; our export -> umoci unpack and skopeo accept it', { skip: !tools && !process.env.CI ? 'umoci/skopeo or root missing' : false }, async (t) => {
  const top = tempDir();
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const layout = buildUmociImage(top);
  const expected = unpacked(layout, 'img', top);
  assert.equal(expected['etc/gone'], undefined);
  assert.ok(expected['opt/app/new']);
  assert.equal(expected['opt/app/old'], undefined);

  const store = LayerStore.open(path.join(top, 'store'));
  const topLayer = await importOci(store, layout, 'img', 'umoci-img');
  assert.equal(store.chain(topLayer).length, 2);
  assert.deepEqual(await flat(store, 'umoci-img', top), expected);
  // the stored second layer holds AUFS whiteouts
  const d3 = store.diffDir(topLayer);
  assert.ok(fs.existsSync(path.join(d3, 'etc/.wh.gone')));

  // through a real mount: a container over the imported image shows the same tree
  if (fs.existsSync('/dev/fuse')) {
    const { mountLayer, unmountLayer } = await import('../../src/cli/commands/container.js');
    const c = await store.createContainer('umoci-img');
    const mnt = await mountLayer(store, c.id);
    try {
      assert.deepEqual(snapshot(mnt), expected);
    } finally {
      await unmountLayer(store, c.id).catch(() => execFileSync('umount', ['-l', mnt]));
    }
    await store.remove(c.id);
  } else if (process.env.CI) {
    assert.fail('/dev/fuse missing');
  }

  // importing the same image again reuses the layers (same ChainIDs)
  const n = store.list().length;
  await importOci(store, layout, 'img', 'again');
  assert.equal(store.list().length, n);

  // our export: umoci unpacks it to the same tree; skopeo inspects it and converts it
  const ours = path.join(top, 'ours');
  await exportOci(store, 'umoci-img', ours, 'v1');
  assert.deepEqual(unpacked(ours, 'v1', top), expected);
  const info = JSON.parse(sh('skopeo', ['inspect', `oci:${ours}:v1`])) as { Layers: string[]; Os: string };
  assert.equal(info.Layers.length, 2);
  assert.equal(info.Os, 'linux');
  // reproducible: exporting again yields the same manifest digest
  const again = path.join(top, 'ours2');
  assert.equal(await exportOci(store, 'umoci-img', again, 'v1'), await exportOci(store, 'umoci-img', ours, 'v1'));

  // skopeo oci -> docker-archive -> our import; our docker-archive -> skopeo inspect
  const archive = path.join(top, 'img.tar');
  sh('skopeo', ['copy', `oci:${ours}:v1`, `docker-archive:${archive}:example/img:v1`]);
  const imported = await importDocker(store, archive, undefined);
  assert.match(imported.name, /(^|\/)example\/img:v1$/);
  assert.equal(imported.name, 'example/img:v1', 'skopeo writes docker.io/example/img:v1; the name is the familiar form, as docker load shows it');
  assert.deepEqual(await flat(store, imported.name, top), expected);
  const mine = path.join(top, 'mine.tar');
  await exportDocker(store, 'umoci-img', mine, 'mine/img:v2');
  const dinfo = JSON.parse(sh('skopeo', ['inspect', `docker-archive:${mine}`])) as { Layers: string[]; RepoTags?: string[] };
  assert.equal(dinfo.Layers.length, 2);
  const back = path.join(top, 'back');
  sh('skopeo', ['copy', `docker-archive:${mine}`, `oci:${back}:b`]);
  assert.deepEqual(unpacked(back, 'b', top), expected);
  const store2 = LayerStore.open(path.join(top, 'store2'));
  await importDocker(store2, mine, 'copy');
  assert.deepEqual(await flat(store2, 'copy', top), expected);
});

test('docker archive tags as docker save writes them: skopeo list-tags and inspect NAME:TAG find them; repositories file', { skip: !have('skopeo') && !process.env.CI ? 'skopeo missing' : false }, async (t) => {
  const top = tempDir();
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const store = LayerStore.open(path.join(top, 'store'));
  await store.importTar(once(await makeTar([{ name: 'a', body: 'a' }])), { name: 'demo:1' });
  const l2 = await store.importTar(once(await makeTar([{ name: 'b', body: 'b' }])), { parent: 'demo:1', name: 'demo:2' });
  const archive = path.join(top, 'demo.tar');
  // a fully qualified name is written in docker's familiar form, as `docker save` writes RepoTags
  await exportDocker(store, 'demo:2', archive, 'docker.io/library/demo:2');
  const members = await listTar(fs.readFileSync(archive));
  assert.deepEqual(members.map((m) => m.name).slice(-2), ['manifest.json', 'repositories']);
  const manifest = JSON.parse(sh('tar', ['-xOf', archive, 'manifest.json'])) as { RepoTags: string[]; Layers: string[] }[];
  assert.deepEqual(manifest[0]!.RepoTags, ['demo:2']);
  const repos = JSON.parse(sh('tar', ['-xOf', archive, 'repositories'])) as Record<string, Record<string, string>>;
  const topDigest = sha256(await collect(store.exportTar(l2.id))); // the archive holds our export of each layer
  assert.deepEqual(repos, { demo: { '2': topDigest.slice('sha256:'.length) } });
  assert.equal(manifest[0]!.Layers.at(-1), `${repos.demo!['2']}/layer.tar`, 'repositories names the top layer dir');

  // skopeo reads the tag from the archive (its `inspect` RepoTags field lists a registry's tags,
  // only for docker:// references, so it is [] for every docker-archive, skopeo's own too)
  const tags = JSON.parse(sh('skopeo', ['list-tags', `docker-archive:${archive}`])) as { Tags: string[] };
  assert.deepEqual(tags.Tags, ['demo:2']);
  const info = JSON.parse(sh('skopeo', ['inspect', `docker-archive:${archive}:demo:2`])) as { Name: string; Layers: string[] };
  assert.equal(info.Name, 'docker.io/library/demo');
  assert.equal(info.Layers.length, 2);
  assert.throws(() => sh('skopeo', ['inspect', `docker-archive:${archive}:demo:9`]), 'an absent tag is not found');

  // a name in a user namespace keeps its namespace
  const mine = path.join(top, 'mine.tar');
  await exportDocker(store, 'demo:2', mine, 'docker.io/me/app:v2');
  assert.deepEqual((JSON.parse(sh('skopeo', ['list-tags', `docker-archive:${mine}`])) as { Tags: string[] }).Tags, ['me/app:v2']);
  // and the archive comes back in under its tag
  const store2 = LayerStore.open(path.join(top, 'store2'));
  assert.equal((await importDocker(store2, mine, undefined)).name, 'me/app:v2');
});

test('tags in the familiar form of docker, as docker save writes RepoTags', () => {
  assert.equal(familiarTag('docker.io/library/demo:1'), 'demo:1');
  assert.equal(familiarTag('index.docker.io/library/demo:1'), 'demo:1');
  assert.equal(familiarTag('docker.io/me/app:v2'), 'me/app:v2');
  assert.equal(familiarTag('docker.io/library/a/b:1'), 'library/a/b:1');
  assert.equal(familiarTag('demo:1'), 'demo:1');
  assert.equal(familiarTag('quay.io/me/app:v2'), 'quay.io/me/app:v2');
  assert.equal(familiarTag('library/demo:1'), 'library/demo:1');
});
