/**
 * OCI image layout directories (`oci-layout`, `index.json`, `blobs/sha256/`): export an image
 * (gzip layers, config, manifest, ref name annotation) and import one (verifying blob digests
 * and DiffIDs). `umoci unpack --image DIR:TAG` and `skopeo ... oci:DIR:TAG` read what we write.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { digestHex, fileDigest, imageConfig, writeLayerBlob } from './blobs.js';
import { importImageLayers, readJson, type ImageLayerSource } from './image-layers.js';
import { checkImageName, type LayerStore } from './store.js';
import { storeErr } from './store-error.js';
import { createHash } from 'node:crypto';

export const MT_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MT_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MT_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const REF = 'org.opencontainers.image.ref.name';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture?: string; os?: string };
}

function putBlob(dir: string, data: Buffer): Descriptor & { mediaType: '' } {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const file = path.join(dir, 'blobs', 'sha256', digestHex(digest));
  if (!fs.existsSync(file)) writeFileAtomic(file, data);
  return { mediaType: '', digest, size: data.length };
}

/** Splits `DIR:TAG` (the tag is optional; default `latest`). */
export function splitLayoutRef(s: string): { dir: string; tag: string | undefined } {
  const i = s.lastIndexOf(':');
  if (i > 0 && !s.slice(i + 1).includes('/')) return { dir: s.slice(0, i), tag: s.slice(i + 1) };
  return { dir: s, tag: undefined };
}

/** Writes image `ref` of the store into the OCI layout `dir` under `tag`. */
export async function exportOci(store: LayerStore, ref: string, dir: string, tag: string, onLayer?: (i: number, n: number) => void): Promise<string> {
  const top = store.resolve(ref);
  if (store.get(top).kind !== 'layer') throw storeErr('EINVAL', `${ref} is a container; commit it first`);
  const stored = Object.values(store.images()).find((e) => e.layer === top && e.config)?.config;
  const chain = store.chain(top).reverse();
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  if (!fs.existsSync(path.join(dir, 'oci-layout'))) writeFileAtomic(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (let i = 0; i < chain.length; i++) {
    onLayer?.(i, chain.length);
    const blob = await writeLayerBlob(store.exportTar(chain[i]!), path.join(dir, 'blobs', 'sha256'), true);
    fs.renameSync(blob.file, path.join(dir, 'blobs', 'sha256', digestHex(blob.digest)));
    layers.push({ mediaType: MT_LAYER_GZIP, digest: blob.digest, size: blob.size });
    diffIds.push(blob.diffId);
  }
  const created = store.get(top).created;
  const config = putBlob(dir, Buffer.from(JSON.stringify(imageConfig(stored, diffIds, created))));
  const manifest = { schemaVersion: 2, mediaType: MT_MANIFEST, config: { ...config, mediaType: MT_CONFIG }, layers };
  const m = putBlob(dir, Buffer.from(JSON.stringify(manifest)));
  const indexFile = path.join(dir, 'index.json');
  const index = fs.existsSync(indexFile) ? readJson(indexFile, 'index.json') : { schemaVersion: 2 };
  const old = Array.isArray(index.manifests) ? (index.manifests as Descriptor[]) : [];
  const manifests = old.filter((d) => d.annotations?.[REF] !== tag);
  manifests.push({ mediaType: MT_MANIFEST, digest: m.digest, size: m.size, annotations: { [REF]: tag } });
  writeFileAtomic(indexFile, JSON.stringify({ schemaVersion: 2, mediaType: MT_INDEX, manifests }));
  return m.digest;
}

function blobPath(dir: string, digest: string): string {
  let hex: string;
  try {
    hex = digestHex(digest);
  } catch {
    throw storeErr('EINVAL', `unsupported digest ${JSON.stringify(digest)}`);
  }
  return path.join(dir, 'blobs', 'sha256', hex);
}

async function verifiedBlob(dir: string, d: Descriptor): Promise<string> {
  const file = blobPath(dir, d.digest);
  if (!fs.existsSync(file)) throw storeErr('ENOENT', `blob ${d.digest} missing from ${dir}`);
  if ((await fileDigest(file)) !== d.digest) throw storeErr('EINVAL', `blob ${d.digest} does not match its digest`);
  return file;
}

function pickManifest(dir: string, index: Record<string, unknown>, tag: string | undefined): Descriptor {
  const list = Array.isArray(index.manifests) ? (index.manifests as Descriptor[]) : [];
  let cands = tag === undefined ? list : list.filter((d) => d.annotations?.[REF] === tag);
  if (cands.length === 0) throw storeErr('ENOENT', tag === undefined ? `no image in ${dir}` : `no image tagged ${tag} in ${dir}`);
  if (cands.length > 1) {
    const linux = cands.filter((d) => !d.platform || d.platform.os === 'linux');
    if (linux.length > 1 && tag === undefined) throw storeErr('EINVAL', `${dir} holds several images; name one as DIR:TAG`);
    cands = linux.length > 0 ? linux : cands;
  }
  return cands[0]!;
}

/** Imports the image `tag` (or the only one) of the OCI layout `dir` and names it `name`. */
export async function importOci(
  store: LayerStore,
  dir: string,
  tag: string | undefined,
  name: string,
  onLayer?: (i: number, n: number) => void,
): Promise<string> {
  const imageName = checkImageName(name);
  if (!fs.existsSync(path.join(dir, 'oci-layout'))) throw storeErr('EINVAL', `${dir} is not an OCI image layout`);
  let desc = pickManifest(dir, readJson(path.join(dir, 'index.json'), 'index.json'), tag);
  for (let depth = 0; desc.mediaType === MT_INDEX; depth++) {
    if (depth > 4) throw storeErr('ELOOP', 'nested image indexes');
    desc = pickManifest(dir, readJson(await verifiedBlob(dir, desc), 'image index'), undefined);
  }
  const manifest = readJson(await verifiedBlob(dir, desc), 'manifest');
  const cdesc = manifest.config as Descriptor | undefined;
  if (!cdesc) throw storeErr('EINVAL', 'manifest has no config');
  const config = readJson(await verifiedBlob(dir, cdesc), 'config');
  const diffIds = ((config.rootfs as { diff_ids?: unknown } | undefined)?.diff_ids ?? []) as string[];
  const ldescs = (Array.isArray(manifest.layers) ? manifest.layers : []) as Descriptor[];
  if (ldescs.length !== diffIds.length) throw storeErr('EINVAL', 'manifest and config disagree on the number of layers');
  const sources: ImageLayerSource[] = [];
  for (let i = 0; i < ldescs.length; i++) {
    const file = await verifiedBlob(dir, ldescs[i]!);
    sources.push({ diffId: diffIds[i]!, open: () => fs.createReadStream(file) });
  }
  const top = await importImageLayers(store, sources, onLayer);
  await store.tag(imageName, top, config);
  return top;
}
