/**
 * The store's on-disk layout (Docker's aufs driver layout plus our metadata):
 *
 *   ROOT/diff/<id>/        layer contents (AUFS whiteouts `.wh.NAME`, opaque `.wh..wh..opq`)
 *   ROOT/layers/<id>       direct parent first, then its ancestors, one id per line
 *   ROOT/mnt/<id>/         mount point of a container
 *   ROOT/meta/<id>.json    our metadata (DiffID, ChainID, size, created, parent, kind)
 *   ROOT/images.json       image names -> top layer id (+ original image config)
 *   ROOT/tmp/              staging: everything is built here, then renamed into place
 *   ROOT/lock              the store lock (pid of the holder)
 *
 * A layer exists exactly when its meta file exists: the meta file is renamed into place last on
 * create and removed first on delete, so a crash never leaves a half layer visible.
 */
import * as path from 'node:path';
import { storeErr } from './store-error.js';

export const DEFAULT_ROOT = '/var/lib/layerfs';

/** Root from an explicit option, else $LAYERFS_ROOT, else /var/lib/layerfs. */
export function resolveRoot(explicit?: string): string {
  const r = explicit ?? process.env.LAYERFS_ROOT ?? DEFAULT_ROOT;
  return path.resolve(r);
}

const ID_RE = /^[0-9a-f]{64}$/;

export function isLayerId(s: string): boolean {
  return ID_RE.test(s);
}

/** Throws unless `id` has our id shape (64 lowercase hex digits). */
export function checkId(id: string): string {
  if (!isLayerId(id)) throw storeErr('EINVAL', `not a layer id: ${JSON.stringify(id)}`);
  return id;
}

export class StorePaths {
  constructor(readonly root: string) {}
  get diffRoot(): string {
    return path.join(this.root, 'diff');
  }
  get layersRoot(): string {
    return path.join(this.root, 'layers');
  }
  get mntRoot(): string {
    return path.join(this.root, 'mnt');
  }
  get metaRoot(): string {
    return path.join(this.root, 'meta');
  }
  get tmpRoot(): string {
    return path.join(this.root, 'tmp');
  }
  get lockFile(): string {
    return path.join(this.root, 'lock');
  }
  get imagesFile(): string {
    return path.join(this.root, 'images.json');
  }
  diff(id: string): string {
    return path.join(this.diffRoot, checkId(id));
  }
  layers(id: string): string {
    return path.join(this.layersRoot, checkId(id));
  }
  mnt(id: string): string {
    return path.join(this.mntRoot, checkId(id));
  }
  meta(id: string): string {
    return path.join(this.metaRoot, `${checkId(id)}.json`);
  }
}
