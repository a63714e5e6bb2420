/**
 * `image push`: each layer as a gzip blob (the reproducible export, so the same layer always has
 * the same digest), the config and an OCI manifest. A blob the repository has (HEAD) is skipped; a
 * blob known from another repository of the same registry is mounted from there; anything else is
 * uploaded, monolithically or in chunks (`PATCH` with `Content-Range`, then `PUT ?digest=`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { imageConfig, writeLayerBlob } from '../store/blobs.js';
import type { LayerStore } from '../store/store.js';
import { RegistryClient, errorText, type ClientOptions } from './client.js';
import { regErr } from './errors.js';
import { inParallel, type OnEvent } from './events.js';
import { MT, sha256, type Descriptor } from './manifest.js';
import { originsOf, recordOrigins, type Origin } from './origins.js';
import { parseReference } from './reference.js';

export interface PushOptions extends ClientOptions {
  /** Upload in chunks of this many bytes; blobs up to this size go in one request (default 16 MiB). */
  chunkSize?: number;
  /** Layers handled at once (default 3). */
  parallel?: number;
  onEvent?: OnEvent;
}

export interface PushResult {
  digest: string;
  /** How each blob got there, by digest: uploaded, present or mounted. */
  blobs: Record<string, 'uploaded' | 'present' | 'mounted'>;
}

type Body = { size: number; open: (start: number, end: number) => Readable };

function counting(onBytes: (n: number) => void): Transform {
  let n = 0;
  return new Transform({
    transform(c: Buffer, _e, cb) {
      n += c.length;
      onBytes(n);
      cb(null, c);
    },
  });
}

class Uploader {
  constructor(
    private readonly client: RegistryClient,
    private readonly repo: string,
    private readonly chunkSize: number,
  ) {}

  private get scopes(): string[] {
    return [`repository:${this.repo}:pull,push`];
  }

  async exists(digest: string): Promise<boolean> {
    const r = await this.client.request('HEAD', `/v2/${this.repo}/blobs/${digest}`, { scopes: this.scopes });
    r.body.resume();
    if (r.status === 200) return true;
    if (r.status === 404) return false;
    throw regErr('EIO', `HEAD blob ${digest} on ${this.client.registry}: HTTP ${r.status}`);
  }

  /** Asks the registry to link `digest` from repository `from`; false when it starts an upload instead. */
  async mount(digest: string, from: string): Promise<boolean> {
    const q = new URLSearchParams({ mount: digest, from });
    const r = await this.client.request('POST', `/v2/${this.repo}/blobs/uploads/?${q}`, {
      scopes: [...this.scopes, `repository:${from}:pull`],
      headers: { 'content-length': '0' },
      body: Buffer.alloc(0),
    });
    r.body.resume();
    if (r.status === 201) return true;
    if (r.status === 202 && typeof r.headers.location === 'string') {
      // an upload session we do not need: cancel it (best effort)
      const del = await this.client.request('DELETE', await this.client.url(r.headers.location)).catch(() => undefined);
      del?.body.resume();
    }
    return false;
  }

  async upload(digest: string, body: Body, onBytes: (n: number) => void): Promise<void> {
    const start = await this.client.request('POST', `/v2/${this.repo}/blobs/uploads/`, {
      scopes: this.scopes,
      headers: { 'content-length': '0' },
      body: Buffer.alloc(0),
    });
    if (start.status !== 202) throw regErr('EIO', `starting upload of ${digest} to ${this.client.registry}: ${await errorText(start)}`);
    start.body.resume();
    let loc = this.location(start.headers.location);
    const finish = async (url: URL, bodyPart?: { from: number; to: number }): Promise<void> => {
      url.searchParams.set('digest', digest);
      const len = bodyPart ? bodyPart.to - bodyPart.from : 0;
      const r = await this.client.request('PUT', url, {
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(len) },
        body: bodyPart ? () => body.open(bodyPart.from, bodyPart.to).pipe(counting((n) => onBytes(bodyPart.from + n))) : Buffer.alloc(0),
      });
      if (r.status !== 201) throw regErr('EIO', `finishing upload of ${digest} to ${this.client.registry}: ${await errorText(r)}`);
      r.body.resume();
    };
    if (body.size <= this.chunkSize) return finish(await loc, { from: 0, to: body.size });
    for (let off = 0; off < body.size; off += this.chunkSize) {
      const end = Math.min(body.size, off + this.chunkSize);
      const r = await this.client.request('PATCH', await loc, {
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - off), 'content-range': `${off}-${end - 1}` },
        body: () => body.open(off, end).pipe(counting((n) => onBytes(off + n))),
      });
      if (r.status !== 202) throw regErr('EIO', `uploading ${digest} to ${this.client.registry}: ${await errorText(r)}`);
      r.body.resume();
      loc = this.location(r.headers.location);
    }
    await finish(await loc);
  }

  private async location(h: string | undefined): Promise<URL> {
    if (!h) throw regErr('EPROTO', `registry ${this.client.registry} gave no upload Location`);
    return this.client.url(h);
  }
}

function fileBody(file: string): Body {
  return { size: fs.statSync(file).size, open: (start, end) => fs.createReadStream(file, { start, end: end - 1 }) };
}

