/**
 * containerd's snapshots (active, view, committed) over the store's id-addressed layers
 * (LayerDriver): each snapshot owns one layer, its parent's layer below it.
 *
 *   ROOT/diff/<id>/  ROOT/layers/<id>   the layers (LayerDriver's aufs layout)
 *   ROOT/snapshots.json                 key -> {id, parent, kind, labels, created, updated, size}
 *   ROOT/snapshots.lock                 held while a change is made (store/lock.ts)
 *
 * containerd names snapshots by free-form keys; the layers get short ids of our own (a counter),
 * so union option strings stay short. A committed snapshot keeps the layer its active snapshot
 * wrote: commit renames the record, nothing is copied. The metadata file is rewritten whole
 * (temp + rename) under the lock; a layer is made before its record is written and removed after
 * its record is gone, so a crash leaves at worst an orphan layer, which cleanup() removes.
 *
 * Errors are FsErrors: ENOENT (no such snapshot), EEXIST, EINVAL (bad argument, parent not
 * committed), EPERM (not allowed for this kind: commit of a view, mounts of a committed one),
 * ENOTEMPTY (remove of a snapshot with children).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isCode } from '../errors/index.js';
import { PRIVATE } from '../format/index.js';
import { writeFileAtomic } from './atomic.js';
import { LayerDriver, type Mounter } from './layer-driver.js';
import { withLock } from './lock.js';
import { storeErr } from './store-error.js';

export type SnapshotKind = 'view' | 'active' | 'committed';

export interface SnapshotInfo {
  name: string;
  /** The parent's name ('' for none). */
  parent: string;
  kind: SnapshotKind;
  labels: Record<string, string>;
  /** ms since the epoch */
  created: number;
  updated: number;
}

/** What a mount of an active or view snapshot is made of. */
export interface SnapshotLayers {
  kind: 'active' | 'view';
  /** The snapshot's own layer dir: the writable top of an active snapshot. */
  own: string;
  /** The parents' layer dirs, nearest first. */
  lowers: string[];
}

export interface SnapshotUsage {
  size: number;
  inodes: number;
}

interface Record_ {
  id: string;
  parent: string;
  kind: SnapshotKind;
  labels: Record<string, string>;
  created: number;
  updated: number;
  /** Usage frozen at commit. */
  usage?: SnapshotUsage;
}

interface Meta {
  version: 1;
  next: number;
  snapshots: Record<string, Record_>;
}

/** containerd's limits: a key of a few KiB; a label's key and value together at most 4096 bytes. */
const MAX_KEY = 4096;
const MAX_LABEL = 4096;

/** Mounts no union: containerd mounts what `layers()` describes. */
const NO_MOUNTS: Mounter = {
  mount: () => Promise.reject(storeErr('ENOTSUP', 'snapshot layers are mounted by containerd')),
  unmount: () => Promise.resolve(),
};

export function checkKey(key: unknown, what = 'key'): string {
  if (typeof key !== 'string' || key === '') throw storeErr('EINVAL', `missing ${what}`);
  if (Buffer.byteLength(key) > MAX_KEY) throw storeErr('EINVAL', `${what} longer than ${MAX_KEY} bytes`);
  if (key.includes('\0')) throw storeErr('EINVAL', `${what} contains a NUL byte`);
  return key;
}

export function checkLabels(labels: unknown): Record<string, string> {
  if (labels === undefined || labels === null) return {};
  if (typeof labels !== 'object' || Array.isArray(labels)) throw storeErr('EINVAL', 'labels must be a map of strings');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels as Record<string, unknown>)) {
    if (typeof v !== 'string') throw storeErr('EINVAL', `label ${JSON.stringify(k)} is not a string`);
    if (k === '') throw storeErr('EINVAL', 'empty label key');
    if (Buffer.byteLength(k) + Buffer.byteLength(v) > MAX_LABEL) throw storeErr('EINVAL', `label ${JSON.stringify(k.slice(0, 64))}: key and value exceed ${MAX_LABEL} bytes`);
    out[k] = v;
  }
  return out;
}

/** Bytes of regular files (hard links once) and number of inodes under `dir`, `dir` included. */
function dirUsage(dir: string): SnapshotUsage {
  const seen = new Set<number>();
  let size = 0;
  let inodes = 0;
  const walk = (d: string): void => {
    for (const n of fs.readdirSync(d)) {
      if (d === dir && n.startsWith(PRIVATE)) continue;
      const st = fs.lstatSync(path.join(d, n));
      if (seen.has(st.ino)) continue;
      seen.add(st.ino);
      inodes++;
      if (st.isDirectory()) walk(path.join(d, n));
      else if (st.isFile()) size += st.size;
    }
  };
  walk(dir);
  return { size, inodes: inodes + 1 };
}

