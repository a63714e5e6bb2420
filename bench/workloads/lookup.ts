/**
 * Workload 8: lookup cost against the layer count: lstat of names that live in
 * the BOTTOM layer (3/4) and names that exist nowhere (1/4) through stacks of
 * 1..100 layers, fresh mount + dropped caches each; the ratio of the deepest
 * stack's time to the 1-layer time tells whether lookups walk every layer.
 */
import * as fs from 'node:fs';
import type { LookupStacks } from '../datasets/lookup-layers.js';
import type { MetricDef } from '../results.js';
import { statPass } from './stat.js';
import type { Workload } from './workload.js';

export const layersLabel = (n: number): string => `${n} layer${n === 1 ? '' : 's'}`;

export function lookupWorkload(): Workload {
  let stacks: LookupStacks;
  let list = '';
  const m = new Map<number, MetricDef>();
  return {
    id: 'lookup',
    prepare(ctx, data) {
      stacks = data.lookup();
      list = data.file('lookup-names.txt');
      // Interleaved: present, present, present, missing, ...
      const names: string[] = [];
      for (let i = 0, j = 0; i < stacks.present.length || j < stacks.missing.length; ) {
        for (let k = 0; k < 3 && i < stacks.present.length; k++) names.push(stacks.present[i++]!);
        if (j < stacks.missing.length) names.push(stacks.missing[j++]!);
      }
      fs.writeFileSync(list, `${names.join('\n')}\n`);
      const r = ctx.results;
      const n = names.length;
      r.table({
        id: 'lookup',
        title: `8. Lookup cost against the number of layers (${n} lstat: ${stacks.present.length} in the bottom layer, ${stacks.missing.length} nowhere)`,
        ratio: 'time',
        notes: [
          'Each layer above the bottom one has the same 10 dirs with 3 files of its own. Fresh mount + drop_caches per',
          'measurement; a node process lstat\'s every name (found/ENOENT counts checked); only its loop is timed.',
          'The last row is each target\'s own deepest-stack time over its 1-layer time (issue target: <= 1.2 for layerfs).',
        ],
      });
      for (const count of stacks.stacks.keys()) m.set(count, r.metric({ table: 'lookup', name: layersLabel(count), unit: 'ms', ops: n }));
    },
    async run(ctx, t) {
      for (const [count, set] of stacks.stacks) {
        const metric = m.get(count)!;
        await ctx.withMount(t, set, [metric], (o) => {
          ctx.dropCaches();
          const total = stacks.present.length + stacks.missing.length;
          ctx.sample(metric, t, o, () => statPass(ctx, list, o.root, stacks.present.length, total));
        });
      }
    },
  };
}
