/**
 * Id-addressed layers in the store's aufs layout, as a container engine's storage driver sees
 * them (Docker's graphdriver, containerd's snapshotter): the engine names each layer and its
 * parent, and asks for a layer's union mounted, its diff as a tar, its changes and sizes.
 *
 *   ROOT/diff/<id>/    the layer's own files (AUFS whiteouts)
 *   ROOT/layers/<id>   direct parent first, then its ancestors, one id per line
 *   ROOT/mnt/<id>/     where `get` mounts the union (the layer rw on top of its chain, ro);
 *                      only read-write layers (containers, init layers) have one
 *
 * A layer exists exactly when its diff dir does: the layers file is written first and the diff
 * dir renamed in from tmp/ last; removal renames the diff dir away first. Mounts go through an
 * injected Mounter (FUSE lives outside the store), refcounted per id: the first `get` mounts, the
 * last `put` unmounts. `get` of a read-only layer (made by `create`) or of a layer without
 * parents mounts nothing and returns its diff dir: an engine reads a read-only layer only to
 * rebuild its tar from the files by name, whiteouts included (Docker's naive diff getter), which
 * the union would hide.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { isCode } from '../errors/index.js';
import { fsyncDir, removeTreeAtomic, tmpName, unlinkIfExists, writeFileAtomic } from './atomic.js';
import { changes, type Change } from './changes.js';
import { decompressed } from './compression.js';
import { isMountPoint } from '../sys/mountinfo.js';
import { storeErr } from './store-error.js';
import { exportLayer } from './tar-export.js';
import { extractLayer } from './tar-import.js';
import { dirSize } from './dir-size.js';

/** Mounts a union (AUFS branch string `dirs=A=rw:B=ro:...`) at a directory, and unmounts it. */
export interface Mounter {
  mount(options: string, mountpoint: string): Promise<void>;
  unmount(mountpoint: string): Promise<void>;
}

/** Engine-chosen ids: Docker's 64 hex digits (`-init` for init layers), containerd's keys mapped to such. */
const DRIVER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function checkDriverId(id: unknown, what = 'layer id'): string {
  if (typeof id !== 'string' || !DRIVER_ID.test(id) || id.includes('..')) {
    throw storeErr('EINVAL', `invalid ${what}: ${JSON.stringify(id)}`);
  }
  return id;
}

export class LayerDriver {
  readonly root: string;
  private readonly refs = new Map<string, number>();
  /** Serialises get/put/remove per id (mounting takes a while). */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(root: string, private readonly mounter: Mounter) {
    this.root = path.resolve(root);
    for (const d of ['', 'diff', 'layers', 'mnt', 'tmp']) fs.mkdirSync(path.join(this.root, d), { recursive: true, mode: d === '' ? 0o711 : 0o755 });
  }

  diffDir(id: string): string {
    return path.join(this.root, 'diff', checkDriverId(id));
  }
  mntDir(id: string): string {
    return path.join(this.root, 'mnt', checkDriverId(id));
  }
  private layersFile(id: string): string {
    return path.join(this.root, 'layers', checkDriverId(id));
  }
  private get tmpRoot(): string {
    return path.join(this.root, 'tmp');
  }

  exists(id: string): boolean {
    return fs.existsSync(this.diffDir(id));
  }

  private need(id: string): void {
    if (!this.exists(id)) throw storeErr('ENOENT', `no such layer: ${id}`);
  }

  /** Parent first, then its ancestors (the layers file). */
  parents(id: string): string[] {
    this.need(id);
    let text = '';
    try {
      text = fs.readFileSync(this.layersFile(id), 'utf8');
    } catch (e) {
      if (!isCode(e, 'ENOENT')) throw e;
    }
    return text.split('\n').filter((l) => l !== '');
  }

  /** Creates an empty read-only layer over `parent` (empty: none). */
  create(id: string, parent = ''): void {
    this.make(id, parent, false);
  }

  /** Creates an empty layer to be mounted read-write (a container's) over `parent`. */
  createReadWrite(id: string, parent = ''): void {
    this.make(id, parent, true);
  }

  /** Whether `get` mounts a union (read-write layers) or hands out the diff dir. */
  isReadWrite(id: string): boolean {
    return fs.existsSync(this.mntDir(id));
  }

  private make(id: string, parent: string, rw: boolean): void {
    checkDriverId(id);
    if (this.exists(id)) throw storeErr('EEXIST', `layer ${id} already exists`);
    const ancestors = parent === '' ? [] : [checkDriverId(parent, 'parent id'), ...this.parents(parent)];
    const staged = path.join(this.tmpRoot, tmpName());
    fs.mkdirSync(staged, 0o755);
    writeFileAtomic(this.layersFile(id), ancestors.map((a) => a + '\n').join(''));
    if (rw) fs.mkdirSync(this.mntDir(id), { recursive: true, mode: 0o755 });
    else fs.rmSync(this.mntDir(id), { recursive: true, force: true }); // debris of an earlier one
    fs.renameSync(staged, this.diffDir(id)); // the commit point
    fsyncDir(path.join(this.root, 'diff'));
  }

