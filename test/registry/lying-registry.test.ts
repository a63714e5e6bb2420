/**
 * A registry that lies, as a tiny node http server: wrong bytes, a missing blob, a truncated
 * download, a blob longer than its descriptor, an endless redirect, a manifest that is not the
 * digest asked for. Each pull fails with one line naming the problem and leaves nothing
 * unverified (nothing in the store, nothing in the blob cache but verified blobs, an empty tmp/).
 * The same server speaks Bearer tokens, serves an index of two platforms and redirects blobs to
 * another host; a pull cut off halfway resumes with the verified blobs when run again.
 */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { pull } from '../../src/registry/pull.js';
import { LayerStore } from '../../src/store/store.js';
import { makeTar, tempDir } from '../store/helpers.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

type Mode = 'ok' | 'wrong' | 'missing' | 'truncate' | 'long' | 'loop' | 'elsewhere';

interface Image {
  manifest: Buffer;
  digest: string;
  layers: { blob: Buffer; digest: string; diffId: string }[];
  config: Buffer;
}

async function image(files: Record<string, Buffer | string>[], arch: string): Promise<Image> {
  const layers = [];
  for (const f of files) {
    const tarBuf = await makeTar(Object.entries(f).map(([name, body]) => ({ name, body })));
    const blob = gzipSync(tarBuf);
    layers.push({ blob, digest: sha(blob), diffId: sha(tarBuf) });
  }
  const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: l.digest, size: l.blob.length })),
    }),
  );
  return { manifest, digest: sha(manifest), layers, config };
}

