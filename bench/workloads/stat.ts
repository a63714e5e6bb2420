/**
 * Workloads 1 and 9: lstat of every file of the tree, uncached (fresh mount,
 * dropped caches) then cached (a second pass on the same mount), then `ls -lR`
 * and `find` on that warm mount (table 2's cached rows); after these, the
 * FUSE daemon's peak resident memory (VmHWM).
 */
import * as fs from 'node:fs';
import type { Ctx } from '../context.js';
import type { Tree } from '../datasets/tree.js';
import { peakRssMiB } from '../mount.js';
import type { MetricDef } from '../results.js';
import { expectCount, lineCount, type Workload } from './workload.js';
import { findArgs, findLines, listTables, lsArgs, lsLines } from './list.js';

interface StatOut {
  ms: number;
  n: number;
  ok: number;
  enoent: number;
  errors: number;
  firstError: string;
}

/** Runs the stat child over `list` under `root`; throws unless exactly `present` exist and the rest are ENOENT. */
export function statPass(ctx: Ctx, list: string, root: string, present: number, total: number): number {
  const out = ctx.child<StatOut>('stat-child.js', [list, root]);
  if (out.errors > 0) throw new Error(`${out.errors}/${out.n} lstat failed, e.g. ${out.firstError}`);
  expectCount('names found', out.ok, present);
  expectCount('names absent', out.enoent, total - present);
  return out.ms;
}

export function statWorkload(): Workload {
  let tree: Tree;
  let list = '';
  let m: Record<'uncached' | 'cached' | 'ls' | 'find' | 'rss', MetricDef>;
  return {
    id: 'stat',
    prepare(ctx, data) {
      tree = data.tree();
      list = data.file('tree-files.txt');
      fs.writeFileSync(list, `${tree.files.join('\n')}\n`);
      const r = ctx.results;
      const n = tree.files.length;
      r.table({
        id: 'stat',
        title: `1. lstat of ${n} files (5 layers)`,
        ratio: 'throughput',
        notes: [
          'A separate node process runs fs.lstatSync on every path; only its loop is timed; ops/s = files per second.',
          'uncached: fresh mount, then sync + drop_caches. cached: a second pass on the same mount right after the first',
          '(so entry/attr timeouts of the FUSE targets decide how much the kernel answers alone; fuse-overlayfs keeps them',
          'long: a chmod of a lower file behind its back still did not show after 2.5 s).',
        ],
      });
      m = {
        uncached: r.metric({ table: 'stat', name: 'stat uncached', unit: 'ms', ops: n }),
        cached: r.metric({ table: 'stat', name: 'stat cached', unit: 'ms', ops: n }),
        ...listTables(ctx, tree, 'cached'),
        rss: r.metric({ table: 'memory', name: 'daemon VmHWM after stat, ls -lR, find', unit: 'MB', noCpu: true }),
      };
      r.table({
        id: 'memory',
        title: `9. Peak memory of the FUSE daemon on the ${n}-file tree`,
        ratio: 'size',
        notes: ['VmHWM (/proc/PID/status) of the daemon after two stat passes, ls -lR and find on one mount; MB = 10^6 bytes.'],
      });
    },
    async run(ctx, t) {
      const all = Object.values(m);
      await ctx.withMount(t, tree, all, (o) => {
        ctx.dropCaches();
        const total = tree.files.length;
        ctx.sample(m.uncached, t, o, () => statPass(ctx, list, o.root, total, total));
        ctx.sample(m.cached, t, o, () => statPass(ctx, list, o.root, total, total));
        ctx.sample(m.ls, t, o, () => ctx.timed('ls', lsArgs(o.root), { out: (s) => expectCount('ls -lR lines', lineCount(s), lsLines(tree)) }));
        ctx.sample(m.find, t, o, () => ctx.timed('find', findArgs(o.root), { out: (s) => expectCount('find lines', lineCount(s), findLines(tree)) }));
        if (o.pids.length === 0) ctx.results.cell(m.rss, t.name).failures.push(t.kind === 'native' ? 'no daemon' : 'in the kernel');
        else ctx.sample(m.rss, t, o, () => ((peakRssMiB(o.pids) ?? Number.NaN) * 1024 * 1024) / 1e6);
      });
    },
  };
}