  /** Removes a layer (refused while mounted or while another layer names it as parent). */
  async remove(id: string): Promise<void> {
    await this.serial(id, async () => {
      this.need(id);
      if ((this.refs.get(id) ?? 0) > 0 || isMountPoint(this.mntDir(id))) throw storeErr('EBUSY', `layer ${id} is mounted`);
      const child = this.childOf(id);
      if (child !== undefined) throw storeErr('EBUSY', `layer ${id} is the parent of ${child}`);
      removeTreeAtomic(this.diffDir(id), this.tmpRoot); // the commit point
      unlinkIfExists(this.layersFile(id));
      try {
        fs.rmdirSync(this.mntDir(id));
      } catch (e) {
        if (!isCode(e, 'ENOENT')) throw e;
      }
    });
  }

  private childOf(id: string): string | undefined {
    for (const n of fs.readdirSync(path.join(this.root, 'layers'))) {
      if (n === id || !DRIVER_ID.test(n)) continue;
      const first = fs.readFileSync(path.join(this.root, 'layers', n), 'utf8').split('\n')[0];
      if (first === id && this.exists(n)) return n;
    }
    return undefined;
  }

  /** The AUFS branch string of a layer's union: its diff dir rw, its ancestors ro. */
  branchString(id: string): string {
    const chain = [id, ...this.parents(id)];
    for (const l of chain) if (!this.exists(l)) throw storeErr('ENOENT', `layer ${id}: ancestor ${l} is missing`);
    return 'dirs=' + chain.map((l, i) => `${this.diffDir(l)}=${i === 0 ? 'rw' : 'ro'}`).join(':');
  }

  /** Mounts the layer's union (once; counted) and returns where it is. */
  async get(id: string): Promise<string> {
    return this.serial(id, async () => {
      this.need(id);
      const n = this.refs.get(id) ?? 0;
      if (!this.isReadWrite(id) || this.parents(id).length === 0) {
        this.refs.set(id, n + 1);
        return this.diffDir(id);
      }
      const mnt = this.mntDir(id);
      if (n === 0 && !isMountPoint(mnt)) {
        await this.mounter.mount(this.branchString(id), mnt);
      }
      this.refs.set(id, n + 1);
      return mnt;
    });
  }

  /** Drops one reference; the last one unmounts. */
  async put(id: string): Promise<void> {
    await this.serial(id, async () => {
      checkDriverId(id);
      const n = this.refs.get(id) ?? 0;
      if (n > 1) {
        this.refs.set(id, n - 1);
        return;
      }
      this.refs.delete(id);
      const mnt = this.mntDir(id);
      if (isMountPoint(mnt)) await this.mounter.unmount(mnt);
    });
  }

  /** Mount references held now, by id. */
  mounted(): Map<string, number> {
    return new Map(this.refs);
  }

  /** Unmounts everything this driver mounted (shutdown). */
  async cleanup(): Promise<void> {
    for (const id of [...this.refs.keys()]) {
      this.refs.set(id, 1);
      await this.put(id);
    }
  }

  /**
   * Replaces the (empty or not) contents of layer `id` with the tar `input` (plain, gzip or zstd):
   * extracted in tmp/, swapped in. Returns the bytes of file content.
   */
  async applyDiff(id: string, input: AsyncIterable<Buffer>): Promise<number> {
    this.need(id);
    const staged = path.join(this.tmpRoot, tmpName());
    fs.mkdirSync(staged, 0o755);
    try {
      const { stream } = await decompressed(input);
      const r = await extractLayer(stream, staged);
      await this.serial(id, async () => {
        this.need(id);
        if ((this.refs.get(id) ?? 0) > 0) throw storeErr('EBUSY', `layer ${id} is mounted`);
        removeTreeAtomic(this.diffDir(id), this.tmpRoot);
        fs.renameSync(staged, this.diffDir(id));
      });
      return r.size;
    } finally {
      fs.rmSync(staged, { recursive: true, force: true });
    }
  }

  /** Layer `id`'s own changes as an OCI tar (whiteouts as `.wh.` entries). */
  diff(id: string): Readable {
    this.need(id);
    return exportLayer(this.diffDir(id));
  }

  /** What layer `id` changed against its ancestors, as `docker diff` lists it. */
  changes(id: string): Change[] {
    const lowers = this.parents(id).map((p) => this.diffDir(p));
    return changes(this.diffDir(id), lowers);
  }

  /** Bytes of file content in the layer's own diff dir (hard links once). */
  diffSize(id: string): number {
    this.need(id);
    return dirSize(this.diffDir(id), true);
  }

  private async serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.busy.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.busy.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.busy.get(id) === tail) this.busy.delete(id);
    }
  }
}
