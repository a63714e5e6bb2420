/**
 * `docker save` archives: a tar holding `manifest.json` ([{Config, RepoTags, Layers}]), the image
 * config `<hex>.json`, each layer as `<hex>/layer.tar` (uncompressed) and, as docker save writes it,
 * the legacy `repositories` file ({name: {tag: top layer}}). Tags are written in docker's familiar
 * form (`demo:1`, `me/app:v2`; `docker.io/library/` dropped), as `docker save` does. Export writes that
 * form; import reads it (and the newer form whose paths point into `blobs/sha256/`), verifying
 * DiffIDs.
 *
 * Note: `skopeo inspect docker-archive:F` always shows `RepoTags: []` (skopeo fills RepoTags only by
 * listing a registry's tags, for docker:// references); `skopeo list-tags docker-archive:F` lists the
 * archive's tags, and `skopeo inspect docker-archive:F:NAME:TAG` finds the image by its tag.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as tar from 'tar-stream';
import { digestHex, imageConfig, writeLayerBlob } from './blobs.js';
import { importImageLayers, readJson, type ImageLayerSource } from './image-layers.js';
import { cleanMemberName, resolveBeneath } from './safe-path.js';
import { checkImageName, type LayerStore } from './store.js';
import { storeErr } from './store-error.js';
import { decompressed } from './compression.js';
import { extractLayer } from './tar-import.js';

/** `docker.io/library/demo:1` -> `demo:1`, `docker.io/me/app:v2` -> `me/app:v2` (docker's familiar form). */
export function familiarTag(tag: string): string {
  const m = /^(?:docker\.io|index\.docker\.io)\/(.+)$/.exec(tag);
  if (!m) return tag;
  return m[1]!.startsWith('library/') && !m[1]!.slice('library/'.length).includes('/') ? m[1]!.slice('library/'.length) : m[1]!;
}

/** Writes image `ref` as a docker-save archive to `file` (tagged `repoTag`). */
export async function exportDocker(store: LayerStore, ref: string, file: string, repoTag: string, onLayer?: (i: number, n: number) => void): Promise<void> {
  const top = store.resolve(ref);
  if (store.get(top).kind !== 'layer') throw storeErr('EINVAL', `${ref} is a container; commit it first`);
  const tagName = familiarTag(checkImageName(repoTag));
  const stored = Object.values(store.images()).find((e) => e.layer === top && e.config)?.config;
  const chain = store.chain(top).reverse();
  await store.staged(async (dir) => {
    const blobs = [];
    for (let i = 0; i < chain.length; i++) {
      onLayer?.(i, chain.length);
      blobs.push(await writeLayerBlob(store.exportTar(chain[i]!), dir, false));
    }
    const config = Buffer.from(JSON.stringify(imageConfig(stored, blobs.map((b) => b.diffId), store.get(top).created)));
    const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
    const layerNames = blobs.map((b) => `${digestHex(b.diffId)}/layer.tar`);
    const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [tagName], Layers: layerNames }]));
    const colon = tagName.lastIndexOf(':');
    const repositories = Buffer.from(
      JSON.stringify({ [tagName.slice(0, colon)]: { [tagName.slice(colon + 1)]: digestHex(blobs[blobs.length - 1]!.diffId) } }) + '\n',
    );
    const pack = tar.pack();
    const tmpOut = `${file}.tmp-${process.pid}`;
    const out = fs.createWriteStream(tmpOut);
    const written = new Promise<void>((resolve, reject) => {
      out.on('finish', () => resolve());
      out.on('error', reject);
    });
    pack.pipe(out);
    const mtime = new Date(0);
    const add = (name: string, body: Buffer): Promise<void> =>
      new Promise((resolve, reject) => pack.entry({ name, mode: 0o644, mtime }, body, (e) => (e ? reject(e) : resolve())));
    const seen = new Set<string>();
    for (let i = 0; i < blobs.length; i++) {
      const name = layerNames[i]!;
      if (seen.has(name)) continue;
      seen.add(name);
      await new Promise<void>((resolve, reject) =>
        pack.entry({ name: path.dirname(name) + '/', type: 'directory', mode: 0o755, mtime }, (e) => (e ? reject(e) : resolve())),
      );
      const b = blobs[i]!;
      let done: Promise<void> = Promise.resolve();
      const sink = pack.entry({ name, mode: 0o644, mtime, size: b.size }, (e) => {
        if (e) done = Promise.reject(e);
      });
      for await (const c of fs.createReadStream(b.file)) {
        if (!sink.write(c as Buffer)) await new Promise<void>((r) => sink.once('drain', () => r()));
      }
      await new Promise<void>((resolve) => {
        sink.once('finish', () => resolve());
        sink.end(undefined);
      });
      await done;
    }
    await add(configName, config);
    await add('manifest.json', manifest);
    await add('repositories', repositories);
    pack.finalize();
    await written;
    fs.renameSync(tmpOut, file);
  });
}

/** Imports a docker-save archive (plain or compressed); `name` defaults to its first RepoTag (familiar form). */
export async function importDocker(
  store: LayerStore,
  file: string,
  name: string | undefined,
  onLayer?: (i: number, n: number) => void,
): Promise<{ top: string; name: string }> {
  return store.staged(async (dir) => {
    const { stream } = await decompressed(fs.createReadStream(file));
    await extractLayer(stream, dir, { asRoot: false });
    const list = JSON.parse(JSON.stringify(readJsonArray(path.join(dir, 'manifest.json')))) as {
      Config?: string;
      RepoTags?: string[] | null;
      Layers?: string[];
    }[];
    const m = list[0];
    if (!m || typeof m.Config !== 'string' || !Array.isArray(m.Layers)) throw storeErr('EINVAL', 'manifest.json has no image');
    const inside = (p: string): string => {
      // a member of the archive; older `docker save` links duplicate layers with relative symlinks
      let rel = cleanMemberName(p);
      for (let hops = 0; hops < 8; hops++) {
        const abs = resolveBeneath(dir, rel, false); // no symlink among the parents
        const st = fs.lstatSync(abs, { throwIfNoEntry: false });
        if (st?.isFile()) return abs;
        if (!st?.isSymbolicLink()) break;
        const target = fs.readlinkSync(abs);
        if (target.startsWith('/')) break;
        const next = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
        if (next.startsWith('../') || next === '..') break;
        rel = next;
      }
      throw storeErr('ENOENT', `archive has no file ${p}`);
    };
    const config = readJson(inside(m.Config), 'image config');
    const diffIds = ((config.rootfs as { diff_ids?: unknown } | undefined)?.diff_ids ?? []) as string[];
    if (diffIds.length !== m.Layers.length) throw storeErr('EINVAL', 'manifest and config disagree on the number of layers');
    const sources: ImageLayerSource[] = m.Layers.map((l, i) => {
      const abs = inside(l);
      return { diffId: diffIds[i]!, open: () => fs.createReadStream(abs) };
    });
    // an archive's tag becomes the name in docker's familiar form, as `docker load` shows it
    const imageName = name !== undefined ? checkImageName(name) : familiarTag(checkImageName(m.RepoTags?.[0] ?? ''));
    const top = await importImageLayers(store, sources, onLayer);
    await store.tag(imageName, top, config);
    return { top, name: imageName };
  });
}

function readJsonArray(file: string): unknown[] {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (!Array.isArray(v)) throw new Error('not a list');
    return v;
  } catch (e) {
    throw storeErr('EINVAL', `not a docker save archive (manifest.json: ${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
  }
}
