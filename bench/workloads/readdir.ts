/**
 * Workload 3: readdir of one directory whose names are merged from 10 layers
 * with whiteouts and an opaque layer: `ls -f` (names only, no stat) and `ls -l`
 * (a stat per name), each on a fresh mount with dropped caches.
 */
import type { WideDir } from '../datasets/wide-dir.js';
import type { MetricDef } from '../results.js';
import { expectCount, lineCount, type Workload } from './workload.js';

export function readdirWorkload(): Workload {
  let wide: WideDir;
  let m: { names: MetricDef; long: MetricDef };
  return {
    id: 'readdir',
    prepare(ctx, data) {
      wide = data.wide();
      const r = ctx.results;
      r.table({
        id: 'readdir',
        title: `3. readdir of one dir of ${wide.names} names merged from 10 layers (whiteouts, an opaque layer)`,
        ratio: 'throughput',
        notes: [
          `Wall time of \`ls -f DIR\` (no stat) and \`ls -l DIR\`, fresh mount + drop_caches each, line count checked; ops/s = names per second.`,
        ],
      });
      m = {
        names: r.metric({ table: 'readdir', name: 'ls -f', unit: 'ms', ops: wide.names }),
        long: r.metric({ table: 'readdir', name: 'ls -l', unit: 'ms', ops: wide.names }),
      };
    },
    async run(ctx, t) {
      for (const [metric, args, lines] of [
        [m.names, ['-f'], wide.names + 2],
        [m.long, ['-l'], wide.names + 1],
      ] as const) {
        await ctx.withMount(t, wide, [metric], (o) => {
          ctx.dropCaches();
          const dir = `${o.root}/${wide.dir}`;
          ctx.sample(metric, t, o, () => ctx.timed('ls', [...args, dir], { out: (s) => expectCount('lines', lineCount(s), lines) }));
        });
      }
    },
  };
}