export class SnapshotStore {
  readonly root: string;
  readonly driver: LayerDriver;
  private readonly metaFile: string;
  private readonly lockFile: string;
  /** In-process queue in front of the lock file (which serialises processes). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(root: string) {
    this.root = path.resolve(root);
    this.driver = new LayerDriver(this.root, NO_MOUNTS);
    this.metaFile = path.join(this.root, 'snapshots.json');
    this.lockFile = path.join(this.root, 'snapshots.lock');
  }

  private load(): Meta {
    let text: string;
    try {
      text = fs.readFileSync(this.metaFile, 'utf8');
    } catch (e) {
      if (isCode(e, 'ENOENT')) return { version: 1, next: 1, snapshots: {} };
      throw e;
    }
    let m: unknown;
    try {
      m = JSON.parse(text);
    } catch {
      throw storeErr('EIO', `${this.metaFile} is not valid JSON`);
    }
    const meta = m as Partial<Meta>;
    if (meta === null || typeof meta !== 'object' || meta.version !== 1 || typeof meta.next !== 'number' || typeof meta.snapshots !== 'object' || meta.snapshots === null) {
      throw storeErr('EIO', `${this.metaFile}: unknown format`);
    }
    return meta as Meta;
  }

  private save(meta: Meta): void {
    writeFileAtomic(this.metaFile, JSON.stringify(meta));
  }

  /** Runs `fn` alone: after the changes queued before it, holding the lock file. */
  private locked<T>(fn: (meta: Meta) => T): Promise<T> {
    const run = this.queue.then(() => withLock(this.lockFile, () => fn(this.load())));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private static need(meta: Meta, key: string): Record_ {
    const r = Object.prototype.hasOwnProperty.call(meta.snapshots, key) ? meta.snapshots[key] : undefined;
    if (!r) throw storeErr('ENOENT', `snapshot ${JSON.stringify(key)} does not exist`);
    return r;
  }

  private static info(name: string, r: Record_): SnapshotInfo {
    return { name, parent: r.parent, kind: r.kind, labels: { ...r.labels }, created: r.created, updated: r.updated };
  }

  private layersOf(meta: Meta, key: string): SnapshotLayers {
    const r = SnapshotStore.need(meta, key);
    if (r.kind === 'committed') throw storeErr('EPERM', `snapshot ${JSON.stringify(key)} is committed: only active and view snapshots have mounts`);
    return { kind: r.kind, own: this.driver.diffDir(r.id), lowers: this.driver.parents(r.id).map((p) => this.driver.diffDir(p)) };
  }

  /** A new active (writable) or view (read-only) snapshot `key` over committed `parent` ('' for none). */
  create(kind: 'active' | 'view', key: string, parent: string, labels: Record<string, string>): Promise<SnapshotLayers> {
    checkKey(key);
    const l = checkLabels(labels);
    return this.locked((meta) => {
      if (Object.prototype.hasOwnProperty.call(meta.snapshots, key)) throw storeErr('EEXIST', `snapshot ${JSON.stringify(key)} already exists`);
      let parentId = '';
      if (parent !== '') {
        const p = Object.prototype.hasOwnProperty.call(meta.snapshots, parent) ? meta.snapshots[parent] : undefined;
        if (!p) throw storeErr('ENOENT', `parent snapshot ${JSON.stringify(parent)} does not exist`);
        if (p.kind !== 'committed') throw storeErr('EINVAL', `parent snapshot ${JSON.stringify(parent)} is not committed`);
        parentId = p.id;
      }
      const id = String(meta.next++);
      if (this.driver.exists(id)) this.removeOrphan(id); // debris of a crash before its record was written
      this.driver.create(id, parentId);
      const now = Date.now();
      meta.snapshots[key] = { id, parent, kind, labels: l, created: now, updated: now };
      try {
        this.save(meta);
      } catch (e) {
        this.removeOrphan(id);
        throw e;
      }
      return this.layersOf(meta, key);
    });
  }

  /** The layers of an active or view snapshot, for its mounts. */
  layers(key: string): Promise<SnapshotLayers> {
    checkKey(key);
    return this.locked((meta) => this.layersOf(meta, key));
  }

  /** Active snapshot `key` becomes committed snapshot `name`, keeping its layer. */
  commit(name: string, key: string, labels: Record<string, string>): Promise<void> {
    checkKey(name, 'name');
    checkKey(key);
    const l = checkLabels(labels);
    return this.locked((meta) => {
      const r = SnapshotStore.need(meta, key);
      if (r.kind !== 'active') throw storeErr('EPERM', `snapshot ${JSON.stringify(key)} is not active (it is a ${r.kind} snapshot)`);
      if (Object.prototype.hasOwnProperty.call(meta.snapshots, name)) throw storeErr('EEXIST', `snapshot ${JSON.stringify(name)} already exists`);
      // the union's private state (.wh..wh.layerfs.*) stays: the union hides it, usage skips it, and
      // a mount still using the layer (committing a running container's snapshot) keeps working
      const now = Date.now();
      meta.snapshots[name] = { id: r.id, parent: r.parent, kind: 'committed', labels: l, created: now, updated: now, usage: dirUsage(this.driver.diffDir(r.id)) };
      delete meta.snapshots[key];
      this.save(meta);
    });
  }

  /** Removes a snapshot without children; its layer goes after its record. */
  async remove(key: string): Promise<void> {
    checkKey(key);
    const id = await this.locked((meta) => {
      const r = SnapshotStore.need(meta, key);
      const child = Object.entries(meta.snapshots).find(([, c]) => c.parent === key);
      if (child) throw storeErr('ENOTEMPTY', `snapshot ${JSON.stringify(key)} has a child: ${JSON.stringify(child[0])}`);
      delete meta.snapshots[key];
      this.save(meta);
      return r.id;
    });
    await this.driver.remove(id);
  }

  stat(key: string): Promise<SnapshotInfo> {
    checkKey(key);
    return this.locked((meta) => SnapshotStore.info(key, SnapshotStore.need(meta, key)));
  }

  /**
   * Changes labels: `paths` empty or holding `labels` replace them all; `labels.KEY` sets (or,
   * absent from `labels`, deletes) one. Other fields cannot change (EINVAL).
   */
  update(name: string, labels: Record<string, string>, paths: readonly string[]): Promise<SnapshotInfo> {
    checkKey(name, 'snapshot name');
    const l = checkLabels(labels);
    for (const p of paths) if (p !== 'labels' && !p.startsWith('labels.')) throw storeErr('EINVAL', `cannot update field ${JSON.stringify(p)}: only labels can change`);
    return this.locked((meta) => {
      const r = SnapshotStore.need(meta, name);
      if (paths.length === 0 || paths.includes('labels')) r.labels = { ...l };
      else {
        for (const p of paths) {
          const k = p.slice('labels.'.length);
          if (Object.prototype.hasOwnProperty.call(l, k)) r.labels[k] = l[k]!;
          else delete r.labels[k];
        }
      }
      checkLabels(r.labels);
      r.updated = Date.now();
      this.save(meta);
      return SnapshotStore.info(name, r);
    });
  }

  list(): Promise<SnapshotInfo[]> {
    return this.locked((meta) => Object.entries(meta.snapshots).map(([k, r]) => SnapshotStore.info(k, r)));
  }

  /** Disk use of the snapshot's own layer (frozen at commit for committed ones). */
  async usage(key: string): Promise<SnapshotUsage> {
    checkKey(key);
    const r = await this.locked((meta) => ({ ...SnapshotStore.need(meta, key) }));
    if (r.usage) return r.usage;
    try {
      return dirUsage(this.driver.diffDir(r.id));
    } catch (e) {
      if (isCode(e, 'ENOENT')) throw storeErr('ENOENT', `snapshot ${JSON.stringify(key)} does not exist`);
      throw e;
    }
  }

  /** Removes layers no snapshot owns (left by a crash) and staging debris; returns how many layers. */
  cleanup(): Promise<number> {
    return this.locked((meta) => {
      const owned = new Set(Object.values(meta.snapshots).map((r) => r.id));
      let n = 0;
      for (const id of fs.readdirSync(path.join(this.root, 'diff')).sort((a, b) => Number(b) - Number(a))) {
        if (owned.has(id) || !/^[0-9]+$/.test(id)) continue;
        this.removeOrphan(id);
        n++;
      }
      for (const t of fs.readdirSync(path.join(this.root, 'tmp'))) fs.rmSync(path.join(this.root, 'tmp', t), { recursive: true, force: true });
      return n;
    });
  }

  /** Removes a layer no record names, with the layers-file entry LayerDriver.remove would keep for a parent. */
  private removeOrphan(id: string): void {
    fs.rmSync(this.driver.diffDir(id), { recursive: true, force: true });
    fs.rmSync(path.join(this.root, 'layers', id), { force: true });
  }
}
