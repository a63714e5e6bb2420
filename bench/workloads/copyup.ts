/**
 * Workload 6: the first write to the big lower file, which copies it up:
 * `dd of=FILE bs=1 count=1 conv=notrunc oflag=append` on a fresh mount with the
 * lower file warm in the page cache; then `sync` timed apart. The upper dir must
 * then hold the whole file plus the byte.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BigFile } from '../datasets/big-file.js';
import type { MetricDef } from '../results.js';
import { expectCount, type Workload } from './workload.js';

export function copyupWorkload(): Workload {
  let set: BigFile;
  let m: { write: MetricDef; sync: MetricDef };
  return {
    id: 'copyup',
    prepare(ctx, data) {
      set = data.big();
      const r = ctx.results;
      r.table({
        id: 'copyup',
        title: `6. First write to a ${set.bytes >> 20} MiB lower file (copy-up)`,
        ratio: 'time',
        notes: [
          '`dd if=/dev/zero of=FILE bs=1 count=1 conv=notrunc oflag=append` on a fresh mount, the lower file warm in the page',
          'cache, nothing dirty; then `sync` timed apart (+ sync = both). The upper file is checked to be the size + 1 byte.',
          'native: the same append to a plain file (no copy), truncated back afterwards.',
        ],
      });
      m = {
        write: r.metric({ table: 'copyup', name: 'first write', unit: 'ms' }),
        sync: r.metric({ table: 'copyup', name: 'first write + sync', unit: 'ms', noCpu: true }),
      };
    },
    async run(ctx, t) {
      await ctx.withMount(t, set, [m.write, m.sync], (o) => {
        const hostFile = t.kind === 'native' ? path.join(set.native, set.rel) : path.join(set.lowers[1]!, set.rel);
        ctx.timed('dd', [`if=${hostFile}`, 'of=/dev/null', 'bs=1M']); // warm the lower file
        ctx.timed('sync', []);
        const file = path.join(o.root, set.rel);
        let write: number | undefined;
        try {
          write = ctx.sample(m.write, t, o, () => {
            const ms = ctx.timed('dd', ['if=/dev/zero', `of=${file}`, 'bs=1', 'count=1', 'conv=notrunc', 'oflag=append']);
            expectCount('upper file size', fs.statSync(path.join(o.upper, set.rel)).size, set.bytes + 1);
            return ms;
          });
          if (write !== undefined) ctx.sample(m.sync, t, o, () => write! + ctx.timed('sync', []));
        } finally {
          // One big file: removed at once (the trash is for trees of many files), so
          // every copy-up writes to blocks freed the same way.
          if (t.kind === 'native') fs.truncateSync(hostFile, set.bytes);
          else fs.rmSync(path.join(o.upper, set.rel), { force: true });
        }
      });
      ctx.timed('sync', []); // the removed upper's blocks, before the next measurement
    },
  };
}
