/**
 * Workload 5: sequential read of the big lower file with `dd bs=1M`: cold (fresh
 * mount, dropped caches) then warm (a second read on the same mount), MB/s.
 */
import type { BigFile } from '../datasets/big-file.js';
import type { MetricDef } from '../results.js';
import { expectCount, type Workload } from './workload.js';

export function seqreadWorkload(): Workload {
  let set: BigFile;
  let m: { cold: MetricDef; warm: MetricDef };
  return {
    id: 'seqread',
    prepare(ctx, data) {
      set = data.big();
      const r = ctx.results;
      r.table({
        id: 'seqread',
        title: `5. Sequential read of a ${set.bytes >> 20} MiB file in a lower layer`,
        ratio: 'throughput',
        notes: [
          '`dd if=FILE of=/dev/null bs=1M`, wall time of the whole command; MB/s = 10^6 bytes per second.',
          'cold: fresh mount, sync + drop_caches; warm: a second dd on the same mount.',
        ],
      });
      m = {
        cold: r.metric({ table: 'seqread', name: 'read cold', unit: 'MB/s' }),
        warm: r.metric({ table: 'seqread', name: 'read warm', unit: 'MB/s' }),
      };
    },
    async run(ctx, t) {
      await ctx.withMount(t, set, [m.cold, m.warm], (o) => {
        ctx.dropCaches();
        const dd = (): number => {
          const ms = ctx.timed('dd', [`if=${o.root}/${set.rel}`, 'of=/dev/null', 'bs=1M'], {
            err: (s) => expectCount('bytes copied', Number(/^(\d+) bytes/m.exec(s)?.[1] ?? -1), set.bytes),
          });
          return set.bytes / 1e6 / (ms / 1000);
        };
        ctx.sample(m.cold, t, o, dd);
        ctx.sample(m.warm, t, o, dd);
      });
    },
  };
}
