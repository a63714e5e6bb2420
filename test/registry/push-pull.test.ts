/**
 * Push and pull against a real registry (Debian's docker-registry 2.8, plain HTTP on loopback):
 * push from one store, pull into another, same DiffIDs and the same tree; chunked uploads, blobs
 * the repository has, cross-repository mounts, pulls by digest and of layers the store has; and
 * skopeo reads what we push and writes what we pull.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { pull } from '../../src/registry/pull.js';
import { push } from '../../src/registry/push.js';
import type { BlobEvent } from '../../src/registry/events.js';
import { exportOci } from '../../src/store/image-oci.js';
import { LayerStore } from '../../src/store/store.js';
import { snapshot, tempDir } from '../store/helpers.js';
import { demoStore, diffIds, exportedDiffIds, haveTools, outsideIPv4, REGISTRY_BIN, startRegistry, type Registry } from './helpers.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');
const ok = haveTools(REGISTRY_BIN, '/usr/bin/skopeo');

async function tree(store: LayerStore, ref: string, dir: string): Promise<Record<string, string>> {
  fs.mkdirSync(dir);
  await store.flattenInto(store.resolve(ref), dir);
  return snapshot(dir, { times: true });
}

describe('registry push/pull (docker-registry, plain HTTP)', { skip: !ok && 'docker-registry or skopeo missing', timeout: 300_000 }, () => {
  let reg: Registry;
  let top: string;
  let src: LayerStore;
  before(async () => {
    top = tempDir('layerfs-reg-test-');
    reg = await startRegistry();
    src = await demoStore(path.join(top, 'src'));
  });
  after(async () => {
    await reg?.stop();
    fs.rmSync(top, { recursive: true, force: true });
  });

  it('push (chunked) then pull into another store: same DiffIDs, same tree, nothing left in the blob cache', async () => {
    const events: BlobEvent[] = [];
    const r = await push(src, 'demo:3', `${reg.host}/demo/app:v3`, { chunkSize: 64 * 1024, onEvent: (e) => events.push(e) });
    assert.match(r.digest, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(Object.values(r.blobs), ['uploaded', 'uploaded', 'uploaded', 'uploaded'], 'three layers and the config uploaded');
    assert.ok(events.filter((e) => e.state === 'uploading' && e.label === 'layer 2/3').length > 1, 'the big layer went up in several chunks');

    const dst = LayerStore.open(path.join(top, 'dst'));
    const pulled = await pull(dst, `${reg.host}/demo/app:v3`, undefined, { onEvent: (e) => events.push(e) });
    assert.equal(pulled.name, `${reg.host}/demo/app:v3`);
    assert.equal(pulled.digest, r.digest);
    const sent = await exportedDiffIds(src, 'demo:3');
    assert.deepEqual(diffIds(dst, pulled.name), sent, 'the pulled layers are byte-identical to the pushed ones');
    assert.deepEqual(await exportedDiffIds(dst, pulled.name), sent, 'and export the same bytes again');
    assert.deepEqual(await tree(dst, pulled.name, path.join(top, 't-dst')), await tree(src, 'demo:3', path.join(top, 't-src')));
    const cfg = dst.images()[pulled.name]?.config as { rootfs?: { diff_ids?: string[] } };
    assert.deepEqual(cfg.rootfs?.diff_ids, sent);
    assert.deepEqual(fs.readdirSync(path.join(dst.root, 'blobs', 'sha256')), [], 'cached blobs dropped once imported');
    assert.deepEqual(fs.readdirSync(dst.paths.tmpRoot), []);
  });

  it('the pulled image mounts (FUSE, as a container) with the tree the pushed one has', { skip: !process.env.CI && !(fs.existsSync('/dev/fuse') && process.getuid?.() === 0) && 'FUSE not usable' }, async () => {
    const root = path.join(top, 'mnt-dst');
    const env = { ...process.env, LAYERFS_ROOT: root };
    await pull(LayerStore.open(root), `${reg.host}/demo/app:v3`, 'mounted:v3');
    const cid = (await run(process.execPath, [CLI, 'container', 'create', 'mounted:v3'], { env })).stdout.trim();
    const mnt = (await run(process.execPath, [CLI, 'container', 'mount', cid], { env, timeout: 60_000 })).stdout.trim();
    try {
      assert.deepEqual(snapshot(mnt, { times: true }), await tree(src, 'demo:3', path.join(top, 't-src-mnt')));
    } finally {
      await run(process.execPath, [CLI, 'container', 'umount', cid], { env, timeout: 60_000 });
    }
  });

  it('a second push skips what the repository has; a push to another repository mounts the blobs', async () => {
    const again = await push(src, 'demo:3', `${reg.host}/demo/app:again`);
    assert.deepEqual(new Set(Object.values(again.blobs)), new Set(['present']));
    const other = await push(src, 'demo:3', `${reg.host}/other/repo:v1`);
    const states = Object.values(other.blobs);
    assert.equal(states.filter((s) => s === 'mounted').length, 3, `layers mounted across repositories: ${states.join(',')}`);
  });

  it('an image pulled from one repository is pushed to another by mounting its layers, with no layer upload', async () => {
    const dst = LayerStore.open(path.join(top, 'relay'));
    await pull(dst, `${reg.host}/demo/app:v3`, 'relay:v3');
    const r = await push(dst, 'relay:v3', `${reg.host}/relay/copy:v3`);
    const states = Object.values(r.blobs);
    // the three layers come from the other repository; only the small config blob may be uploaded
    assert.equal(states.filter((s) => s === 'mounted').length, 3, `layers mounted: ${states.join(',')}`);
    assert.ok(states.filter((s) => s === 'uploaded').length <= 1, `at most the config uploaded: ${states.join(',')}`);
    const again = LayerStore.open(path.join(top, 'relay2'));
    const back = await pull(again, `${reg.host}/relay/copy:v3`, undefined);
    assert.deepEqual(diffIds(again, back.name), diffIds(dst, 'relay:v3'));
  });

  it('plain HTTP off loopback needs --insecure', { skip: outsideIPv4() === undefined && 'no non-loopback address' }, async () => {
    const far = await startRegistry({ ip: outsideIPv4()! });
    try {
      await assert.rejects(push(src, 'demo:1', `${far.host}/far/app:v1`), /^Error: EPROTO: registry [0-9.]+:\d+ does not answer TLS \(.*plain HTTP\?\); pass --insecure to allow plain HTTP$/);
      await push(src, 'demo:1', `${far.host}/far/app:v1`, { insecure: true });
      const dst = LayerStore.open(path.join(top, 'far'));
      const r = await pull(dst, `${far.host}/far/app:v1`, undefined, { insecure: true });
      assert.equal(r.name, `${far.host}/far/app:v1`);
    } finally {
      await far.stop();
    }
  });

  it('pull by digest, and a pull of layers the store has downloads nothing', async () => {
    const dst = LayerStore.open(path.join(top, 'dst2'));
    const first = await pull(dst, `${reg.host}/demo/app:v3`, 'mine:1');
    const events: BlobEvent[] = [];
    const byDigest = await pull(dst, `${reg.host}/other/repo@${first.digest}`, undefined, { onEvent: (e) => events.push(e) });
    assert.equal(byDigest.top, first.top, 'same chain, same layers');
    assert.equal(byDigest.name, `${reg.host}/other/repo@${first.digest}`);
    assert.deepEqual(
      events.filter((e) => e.label.startsWith('layer')).map((e) => e.state),
      ['present', 'present', 'present'],
    );
    assert.equal(dst.list().length, 3);
  });

  it('skopeo reads what we pushed and writes what we pull', async () => {
    const oci = path.join(top, 'sk-oci');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/demo/app:v3`, `oci:${oci}:v3`]);
    const index = JSON.parse(fs.readFileSync(path.join(oci, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const m = JSON.parse(fs.readFileSync(path.join(oci, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { config: { digest: string } };
    const cfg = JSON.parse(fs.readFileSync(path.join(oci, 'blobs', 'sha256', m.config.digest.slice(7)), 'utf8')) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(cfg.rootfs.diff_ids, await exportedDiffIds(src, 'demo:3'));

    // an image skopeo writes (from our OCI export) comes back through our pull unchanged
    const exp = path.join(top, 'exp-oci');
    await exportOci(src, 'demo:2', exp, 'v2');
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${exp}:v2`, `docker://${reg.host}/skopeo/wrote:v2`]);
    const dst = LayerStore.open(path.join(top, 'dst3'));
    const r = await pull(dst, `${reg.host}/skopeo/wrote:v2`, 'from-skopeo:v2');
    assert.deepEqual(diffIds(dst, r.top), await exportedDiffIds(src, 'demo:2'));
  });

  it('the CLI: image push prints the digest, image pull the top layer id; piped, stderr stays empty', async () => {
    const env = { ...process.env, LAYERFS_ROOT: src.root };
    const p = await run(process.execPath, [CLI, 'image', 'push', 'demo:1', `${reg.host}/cli/img`], { env });
    assert.match(p.stdout, /^sha256:[0-9a-f]{64}\n$/);
    assert.equal(p.stderr, '');
    const root2 = path.join(top, 'cli-dst');
    const q = await run(process.execPath, [CLI, 'image', 'pull', `${reg.host}/cli/img`, '--root', root2]);
    assert.equal(q.stdout.trim(), LayerStore.open(root2).resolve(`${reg.host}/cli/img:latest`));
    assert.equal(q.stderr, '');
    const ls = await run(process.execPath, [CLI, 'image', 'ls', '--root', root2]);
    assert.match(ls.stdout, new RegExp(`^${reg.host.replace(/\./g, '\\.')}/cli/img:latest `, 'm'));
    const bad = await run(process.execPath, [CLI, 'image', 'pull', `${reg.host}/cli/nothing:here`, '--root', root2]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((bad as { code: number }).code, 1);
    assert.match((bad as { stderr: string }).stderr, /^layerfs: .*ENOENT.*has no manifest here\n$/);
  });
});
