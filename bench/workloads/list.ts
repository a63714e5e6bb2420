/**
 * Workload 2: `ls -lR` and `find -printf '%p %s\n'` over the tree, each on a
 * fresh mount with dropped caches (the cached rows come from the stat workload's
 * warm mount). The output is checked: every target must list the same entries.
 */
import type { Ctx } from '../context.js';
import type { Tree } from '../datasets/tree.js';
import type { MetricDef } from '../results.js';
import { expectCount, lineCount, type Workload } from './workload.js';

export const lsArgs = (root: string): string[] => ['-lR', root];
export const findArgs = (root: string): string[] => [root, '-printf', '%p %s\n'];

/** Declares table 2 and its `ls -lR`/`find` metrics with the suffix `label` (cached / uncached). */
export function listTables(ctx: Ctx, tree: Tree, label: string): { ls: MetricDef; find: MetricDef } {
  const entries = tree.files.length + tree.dirs;
  ctx.results.table({
    id: 'list',
    title: `2. ls -lR and find over the ${tree.files.length}-file tree (5 layers)`,
    ratio: 'throughput',
    notes: [
      `Wall time of \`ls -lR MNT\` and \`find MNT -printf '%p %s\\n'\` (LC_ALL=C, output read through a pipe and its line count checked); ops/s = ${entries} entries per second.`,
      'uncached: fresh mount, sync + drop_caches. cached: on the stat workload\'s mount, after its two stat passes.',
    ],
  });
  return {
    ls: ctx.results.metric({ table: 'list', name: `ls -lR ${label}`, unit: 'ms', ops: entries }),
    find: ctx.results.metric({ table: 'list', name: `find ${label}`, unit: 'ms', ops: entries }),
  };
}

export function listWorkload(): Workload {
  let tree: Tree;
  let m: { ls: MetricDef; find: MetricDef };
  return {
    id: 'list',
    prepare(ctx, data) {
      tree = data.tree();
      m = listTables(ctx, tree, 'uncached');
    },
    async run(ctx, t) {
      await ctx.withMount(t, tree, [m.ls], (o) => {
        ctx.dropCaches();
        ctx.sample(m.ls, t, o, () => ctx.timed('ls', lsArgs(o.root), { out: (s) => expectCount('ls -lR lines', lineCount(s), lsLines(tree)) }));
      });
      await ctx.withMount(t, tree, [m.find], (o) => {
        ctx.dropCaches();
        ctx.sample(m.find, t, o, () => ctx.timed('find', findArgs(o.root), { out: (s) => expectCount('find lines', lineCount(s), findLines(tree)) }));
      });
    },
  };
}

/** `ls -lR` lines: per dir a header, a `total` line and a blank separator, plus one line per entry. */
export function lsLines(tree: Tree): number {
  const dirs = tree.dirs + 1;
  const entries = tree.files.length + tree.dirs;
  return dirs * 3 - 1 + entries;
}

/** `find` lines: the root, every dir and every file. */
export function findLines(tree: Tree): number {
  return 1 + tree.dirs + tree.files.length;
}
