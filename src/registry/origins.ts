/**
 * Where a layer's compressed blob is known to live: `ROOT/blobs/origins.json` maps a store layer's
 * DiffID to the blobs (digest, size, media type, and the DiffID of the blob's own tar, which differs
 * when the store's layer came from a tar that our reproducible export rewrites) seen for it on a
 * registry repository, by pull or by push. A
 * push to a repository of the same registry then finds the blob already there (HEAD) or mounts it
 * from the other repository instead of uploading it again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import type { LayerStore } from '../store/store.js';

export interface Origin {
  registry: string;
  repository: string;
  digest: string;
  size: number;
  mediaType: string;
  /** sha256 of the blob uncompressed: the DiffID an image config lists for it. */
  diffId: string;
}

type Table = Record<string, Origin[]>;

function file(store: LayerStore): string {
  return path.join(store.root, 'blobs', 'origins.json');
}

function read(store: LayerStore): Table {
  try {
    const v = JSON.parse(fs.readFileSync(file(store), 'utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Table) : {};
  } catch {
    return {};
  }
}

/** Known blobs of layer `diffId` on `registry`, most recent first. */
export function originsOf(store: LayerStore, diffId: string, registry: string): Origin[] {
  const list = read(store)[diffId];
  return Array.isArray(list) ? list.filter((o) => o.registry === registry && typeof o.diffId === 'string') : [];
}

/** Records blobs under the store lock (newest first, one entry per repository and digest, at most 8). */
export async function recordOrigins(store: LayerStore, entries: { diffId: string; origin: Origin }[]): Promise<void> {
  if (entries.length === 0) return;
  await store.locked(() => {
    const t = read(store);
    for (const { diffId, origin } of entries) {
      const old = (t[diffId] ?? []).filter((o) => !(o.registry === origin.registry && o.repository === origin.repository && o.digest === origin.digest));
      t[diffId] = [origin, ...old].slice(0, 8);
    }
    fs.mkdirSync(path.dirname(file(store)), { recursive: true });
    writeFileAtomic(file(store), JSON.stringify(t, null, 1) + '\n');
  });
}