function bufferBody(b: Buffer): Body {
  return {
    size: b.length,
    open: (start, end) => Readable.from([b.subarray(start, end)]),
  };
}

export async function push(store: LayerStore, image: string, refText: string, opts: PushOptions = {}): Promise<PushResult> {
  const ref = parseReference(refText);
  const repo = ref.repository;
  const top = store.resolve(image);
  if (store.get(top).kind !== 'layer') throw regErr('EINVAL', `${image} is a container; commit it first`);
  const stored = Object.values(store.images()).find((e) => e.layer === top && e.config)?.config;
  const chain = store.chain(top).reverse();
  const client = new RegistryClient(ref.registry, opts);
  const up = new Uploader(client, repo, Math.max(1, opts.chunkSize ?? 16 << 20));
  const emit = opts.onEvent ?? (() => undefined);
  const how: PushResult['blobs'] = {};
  const learned: { diffId: string; origin: Origin }[] = [];
  try {
    return await store.staged(async (dir) => {
      const label = (i: number): string => `layer ${i + 1}/${chain.length}`;
      const layerDescs = await inParallel(
        Math.max(1, opts.parallel ?? 3),
        chain.map((id, i) => async (): Promise<{ desc: Descriptor; diffId: string }> => {
          const storeDiffId = store.get(id).diffId;
          // a blob of this layer known on this registry: already in the repository, or mountable
          if (storeDiffId !== null) {
            for (const o of originsOf(store, storeDiffId, ref.registry)) {
              const diffId = o.diffId;
              const desc: Descriptor = { mediaType: o.mediaType, digest: o.digest, size: o.size };
              if (await up.exists(o.digest)) {
                how[o.digest] = 'present';
                emit({ label: label(i), digest: o.digest, size: o.size, done: o.size, state: 'present' });
                return { desc, diffId };
              }
              if (o.repository !== repo && (await up.mount(o.digest, o.repository))) {
                how[o.digest] = 'mounted';
                learned.push({ diffId: storeDiffId, origin: { ...o, repository: repo } });
                emit({ label: label(i), digest: o.digest, size: o.size, done: o.size, state: 'mounted' });
                return { desc, diffId };
              }
            }
          }
          emit({ label: label(i), digest: '', size: 0, done: 0, state: 'compressing' });
          const blob = await writeLayerBlob(store.exportTar(id), dir, true);
          const file = path.join(dir, `layer-${i}.tar.gz`);
          fs.renameSync(blob.file, file);
          const desc: Descriptor = { mediaType: MT.ociLayerGzip, digest: blob.digest, size: blob.size };
          if (await up.exists(blob.digest)) {
            how[blob.digest] = 'present';
            emit({ label: label(i), digest: blob.digest, size: blob.size, done: blob.size, state: 'present' });
          } else {
            await up.upload(blob.digest, fileBody(file), (n) =>
              emit({ label: label(i), digest: blob.digest, size: blob.size, done: n, state: 'uploading' }),
            );
            how[blob.digest] = 'uploaded';
            emit({ label: label(i), digest: blob.digest, size: blob.size, done: blob.size, state: 'uploaded' });
          }
          fs.rmSync(file, { force: true });
          if (storeDiffId !== null) {
            const origin = { registry: ref.registry, repository: repo, digest: blob.digest, size: blob.size, mediaType: desc.mediaType, diffId: blob.diffId };
            learned.push({ diffId: storeDiffId, origin });
          }
          return { desc, diffId: blob.diffId };
        }),
      );

      const config = Buffer.from(JSON.stringify(imageConfig(stored, layerDescs.map((l) => l.diffId), store.get(top).created)));
      const cdigest = sha256(config);
      if (await up.exists(cdigest)) how[cdigest] = 'present';
      else {
        await up.upload(cdigest, bufferBody(config), () => undefined);
        how[cdigest] = 'uploaded';
      }
      emit({ label: 'config', digest: cdigest, size: config.length, done: config.length, state: how[cdigest] === 'present' ? 'present' : 'uploaded' });

      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MT.ociManifest,
          config: { mediaType: MT.ociConfig, digest: cdigest, size: config.length },
          layers: layerDescs.map((l) => l.desc),
        }),
      );
      const digest = sha256(manifest);
      if (ref.digest !== undefined && ref.digest !== digest) {
        throw regErr('EINVAL', `the image's manifest has digest ${digest}, not ${ref.digest}`);
      }
      const r = await client.request('PUT', `/v2/${repo}/manifests/${ref.tag ?? digest}`, {
        scopes: [`repository:${repo}:pull,push`],
        headers: { 'content-type': MT.ociManifest, 'content-length': String(manifest.length) },
        body: manifest,
      });
      if (r.status !== 201) throw regErr('EIO', `putting the manifest to ${client.registry}/${repo}: ${await errorText(r)}`);
      r.body.resume();
      const claimed = r.headers['docker-content-digest'];
      if (typeof claimed === 'string' && claimed !== digest) throw regErr('EPROTO', `registry stored the manifest as ${claimed}, not ${digest}`);
      await recordOrigins(store, learned);
      return { digest, blobs: how };
    });
  } finally {
    client.close();
  }
}