describe('a lying registry', { timeout: 120_000 }, () => {
  let server: http.Server;
  let port = 0;
  let top: string;
  let amd: Image;
  let arm: Image;
  let index: Buffer;
  const blobs = new Map<string, Buffer>();
  const modes = new Map<string, Mode>();
  const gets = new Map<string, number>();
  let bearer = false;
  let badManifest = false;

  before(async () => {
    top = tempDir('layerfs-lying-');
    amd = await image([{ 'hello': 'amd64\n' }, { 'big.bin': randomBytes(200_000) }, { 'top': 'x' }], 'amd64');
    arm = await image([{ 'hello': 'arm64\n' }], 'arm64');
    for (const im of [amd, arm]) {
      blobs.set(sha(im.config), im.config);
      for (const l of im.layers) blobs.set(l.digest, l.blob);
    }
    index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        manifests: [
          { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: arm.digest, size: arm.manifest.length, platform: { os: 'linux', architecture: 'arm64' } },
          { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: amd.digest, size: amd.manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
        ],
      }),
    );
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/token') {
        const ok = req.headers.authorization === `Basic ${Buffer.from('bob:pw').toString('base64')}` && url.searchParams.getAll('scope').includes('repository:lie/app:pull');
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(ok ? JSON.stringify({ token: 'tok-1' }) : '{}');
        return;
      }
      const blobMatch = /^\/(?:v2\/lie\/app\/blobs|elsewhere)\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
      if (bearer && !url.pathname.startsWith('/elsewhere/') && req.headers.authorization !== 'Bearer tok-1') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="lie",scope="repository:lie/app:pull"` }).end();
        return;
      }
      if (url.pathname === '/v2/') return void res.writeHead(200).end('{}');
      const m = /^\/v2\/lie\/app\/manifests\/(.+)$/.exec(url.pathname);
      if (m) {
        const ref = m[1]!;
        const body = ref === 'multi' ? index : ref === 'v1' || ref === amd.digest ? amd.manifest : ref === arm.digest ? arm.manifest : undefined;
        if (!body) return void res.writeHead(404).end();
        const sent = badManifest ? Buffer.from(body.toString().replace('"schemaVersion":2', '"schemaVersion": 2')) : body;
        const type = (JSON.parse(body.toString()) as { mediaType: string }).mediaType;
        return void res.writeHead(200, { 'content-type': type, 'content-length': sent.length }).end(sent);
      }
      if (blobMatch) {
        const d = blobMatch[1]!;
        gets.set(d, (gets.get(d) ?? 0) + 1);
        const b = blobs.get(d);
        const mode = url.pathname.startsWith('/elsewhere/') ? 'ok' : (modes.get(d) ?? 'ok');
        if (!b || mode === 'missing') return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
        if (mode === 'loop') return void res.writeHead(302, { location: url.pathname }).end();
        if (mode === 'elsewhere') return void res.writeHead(307, { location: `http://localhost:${port}/elsewhere/${d}` }).end();
        if (mode === 'wrong') {
          const w = Buffer.from(b);
          w[w.length >> 1] ^= 0xff;
          return void res.writeHead(200, { 'content-length': w.length }).end(w);
        }
        if (mode === 'long') return void res.writeHead(200).end(Buffer.concat([b, Buffer.from('more')]));
        if (mode === 'truncate') {
          res.writeHead(200, { 'content-length': b.length });
          res.write(b.subarray(0, b.length >> 1), () => setTimeout(() => res.destroy(), 20));
          return;
        }
        return void res.writeHead(200, { 'content-length': b.length }).end(b);
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(top, { recursive: true, force: true });
  });
  beforeEach(() => {
    modes.clear();
    gets.clear();
    bearer = false;
    badManifest = false;
  });

  let n = 0;
  const fresh = (): LayerStore => LayerStore.open(path.join(top, `store-${n++}`));
  const host = (): string => `127.0.0.1:${port}`;
  const cached = (s: LayerStore): string[] => fs.readdirSync(path.join(s.root, 'blobs', 'sha256')).map((h) => `sha256:${h}`).sort();

  /** The pull fails with `re`; the store holds no layer and no image, tmp/ is empty, the cache only verified blobs. */
  async function failsClean(s: LayerStore, re: RegExp, ref = `${host()}/lie/app:v1`): Promise<void> {
    await assert.rejects(pull(s, ref, 'x:1'), (e: Error) => {
      assert.match(e.message, re);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    assert.deepEqual(s.list(), [], 'no layer left in the store');
    assert.deepEqual(s.images(), {});
    assert.deepEqual(fs.readdirSync(s.paths.tmpRoot), [], 'no temp file left');
    for (const d of cached(s)) assert.equal(sha(fs.readFileSync(path.join(s.root, 'blobs', 'sha256', d.slice(7)))), d, 'cache holds only verified blobs');
  }

  it('wrong bytes: refused, the blob never enters the cache', async () => {
    const s = fresh();
    modes.set(amd.layers[1]!.digest, 'wrong');
    await failsClean(s, new RegExp(`^EINVAL: blob from 127\\.0\\.0\\.1:\\d+ does not match its digest ${amd.layers[1]!.digest} \\(got sha256:[0-9a-f]{64}\\)$`));
    assert.ok(!cached(s).includes(amd.layers[1]!.digest));
  });

  it('a manifest naming a missing blob', async () => {
    modes.set(amd.layers[2]!.digest, 'missing');
    await failsClean(fresh(), new RegExp(`^ENOENT: registry 127\\.0\\.0\\.1:\\d+ has no blob ${amd.layers[2]!.digest} in lie/app$`));
  });

  it('a truncated download, and a blob longer than its descriptor', async () => {
    modes.set(amd.layers[1]!.digest, 'truncate');
    await failsClean(fresh(), new RegExp(`^EIO: download of blob ${amd.layers[1]!.digest} was cut off after \\d+ of ${amd.layers[1]!.blob.length} bytes$`));
    modes.set(amd.layers[1]!.digest, 'long');
    await failsClean(fresh(), new RegExp(`^EFBIG: blob ${amd.layers[1]!.digest} from .* is longer than its ${amd.layers[1]!.blob.length} bytes$`));
  });

  it('an endless redirect', async () => {
    modes.set(amd.layers[0]!.digest, 'loop');
    await failsClean(fresh(), /^ELOOP: too many redirects \(8\) for GET \/v2\/lie\/app\/blobs\/sha256:[0-9a-f]{64}$/);
  });

  it('a manifest whose bytes are not the digest asked for (or the registry claims)', async () => {
    badManifest = true;
    await failsClean(fresh(), new RegExp(`^EINVAL: manifest from .* does not match its digest ${amd.digest} \\(got sha256:[0-9a-f]{64}\\)$`), `${host()}/lie/app@${amd.digest}`);
  });

  it('the CLI prints the one line and exits 1', async () => {
    modes.set(amd.layers[1]!.digest, 'wrong');
    const root = path.join(top, 'cli');
    const r = await run(process.execPath, [CLI, 'image', 'pull', '--root', root, `${host()}/lie/app:v1`]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((r as { code: number }).code, 1);
    assert.match((r as { stderr: string }).stderr, /^layerfs: [^\n]*EINVAL: blob from [^\n]* does not match its digest [^\n]*\n$/);
    assert.deepEqual(LayerStore.open(root).list(), []);
  });

  it('Bearer token auth, an index narrowed to linux/amd64, a blob redirected to another host', async () => {
    bearer = true;
    modes.set(amd.layers[0]!.digest, 'elsewhere');
    const s = fresh();
    await assert.rejects(pull(s, `${host()}/lie/app:multi`, 'm:1', { creds: { username: 'bob', password: 'nope' } }), /^Error: EACCES: token server 127\.0\.0\.1:\d+ refused \(401\), as bob$/);
    const r = await pull(s, `${host()}/lie/app:multi`, 'm:1', { creds: { username: 'bob', password: 'pw' }, platform: { os: 'linux', architecture: 'amd64' } });
    assert.equal(r.digest, amd.digest);
    assert.deepEqual(
      s.chain(r.top).reverse().map((l) => s.get(l).diffId),
      amd.layers.map((l) => l.diffId),
    );
    const dir = path.join(top, 'flat');
    fs.mkdirSync(dir);
    await s.flattenInto(r.top, dir);
    assert.equal(fs.readFileSync(path.join(dir, 'hello'), 'utf8'), 'amd64\n');
    const arm64 = await pull(s, `${host()}/lie/app:multi`, 'm:arm', { creds: { username: 'bob', password: 'pw' }, platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(arm64.digest, arm.digest);
    await assert.rejects(pull(s, `${host()}/lie/app:multi`, 'm:s390', { creds: { username: 'bob', password: 'pw' }, platform: { os: 'linux', architecture: 's390x' } }), /^Error: ENOENT: image index has no linux\/s390x image \(has linux\/arm64, linux\/amd64\)$/);
  });

  it('a pull cut off halfway resumes with what it verified', async () => {
    const s = fresh();
    modes.set(amd.layers[1]!.digest, 'truncate');
    await assert.rejects(pull(s, `${host()}/lie/app:v1`, 'r:1'), /cut off/);
    const have = cached(s);
    assert.ok(have.includes(amd.layers[0]!.digest) && have.includes(amd.layers[2]!.digest), 'the layers that arrived are kept, verified');
    assert.ok(!have.includes(amd.layers[1]!.digest));
    modes.clear();
    gets.clear();
    const r = await pull(s, `${host()}/lie/app:v1`, 'r:1');
    assert.deepEqual([...gets.keys()], [amd.layers[1]!.digest], 'only the missing layer is fetched again');
    assert.equal(s.resolve('r:1'), r.top);
    assert.deepEqual(cached(s), [], 'cache emptied once the image is in');
  });
});
