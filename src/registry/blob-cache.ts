/**
 * Verified blobs under the store root, `ROOT/blobs/sha256/<hex>`. A download streams into a temp file
 * under `ROOT/tmp/` while it is hashed and counted; only when the bytes match the descriptor's
 * digest and size is the file renamed into the cache. So the cache holds nothing unverified, and a
 * pull that was interrupted and is run again starts from what it already has.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpName } from '../store/atomic.js';
import type { LayerStore } from '../store/store.js';
import { FsError } from '../errors/index.js';
import { errorText, type RegistryClient } from './client.js';
import { regErr } from './errors.js';
import type { Descriptor } from './manifest.js';

export class BlobCache {
  readonly dir: string;
  private readonly tmp: string;

  constructor(store: LayerStore) {
    this.dir = path.join(store.root, 'blobs', 'sha256');
    this.tmp = store.paths.tmpRoot;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
  }

  path(digest: string): string {
    const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
    if (!m) throw regErr('EINVAL', `unsupported digest ${JSON.stringify(digest)}`);
    return path.join(this.dir, m[1]!);
  }

  /** Whether a verified copy of `d` is here. */
  has(d: Descriptor): boolean {
    const st = fs.statSync(this.path(d.digest), { throwIfNoEntry: false });
    return st !== undefined && st.isFile() && st.size === d.size;
  }

  remove(digest: string): void {
    fs.rmSync(this.path(digest), { force: true });
  }

  /**
   * Downloads blob `d` of `repo` into the cache (unless it is there) and returns its file. Errors
   * (missing, cut off, wrong bytes, too many) leave nothing behind.
   */
  async fetch(client: RegistryClient, repo: string, d: Descriptor, onBytes?: (done: number) => void): Promise<string> {
    const file = this.path(d.digest);
    if (this.has(d)) {
      onBytes?.(d.size);
      return file;
    }
    const r = await client.request('GET', `/v2/${repo}/blobs/${d.digest}`, { scopes: [`repository:${repo}:pull`] });
    if (r.status === 404) {
      r.body.resume();
      throw regErr('ENOENT', `registry ${client.registry} has no blob ${d.digest} in ${repo}`);
    }
    if (r.status !== 200) throw regErr('EIO', `fetching blob ${d.digest} from ${client.registry}: ${await errorText(r)}`);
    const tmp = path.join(this.tmp, `${tmpName()}.blob`);
    const h = createHash('sha256');
    let n = 0;
    const fh = await fs.promises.open(tmp, 'wx', 0o644);
    try {
      try {
        for await (const c of r.body) {
          const b = c as Buffer;
          n += b.length;
          if (n > d.size) {
            r.body.destroy();
            throw regErr('EFBIG', `blob ${d.digest} from ${client.registry} is longer than its ${d.size} bytes`);
          }
          h.update(b);
          await fh.write(b);
          onBytes?.(n);
        }
      } catch (e) {
        if (e instanceof FsError) throw e;
        throw regErr('EIO', `download of blob ${d.digest} was cut off after ${n} of ${d.size} bytes`);
      }
      if (n < d.size) throw regErr('EIO', `download of blob ${d.digest} was cut off after ${n} of ${d.size} bytes`);
      const got = `sha256:${h.digest('hex')}`;
      if (got !== d.digest) throw regErr('EINVAL', `blob from ${client.registry} does not match its digest ${d.digest} (got ${got})`);
      await fh.sync();
      await fh.close();
      fs.renameSync(tmp, file);
      return file;
    } catch (e) {
      await fh.close().catch(() => undefined);
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }
}
