/** Issue 6 item 3: each performance target, the ratio measured for each layerfs build, met or missed. */
import { layersLabel } from './workloads/lookup.js';
import type { TextTable } from './report.js';
import { ratio, type Results } from './results.js';
import type { Sizes } from './options.js';
import type { Target } from './targets.js';

interface Goal {
  what: string;
  /** 'ge': the ratio must be >= limit; 'le': <= limit. */
  op: 'ge' | 'le';
  limit: number;
  measure(r: Results, build: string): number | undefined;
}

function vsPeer(table: string, metric: string, peer: string): (r: Results, build: string) => number | undefined {
  return (r, build) => {
    const def = r.tables.find((t) => t.id === table);
    const m = r.metrics.find((x) => x.table === table && x.name === metric);
    const mine = r.medianOf(table, metric, build);
    const theirs = r.medianOf(table, metric, peer);
    if (!def || !m || mine === undefined || theirs === undefined) return undefined;
    return ratio(def.ratio, m, mine, theirs);
  };
}

function goals(sizes: Sizes): Goal[] {
  const deepest = Math.max(...sizes.lookupLayers);
  return [
    { what: 'uncached stat throughput vs fuse-overlayfs', op: 'ge', limit: 1.5, measure: vsPeer('stat', 'stat uncached', 'fuse-overlayfs') },
    { what: 'cached stat throughput vs fuse-overlayfs', op: 'ge', limit: 1.0, measure: vsPeer('stat', 'stat cached', 'fuse-overlayfs') },
    { what: '`ls -lR` (uncached) throughput vs fuse-overlayfs', op: 'ge', limit: 1.0, measure: vsPeer('list', 'ls -lR uncached', 'fuse-overlayfs') },
    { what: '`ls -lR` (cached) throughput vs fuse-overlayfs', op: 'ge', limit: 1.0, measure: vsPeer('list', 'ls -lR cached', 'fuse-overlayfs') },
    { what: 'sequential read (cold) MB/s vs kernel overlayfs', op: 'ge', limit: 0.9, measure: vsPeer('seqread', 'read cold', 'kernel overlayfs') },
    { what: 'sequential read (warm) MB/s vs kernel overlayfs', op: 'ge', limit: 0.9, measure: vsPeer('seqread', 'read warm', 'kernel overlayfs') },
    { what: 'copy-up (first write) time vs kernel overlayfs', op: 'le', limit: 1.1, measure: vsPeer('copyup', 'first write', 'kernel overlayfs') },
    { what: 'small-file copy-up (1,000 x 4 KiB, chmod) time vs kernel overlayfs', op: 'le', limit: 1.2, measure: vsPeer('smallcpup', 'chmod', 'kernel overlayfs') },
    {
      what: `lookup time, ${deepest} layers vs 1 layer (own)`,
      op: 'le',
      limit: 1.2,
      measure: (r, build) => {
        const a = r.medianOf('lookup', layersLabel(deepest), build);
        const b = r.medianOf('lookup', layersLabel(1), build);
        return a !== undefined && b !== undefined ? a / b : undefined;
      },
    },
    { what: 'untar time vs fuse-overlayfs (until tar exits)', op: 'le', limit: 1.0, measure: vsPeer('untar', 'tar -xf', 'fuse-overlayfs') },
    {
      what: 'daemon peak memory on the tree, MB',
      op: 'le',
      limit: 150,
      measure: (r, build) => r.medianOf('memory', 'daemon VmHWM after stat, ls -lR, find', build),
    },
    {
      what: 'mount latency p50, s (issue 10)',
      op: 'le',
      limit: 0.1,
      measure: (r, build) => {
        const v = r.medianOf('mounts', 'mount p50', build);
        return v === undefined ? undefined : v / 1000;
      },
    },
    (() => {
      const n = Math.max(...sizes.scaleMounts);
      return { what: `memory (PSS) of ${n} live mounts vs fuse-overlayfs's ${n} processes (issue 10)`, op: 'le' as const, limit: 1.0, measure: vsPeer('scale', `PSS with ${n} mounts`, 'fuse-overlayfs') };
    })(),
  ];
}

export function goalsTable(results: Results, targets: Target[], sizes: Sizes): TextTable {
  const builds = targets.filter((t) => t.kind === 'layerfs');
  const rows = goals(sizes).map((g) => [
    g.what,
    `${g.op === 'ge' ? '>=' : '<='} ${g.limit}`,
    ...builds.map((b) => {
      const v = g.measure(results, b.name);
      if (v === undefined) return 'n/a';
      const met = g.op === 'ge' ? v >= g.limit : v <= g.limit;
      return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${met ? 'met' : 'MISSED'}`;
    }),
  ]);
  return {
    title: 'Issue 6 targets (ratios from this run)',
    header: ['target', 'wanted', ...builds.map((b) => b.name)],
    rows,
    notes: ['n/a: a workload not run (see --workloads) or a target that failed it (see its table).'],
  };
}
