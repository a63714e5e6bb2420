/**
 * The layer store: Docker's aufs layout (diff/, layers/, mnt/) plus our metadata, with atomic
 * changes under a lock. Long work (extracting, flattening) happens in a private staging dir under
 * tmp/ without the lock; only the final renames take it. A layer exists when its meta file does.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { isCode } from '../errors/index.js';
import { fsyncDir, removeTreeAtomic, tmpName, unlinkIfExists, writeFileAtomic } from './atomic.js';
import { decompressed } from './compression.js';
import { withLock } from './lock.js';
import { chainIdOf, parseMeta, type ImageEntry, type ImageTable, type LayerMeta } from './meta.js';
import { isMountPoint } from '../sys/mountinfo.js';
import { processAlive } from '../sys/process.js';
import { changes, type Change } from './changes.js';
import { isLayerId, StorePaths } from './paths.js';
import { storeErr } from './store-error.js';
import { exportLayer } from './tar-export.js';
import { extractLayer } from './tar-import.js';
import { dirSize } from './dir-size.js';
import { copyLayers, syncTree } from './layer-copy.js';

export interface CommitOptions {
  /** Image name to point at the new layer. */
  name?: string;
  /** One base layer with the container's merged view instead of a layer on its parent. */
  squash?: boolean;
  /** File bytes copied so far. */
  onBytes?: (n: number) => void;
  /** Where the container's rw dir is mounted as a branch, if anywhere (the daemon's mount table). */
  mountedAt?: (rwDir: string) => string | undefined;
}

export interface ImportTarOptions {
  /** Parent layer (id, unique id prefix, or image name). */
  parent?: string;
  /** Image name to point at the new layer. */
  name?: string;
  /** Compressed bytes read so far. */
  onBytes?: (n: number) => void;
  createdBy?: string;
}

export class LayerStore {
  readonly paths: StorePaths;

  private constructor(root: string) {
    this.paths = new StorePaths(root);
  }

  /** Opens (creating if needed) the store at `root`. */
  static open(root: string): LayerStore {
    const s = new LayerStore(root);
    const p = s.paths;
    for (const d of [p.root, p.diffRoot, p.layersRoot, p.mntRoot, p.metaRoot, p.tmpRoot]) {
      fs.mkdirSync(d, { recursive: true, mode: d === p.root ? 0o700 : 0o755 });
    }
    return s;
  }

  get root(): string {
    return this.paths.root;
  }

  // ---- reading ----------------------------------------------------------------------------

  /** Metadata of one layer; ENOENT when it is not in the store. */
  get(id: string): LayerMeta {
    if (!isLayerId(id)) throw storeErr('ENOENT', `no such layer: ${id}`);
    let text: string;
    try {
      text = fs.readFileSync(this.paths.meta(id), 'utf8');
    } catch (e) {
      if (isCode(e, 'ENOENT')) throw storeErr('ENOENT', `no such layer: ${id}`);
      throw e;
    }
    return parseMeta(text, id);
  }

  has(id: string): boolean {
    return isLayerId(id) && fs.existsSync(this.paths.meta(id));
  }

