/**
 * Workload 4: open+read+close of every small file (1-8 KiB, from the lower
 * layers) by one node process doing fs.readFileSync per file; fresh mount, host
 * page cache warm (the lower files are read directly just before), so what is
 * measured is the filesystem's cost, not the disk's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SmallFiles } from '../datasets/small-files.js';
import type { MetricDef } from '../results.js';
import { expectCount, type Workload } from './workload.js';

interface ReadOut {
  ms: number;
  n: number;
  bytes: number;
  errors: number;
  firstError: string;
}

export function smallWorkload(): Workload {
  let set: SmallFiles;
  let list = '';
  let hostList = '';
  let nativeList = '';
  let m: MetricDef;
  return {
    id: 'small',
    prepare(ctx, data) {
      set = data.small();
      list = data.file('small-files.txt');
      fs.writeFileSync(list, `${set.files.join('\n')}\n`);
      // The files each overlay target reads: every file lives in layer j % 5 only.
      hostList = data.file('small-host.txt');
      fs.writeFileSync(hostList, `${set.files.map((f, j) => path.join(set.lowers[j % 5]!, f)).join('\n')}\n`);
      nativeList = data.file('small-native.txt');
      fs.writeFileSync(nativeList, `${set.files.map((f) => path.join(set.native, f)).join('\n')}\n`);
      const r = ctx.results;
      r.table({
        id: 'small',
        title: `4. open+read+close of ${set.files.length} small files (1-8 KiB) from lower layers`,
        ratio: 'throughput',
        notes: [
          'One node process reads every file with fs.readFileSync (bytes checked); only its loop is timed; fresh mount,',
          'host page cache warm (the lower files read directly just before); ops/s = files per second.',
        ],
      });
      m = r.metric({ table: 'small', name: 'read small files', unit: 'ms', ops: set.files.length });
    },
    async run(ctx, t) {
      await ctx.withMount(t, set, [m], (o) => {
        ctx.child<ReadOut>('read-child.js', [t.kind === 'native' ? nativeList : hostList, '/']);
        ctx.sample(m, t, o, () => {
          const out = ctx.child<ReadOut>('read-child.js', [list, o.root]);
          if (out.errors) throw new Error(`${out.errors}/${out.n} reads failed, e.g. ${out.firstError}`);
          expectCount('bytes read', out.bytes, set.bytes);
          return out.ms;
        });
      });
    },
  };
}
