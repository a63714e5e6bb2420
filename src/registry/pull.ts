/**
 * `image pull`: manifest (an index narrowed to one platform), config, then the layers the store
 * lacks, fetched in parallel into the verified blob cache and imported in order as they arrive
 * (each layer's DiffID checked against the config). A layer whose ChainID the store has is not
 * downloaded. The cache keeps what was verified until the image is in the store, so a pull that
 * was interrupted resumes with it when run again.
 */
import * as fs from 'node:fs';
import { importImageLayers, type ImageLayerSource } from '../store/image-layers.js';
import { chainIdOf } from '../store/meta.js';
import type { LayerStore } from '../store/store.js';
import { BlobCache } from './blob-cache.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { regErr } from './errors.js';
import type { OnEvent } from './events.js';
import { fetchManifest, pickPlatform, type Descriptor, type ImageManifest, type Platform } from './manifest.js';
import { recordOrigins } from './origins.js';
import { familiarName, parseReference } from './reference.js';

export interface PullOptions extends ClientOptions {
  /** Platform to take from an index (default: the host's, then linux/amd64). */
  platform?: Platform;
  /** Layers downloaded at once (default 3). */
  parallel?: number;
  onEvent?: OnEvent;
}

export interface PullResult {
  /** Top layer id in the store. */
  top: string;
  /** The image name given to it. */
  name: string;
  /** Digest of the image manifest pulled. */
  digest: string;
}

function semaphore(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let free = n;
  const queue: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (free === 0) await new Promise<void>((r) => queue.push(r));
    else free--;
    try {
      return await fn();
    } finally {
      const nx = queue.shift();
      if (nx) nx();
      else free++;
    }
  };
}

export async function pull(store: LayerStore, refText: string, name: string | undefined, opts: PullOptions = {}): Promise<PullResult> {
  const ref = parseReference(refText);
  const imageName = name ?? familiarName(ref);
  const repo = ref.repository;
  const client = new RegistryClient(ref.registry, opts);
  const cache = new BlobCache(store);
  const emit = opts.onEvent ?? (() => undefined);
  try {
    let got = await fetchManifest(client, repo, ref.digest ?? ref.tag!);
    if (got.manifest.kind === 'index') {
      const d = pickPlatform(got.manifest, opts.platform);
      got = await fetchManifest(client, repo, d.digest);
      if (got.manifest.kind !== 'manifest') throw regErr('EINVAL', 'an image index points at another index');
    }
    const manifest: ImageManifest = got.manifest;

    const cdesc = manifest.config;
    emit({ label: 'config', digest: cdesc.digest, size: cdesc.size, done: 0, state: cache.has(cdesc) ? 'cached' : 'downloading' });
    const cfile = await cache.fetch(client, repo, cdesc);
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(fs.readFileSync(cfile, 'utf8')) as Record<string, unknown>;
      if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error('not an object');
    } catch {
      throw regErr('EINVAL', `image config ${cdesc.digest} is not a JSON object`);
    }
    const diffIds = (config.rootfs as { diff_ids?: unknown } | undefined)?.diff_ids;
    if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string' && /^sha256:[0-9a-f]{64}$/.test(d))) {
      throw regErr('EINVAL', 'image config has no valid rootfs.diff_ids');
    }
    const layers = manifest.layers;
    if (layers.length !== diffIds.length) throw regErr('EINVAL', `manifest has ${layers.length} layers, config ${diffIds.length} DiffIDs`);
    if (layers.length === 0) throw regErr('EINVAL', 'image has no layers');

    // layers whose chain the store already holds need no download
    const have = new Set(store.list().map((m) => m.chainId));
    let chain: string | null = null;
    const present = diffIds.map((d) => (chain = chainIdOf(chain, d as string)) !== null && have.has(chain));

    const label = (i: number): string => `layer ${i + 1}/${layers.length}`;
    const limit = semaphore(Math.max(1, opts.parallel ?? 3));
    const downloads = new Map<number, Promise<string>>();
    const download = (i: number): Promise<string> => {
      let p = downloads.get(i);
      if (!p) {
        const d: Descriptor = layers[i]!;
        if (cache.has(d)) emit({ label: label(i), digest: d.digest, size: d.size, done: d.size, state: 'cached' });
        else emit({ label: label(i), digest: d.digest, size: d.size, done: 0, state: 'waiting' });
        p = limit(() =>
          cache.fetch(client, repo, d, (n) => emit({ label: label(i), digest: d.digest, size: d.size, done: n, state: 'downloading' })),
        ).then((f) => {
          emit({ label: label(i), digest: d.digest, size: d.size, done: d.size, state: 'verified' });
          return f;
        });
        p.catch(() => undefined); // awaited by the import below; settled before pull returns
        downloads.set(i, p);
      }
      return p;
    };
    layers.forEach((d, i) => {
      if (present[i]) emit({ label: label(i), digest: d.digest, size: d.size, done: d.size, state: 'present' });
      else download(i);
    });

    const sources: ImageLayerSource[] = layers.map((d, i) => ({
      diffId: diffIds[i] as string,
      open: () =>
        (async function* (): AsyncGenerator<Buffer> {
          const file = await download(i);
          for await (const c of fs.createReadStream(file)) yield c as Buffer;
          emit({ label: label(i), digest: d.digest, size: d.size, done: d.size, state: 'imported' });
        })(),
    }));
    let top: string;
    try {
      top = await importImageLayers(store, sources);
    } finally {
      await Promise.allSettled(downloads.values());
    }
    await store.tag(imageName, top, config);
    await recordOrigins(
      store,
      layers.map((d, i) => ({ diffId: diffIds[i] as string, origin: { registry: ref.registry, repository: repo, digest: d.digest, size: d.size, mediaType: d.mediaType, diffId: diffIds[i] as string } })),
    );
    // the image is in the store: the cached blobs have done their job
    for (const d of [cdesc, ...layers]) cache.remove(d.digest);
    return { top, name: imageName, digest: got.digest };
  } finally {
    client.close();
  }
}