  /** Every layer and container, oldest first. */
  list(): LayerMeta[] {
    const out: LayerMeta[] = [];
    for (const f of fs.readdirSync(this.paths.metaRoot)) {
      const id = f.endsWith('.json') ? f.slice(0, -5) : '';
      if (!isLayerId(id)) continue;
      try {
        out.push(this.get(id));
      } catch (e) {
        if (!isCode(e, 'ENOENT')) throw e;
      }
    }
    return out.sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.id < b.id ? -1 : 1));
  }

  images(): ImageTable {
    try {
      const t = JSON.parse(fs.readFileSync(this.paths.imagesFile, 'utf8')) as unknown;
      return typeof t === 'object' && t !== null ? (t as ImageTable) : {};
    } catch (e) {
      if (isCode(e, 'ENOENT')) return {};
      throw e;
    }
  }

  /** An image name, a full id or a unique id prefix (4+ hex digits) -> layer id. */
  resolve(ref: string): string {
    const img = this.images()[ref] ?? this.images()[`${ref}:latest`];
    if (img) return img.layer;
    if (isLayerId(ref)) {
      this.get(ref);
      return ref;
    }
    if (/^[0-9a-f]{4,63}$/.test(ref)) {
      const hits = this.list().filter((m) => m.id.startsWith(ref));
      if (hits.length === 1) return hits[0]!.id;
      if (hits.length > 1) throw storeErr('EINVAL', `ambiguous id prefix: ${ref}`);
    }
    throw storeErr('ENOENT', `no such layer or image: ${ref}`);
  }

  /** `id` and its ancestors, topmost first (Docker's layers file plus `id`). */
  chain(id: string): string[] {
    const out = [id];
    let m = this.get(id);
    while (m.parent !== null) {
      if (out.includes(m.parent)) throw storeErr('ELOOP', `parent cycle at ${m.parent}`);
      out.push(m.parent);
      m = this.get(m.parent);
    }
    return out;
  }

  children(id: string): LayerMeta[] {
    return this.list().filter((m) => m.parent === id);
  }

  /** Bytes of file content in a layer's diff dir now (containers grow; private state left out). */
  liveSize(id: string): number {
    return dirSize(this.paths.diff(id), true);
  }

  diffDir(id: string): string {
    return this.paths.diff(id);
  }

  isMounted(id: string): boolean {
    return isMountPoint(this.paths.mnt(id));
  }

  /** Docker's aufs branch string for a layer or container: its own diff rw (containers), the rest ro. */
  branchString(id: string): string {
    const meta = this.get(id);
    const chain = this.chain(id);
    return (
      'dirs=' +
      chain.map((l, i) => `${this.paths.diff(l)}=${i === 0 && meta.kind === 'container' ? 'rw' : 'ro'}`).join(':')
    );
  }

  /** What a container (or layer) changed against its ancestors, as `docker diff` lists it. */
  diff(ref: string): Change[] {
    const id = this.resolve(ref);
    const chain = this.chain(id);
    return changes(this.paths.diff(id), chain.slice(1).map((l) => this.paths.diff(l)));
  }

  // ---- staging and commit -------------------------------------------------------------------

  /** A private staging dir under tmp/, removed by `fn`'s end unless it was renamed away. */
  async staged<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = path.join(this.paths.tmpRoot, tmpName());
    fs.mkdirSync(dir, 0o700);
    try {
      return await fn(dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Runs `fn` under the store lock, after cleaning up what crashed commands left behind. */
  async locked<T>(fn: () => T | Promise<T>): Promise<T> {
    return withLock(this.paths.lockFile, async () => {
      this.recover();
      return fn();
    });
  }

  /** Removes staging dirs of dead processes and layer parts without metadata. Call under the lock. */
  private recover(): void {
    for (const n of fs.readdirSync(this.paths.tmpRoot)) {
      const pid = Number(/^(?:rm-)?(\d+)-/.exec(n)?.[1] ?? NaN);
      if (Number.isInteger(pid) && processAlive(pid) && pid !== process.pid) continue;
      if (pid === process.pid) continue;
      fs.rmSync(path.join(this.paths.tmpRoot, n), { recursive: true, force: true });
    }
    for (const id of fs.readdirSync(this.paths.diffRoot)) {
      if (isLayerId(id) && !fs.existsSync(this.paths.meta(id))) removeTreeAtomic(this.paths.diff(id), this.paths.tmpRoot);
    }
    for (const id of fs.readdirSync(this.paths.layersRoot)) {
      if (isLayerId(id) && !fs.existsSync(this.paths.meta(id))) unlinkIfExists(this.paths.layers(id));
    }
  }

  /**
   * Publishes a staged diff dir as a new layer: layers file, diff dir, mnt dir, then the meta file
   * (the commit point). Call under the lock.
   */
  private publish(stagedDiff: string, meta: Omit<LayerMeta, 'id' | 'created'>): LayerMeta {
    if (meta.parent !== null) this.get(meta.parent);
    const id = randomBytes(32).toString('hex');
    const full: LayerMeta = { id, created: new Date().toISOString(), ...meta };
    const ancestors = meta.parent === null ? [] : this.chain(meta.parent);
    writeFileAtomic(this.paths.layers(id), ancestors.map((a) => a + '\n').join(''));
    fs.renameSync(stagedDiff, this.paths.diff(id));
    fs.mkdirSync(this.paths.mnt(id), { recursive: true, mode: 0o755 });
    fsyncDir(this.paths.diffRoot);
    writeFileAtomic(this.paths.meta(id), JSON.stringify(full, null, 2) + '\n');
    fsyncDir(this.paths.metaRoot);
    return full;
  }

  private setImage(name: string, entry: ImageEntry | undefined): void {
    const t = this.images();
    if (entry) t[name] = entry;
    else delete t[name];
    const sorted: ImageTable = {};
    for (const k of Object.keys(t).sort()) sorted[k] = t[k]!;
    writeFileAtomic(this.paths.imagesFile, JSON.stringify(sorted, null, 2) + '\n');
  }

  // ---- changes ---------------------------------------------------------------------------------

  /** Imports a tar layer (plain, gzip or zstd) on top of `parent`. */
  async importTar(input: AsyncIterable<Buffer>, opts: ImportTarOptions = {}): Promise<LayerMeta> {
    const parent = opts.parent === undefined ? null : this.resolve(opts.parent);
    if (parent !== null && this.get(parent).kind !== 'layer') {
      throw storeErr('EINVAL', `parent ${parent.slice(0, 12)} is a container; commit it first`);
    }
    const name = opts.name === undefined ? undefined : checkImageName(opts.name);
    let counted = 0;
    async function* count(): AsyncGenerator<Buffer> {
      for await (const c of input) {
        counted += c.length;
        opts.onBytes?.(counted);
        yield c;
      }
    }
    return this.staged(async (dir) => {
      const diff = path.join(dir, 'diff');
      fs.mkdirSync(diff, 0o755);
      const { stream } = await decompressed(count());
      const r = await extractLayer(stream, diff);
      return this.locked(() => {
        const parentChain = parent === null ? null : this.get(parent).chainId;
        const meta = this.publish(diff, {
          parent,
          kind: 'layer',
          diffId: r.diffId,
          chainId: chainIdOf(parentChain, r.diffId),
          size: r.size,
          createdBy: opts.createdBy ?? 'import',
        });
        if (name !== undefined) this.setImage(name, { layer: meta.id });
        return meta;
      });
    });
  }

  /** The layer as a reproducible OCI tar (uncompressed). */
  exportTar(id: string, onBytes?: (n: number) => void): Readable {
    this.get(id);
    return exportLayer(this.paths.diff(id), onBytes ? { onBytes } : {});
  }

  /** A new container: an empty writable layer over an image's top layer. */
  async createContainer(image: string): Promise<LayerMeta> {
    const parent = this.resolve(image);
    if (this.get(parent).kind !== 'layer') throw storeErr('EINVAL', `${image} is a container, not an image`);
    return this.staged(async (dir) => {
      const diff = path.join(dir, 'diff');
      fs.mkdirSync(diff, 0o755);
      return this.locked(() =>
        this.publish(diff, { parent, kind: 'container', diffId: null, chainId: null, size: 0, createdBy: `create ${image}` }),
      );
    });
  }

  /**
   * Commits a container's changes as a new read-only layer on the container's parent, or with
   * `squash` as one new base layer holding the container's whole merged view. Everything happens
   * under the store lock, so the container cannot be mounted meanwhile: its rw dir is copied
   * (reflink / copy_file_range) into a staging dir, the DiffID is the sha256 of the new layer's OCI
   * export streamed once into the hash, and the staging dir is renamed into place. A container that
   * is mounted is refused (see `refuseMounted`); a failure leaves no layer behind.
   */
  async commit(containerRef: string, opts: CommitOptions = {}): Promise<LayerMeta> {
    const name = opts.name === undefined ? undefined : checkImageName(opts.name);
    return this.locked(async () => {
      const cid = this.resolve(containerRef);
      const c = this.get(cid);
      if (c.kind !== 'container') throw storeErr('EINVAL', `${containerRef} is not a container`);
      this.refuseMounted(cid, opts.mountedAt);
      const squash = opts.squash === true;
      const meta = await this.build(squash ? this.chain(cid) : [cid], !squash, opts.onBytes, (diff, r) =>
        this.publish(diff, {
          parent: squash ? null : c.parent,
          kind: 'layer',
          diffId: r.diffId,
          chainId: chainIdOf(squash || c.parent === null ? null : this.get(c.parent).chainId, r.diffId),
          size: r.size,
          createdBy: `commit${squash ? ' --squash' : ''} ${cid}`,
        }),
      );
      if (name !== undefined) this.setImage(name, { layer: meta.id });
      return meta;
    });
  }

  /**
   * Refuses to commit a container while it is mounted: at its mnt dir, or (`mountedAt`, what the
   * caller knows of live mounts) anywhere else with its rw dir as a branch. A sync of the mount
   * would flush what was written so far but not stop the next write, so the copy could hold a
   * file half old and half new, or a renamed file twice; only an unmounted container is quiet.
   */
  private refuseMounted(cid: string, mountedAt?: (rwDir: string) => string | undefined): void {
    const where = this.isMounted(cid) ? this.paths.mnt(cid) : mountedAt?.(this.paths.diff(cid));
    if (where !== undefined) {
      throw storeErr('EBUSY', `container ${cid.slice(0, 12)} is mounted at ${where}; unmount it before committing`);
    }
  }

  /**
   * Merges the diff dirs of `chain` (topmost first) into a staged diff dir (whiteouts kept or
   * applied) while hashing the new tree's export as it is built (the DiffID), syncs it and hands
   * it to `publish`. Call under the lock.
   */
  private async build(
    chain: readonly string[],
    keepWhiteouts: boolean,
    onBytes: ((n: number) => void) | undefined,
    publish: (diff: string, r: { diffId: string; size: number }) => LayerMeta,
  ): Promise<LayerMeta> {
    return this.staged(async (dir) => {
      const diff = path.join(dir, 'diff');
      fs.mkdirSync(diff, 0o755);
      const hash = createHash('sha256');
      const r = copyLayers(
        chain.map((l) => this.paths.diff(l)),
        diff,
        { keepWhiteouts, tar: (b) => hash.update(b), ...(onBytes ? { onBytes } : {}) },
      );
      syncTree(diff);
      const digest = `sha256:${hash.digest('hex')}`;
      return publish(diff, { diffId: digest, size: r.size });
    });
  }

  /** Flattens a layer and its ancestors into one new base layer (one copy, one DiffID computation). */
  async squash(ref: string, opts: { name?: string } = {}): Promise<LayerMeta> {
    const name = opts.name === undefined ? undefined : checkImageName(opts.name);
    return this.locked(async () => {
      const top = this.resolve(ref);
      if (this.get(top).kind !== 'layer') throw storeErr('EINVAL', `${ref} is a container; commit it first`);
      const meta = await this.build(this.chain(top), false, undefined, (diff, r) =>
        this.publish(diff, { parent: null, kind: 'layer', diffId: r.diffId, chainId: r.diffId, size: r.size, createdBy: `squash ${top}` }),
      );
      if (name !== undefined) this.setImage(name, { layer: meta.id });
      return meta;
    });
  }

  /** Merges `id`'s chain into the empty directory `dest` (the merged tree, no whiteouts). */
  async flattenInto(id: string, dest: string): Promise<void> {
    copyLayers(
      this.chain(id).map((l) => this.paths.diff(l)),
      dest,
      { keepWhiteouts: false },
    );
  }

  /** Removes a layer or container: refused while mounted, with children, or named by an image. */
  async remove(ref: string): Promise<void> {
    const id = this.resolve(ref);
    await this.locked(() => {
      this.get(id);
      if (this.isMounted(id)) throw storeErr('EBUSY', `${id.slice(0, 12)} is mounted; unmount it first`);
      const kids = this.children(id);
      if (kids.length > 0) throw storeErr('EBUSY', `${id.slice(0, 12)} has ${kids.length} child layer(s)`);
      const names = Object.entries(this.images()).filter(([, e]) => e.layer === id).map(([n]) => n);
      if (names.length > 0) throw storeErr('EBUSY', `${id.slice(0, 12)} is image ${names.join(', ')}; remove the image first`);
      this.removeLocked(id);
    });
  }

  /** Deletes a layer's files, metadata first (the commit point). Call under the lock, after the checks. */
  private removeLocked(id: string): void {
    unlinkIfExists(this.paths.meta(id)); // the commit point: from here on the layer is gone
    fsyncDir(this.paths.metaRoot);
    unlinkIfExists(this.paths.layers(id));
    removeTreeAtomic(this.paths.diff(id), this.paths.tmpRoot);
    try {
      fs.rmdirSync(this.paths.mnt(id));
    } catch (e) {
      if (!isCode(e, 'ENOENT')) throw e;
    }
  }

  /**
   * Whether nothing needs layer `id` any more: a read-only layer (not a container) that no image
   * names, with no child layer or container, not mounted. Call under the lock.
   */
  private unreferenced(id: string, images: ImageTable, all: readonly LayerMeta[]): boolean {
    const m = all.find((l) => l.id === id);
    if (!m || m.kind !== 'layer') return false;
    if (Object.values(images).some((e) => e.layer === id)) return false;
    if (all.some((l) => l.parent === id)) return false;
    return !this.isMounted(id);
  }

  /** Points image `name` at layer `ref` (keeps a config it had). */
  async tag(nameIn: string, ref: string, config?: Record<string, unknown>): Promise<void> {
    const name = checkImageName(nameIn);
    const id = this.resolve(ref);
    await this.locked(() => {
      if (this.get(id).kind !== 'layer') throw storeErr('EINVAL', `${ref} is a container; commit it first`);
      this.setImage(name, config ? { layer: id, config } : { layer: id });
    });
  }

  /**
   * Removes image name `name`. With `prune` (as `docker image rm` does by default), then removes the
   * layers only that name kept: its top layer and, going down, each parent that is left unnamed,
   * childless and unmounted; it stops at the first layer another image, layer or container still
   * uses. Returns the removed layer ids, top first (none when the layers stay).
   */
  async untag(nameIn: string, opts: { prune?: boolean } = {}): Promise<string[]> {
    const name = /:[^/]*$/.test(nameIn) ? nameIn : `${nameIn}:latest`;
    return this.locked(() => {
      const entry = this.images()[name];
      if (!entry) throw storeErr('ENOENT', `no such image: ${name}`);
      this.setImage(name, undefined);
      const removed: string[] = [];
      if (!opts.prune) return removed;
      const images = this.images();
      let all = this.list();
      let id: string | null = entry.layer;
      while (id !== null && this.unreferenced(id, images, all)) {
        const parent: string | null = this.get(id).parent;
        this.removeLocked(id);
        removed.push(id);
        all = all.filter((l) => l.id !== id);
        id = parent;
      }
      return removed;
    });
  }

  /**
   * Removes every read-only layer that no image name and no container needs (`docker image prune`):
   * kept are the chains of all named layers, of all containers and of mounted layers. Returns the
   * removed ids, children before their parents.
   */
  async prune(): Promise<string[]> {
    return this.locked(() => {
      const all = this.list();
      const keep = new Set<string>();
      const roots = [
        ...Object.values(this.images()).map((e) => e.layer),
        ...all.filter((m) => m.kind === 'container' || this.isMounted(m.id)).map((m) => m.id),
      ];
      for (const r of roots) {
        if (!this.has(r)) continue; // a name left pointing at a layer that is gone
        for (const l of this.chain(r)) keep.add(l);
      }
      // the unneeded set holds every descendant of its members: remove the deepest first
      const depth = new Map(all.map((m) => [m.id, this.chain(m.id).length]));
      const gone = all.filter((m) => !keep.has(m.id)).sort((a, b) => depth.get(b.id)! - depth.get(a.id)!);
      for (const m of gone) this.removeLocked(m.id);
      return gone.map((m) => m.id);
    });
  }
}

/** Checks an image name and adds `:latest` when it has no tag. */
export function checkImageName(name: string): string {
  // [HOST[:PORT]/]PATH[:TAG][@sha256:HEX], as registries name images
  const re = /^(?:[a-zA-Z0-9.-]+:[0-9]{1,5}\/)?[a-z0-9][a-z0-9._\-/]*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(@sha256:[0-9a-f]{64})?$/;
  if (!re.test(name) || isLayerId(name)) {
    throw storeErr('EINVAL', `invalid image name: ${JSON.stringify(name)}`);
  }
  return /:[^/]*$/.test(name) ? name : `${name}:latest`;
}
