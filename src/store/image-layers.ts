/** Shared steps of image import: layers in order onto the store, reusing identical chains. */
import * as fs from 'node:fs';
import type { LayerStore } from './store.js';
import { chainIdOf } from './meta.js';
import { storeErr } from './store-error.js';

export interface ImageLayerSource {
  /** Opens the layer blob (any supported compression). */
  open(): AsyncIterable<Buffer>;
  /** DiffID the config promises for it. */
  diffId: string;
}

/**
 * Imports `layers` (base first): a layer whose ChainID the store already has on the same parent is
 * reused; a DiffID that does not match the config is an error (the layer is removed again).
 */
export async function importImageLayers(
  store: LayerStore,
  layers: ImageLayerSource[],
  onLayer?: (i: number, n: number) => void,
): Promise<string> {
  let parent: string | null = null;
  let chain: string | null = null;
  const created: string[] = [];
  try {
    return await importAll();
  } catch (e) {
    // leave the store as it was: drop the layers this import added, newest first
    for (const id of created.reverse()) await store.remove(id).catch(() => undefined);
    throw e;
  }

  async function importAll(): Promise<string> {
    for (let i = 0; i < layers.length; i++) {
      const l = layers[i]!;
      onLayer?.(i, layers.length);
      const want = chainIdOf(chain, l.diffId);
      const existing = store.list().find((m) => m.kind === 'layer' && m.chainId === want && m.parent === parent);
      if (existing) {
        parent = existing.id;
        chain = want;
        continue;
      }
      const meta = await store.importTar(l.open(), { ...(parent !== null ? { parent } : {}), createdBy: 'image import' });
      created.push(meta.id);
      if (meta.diffId !== l.diffId) {
        throw storeErr('EINVAL', `layer ${i + 1} has DiffID ${meta.diffId}, config says ${l.diffId}`);
      }
      parent = meta.id;
      chain = meta.chainId;
    }
    if (parent === null) throw storeErr('EINVAL', 'image has no layers');
    return parent;
  }
}

export function readJson(file: string, what: string): Record<string, unknown> {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw storeErr('EINVAL', `cannot read ${what}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
}
