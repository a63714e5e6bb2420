/** Issue 6 item 3: each performance target, the ratio measured for each layerfs build, met or missed. */
import { layersLabel } from './workloads/lookup.js';
import type { TextTable } from './report.js';
import { ratio, type Results } from './results.js';
import type { Sizes } from './options.js';
import { FLOOR_KINDS, type Kind, type Target } from './targets.js';

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

const fmtGoal = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const meets = (g: Goal, v: number): boolean => (g.op === 'ge' ? v >= g.limit : v <= g.limit);
const wanted = (g: Goal): string => `${g.op === 'ge' ? '>=' : '<='} ${g.limit}`;

/** A layerfs build's cell of goal `g`: its figure, met or MISSED. */
function buildCell(g: Goal, results: Results, build: string): string {
  const v = g.measure(results, build);
  return v === undefined ? 'n/a' : `${fmtGoal(v)} ${meets(g, v) ? 'met' : 'MISSED'}`;
}

export function goalsTable(results: Results, targets: Target[], sizes: Sizes): TextTable {
  const builds = targets.filter((t) => t.kind === 'layerfs');
  const rows = goals(sizes).map((g) => [g.what, wanted(g), ...builds.map((b) => buildCell(g, results, b.name))]);
  return {
    title: 'Issue 6 targets (ratios from this run)',
    header: ['target', 'wanted', ...builds.map((b) => b.name)],
    rows,
    notes: ['n/a: a workload not run (see --workloads) or a target that failed it (see its table).'],
  };
}

/** Issue 14's targets: each against kernel overlayfs, and the floors that must do the same work. */
interface FloorGoal extends Goal {
  /** The floors whose figure bounds this row: those doing the work a union must do for it. */
  floors: readonly Kind[];
}

function floorGoals(): FloorGoal[] {
  const kernel = 'kernel overlayfs';
  return [
    { what: '`ls -lR` (cached) throughput vs kernel overlayfs', op: 'ge', limit: 0.8, floors: FLOOR_KINDS, measure: vsPeer('list', 'ls -lR cached', kernel) },
    { what: '`ls -lR` (uncached) throughput vs kernel overlayfs', op: 'ge', limit: 0.6, floors: FLOOR_KINDS, measure: vsPeer('list', 'ls -lR uncached', kernel) },
    // a union reads the backing inode on an uncached lookup: the floors that do
    { what: 'uncached stat throughput vs kernel overlayfs', op: 'ge', limit: 0.6, floors: ['floor-c-io', 'floor-io'], measure: vsPeer('stat', 'stat uncached', kernel) },
    { what: '`ls -l` of one dir merged from 10 layers, throughput vs kernel overlayfs', op: 'ge', limit: 0.8, floors: FLOOR_KINDS, measure: vsPeer('readdir', 'ls -l', kernel) },
    // only these copy up (durably) on a chmod
    { what: 'small-file copy-up (chmod) time vs kernel overlayfs', op: 'le', limit: 1.2, floors: ['floor-c-io', 'floor-io'], measure: vsPeer('smallcpup', 'chmod', kernel) },
    {
      what: 'daemon peak memory on the tree, MB',
      op: 'le',
      limit: 50,
      floors: FLOOR_KINDS,
      measure: (r, build) => r.medianOf('memory', 'daemon VmHWM after stat, ls -lR, find', build),
    },
  ];
}

/** The floors written in C (the kernel's cost plus the least a server adds); the others are Node's. */
const C_FLOORS: readonly Kind[] = ['floor-c', 'floor-c-io'];

/**
 * Issue 14's rows (only when a floor is in the run): each layerfs build and each floor against
 * the same target, and what bounds the row, from the floors doing the row's work: FUSE when the
 * best C floor misses it too; Node when a C floor meets it and the best Node floor does not (layerfs
 * is a Node server); not bound when a Node floor meets it.
 */
export function floorsTable(results: Results, targets: Target[]): TextTable | null {
  const floors = targets.filter((t) => FLOOR_KINDS.includes(t.kind));
  if (floors.length === 0) return null;
  const builds = targets.filter((t) => t.kind === 'layerfs');
  const rows = floorGoals().map((g) => {
    const figures = floors.map((f) => ({ f, v: g.measure(results, f.name) }));
    const floorCells = figures.map(({ f, v }) => {
      if (v === undefined) return 'n/a';
      if (!g.floors.includes(f.kind)) return `(${fmtGoal(v)})`;
      return `${fmtGoal(v)}${meets(g, v) ? '' : ' misses'}`;
    });
    /** The best figure among the counted floors written in C (`c`) or in Node, with its floor's name. */
    const best = (c: boolean): { name: string; v: number } | null => {
      let b: { name: string; v: number } | null = null;
      for (const { f, v } of figures) {
        if (v === undefined || !g.floors.includes(f.kind) || C_FLOORS.includes(f.kind) !== c) continue;
        if (b === null || (g.op === 'ge' ? v > b.v : v < b.v)) b = { name: f.name, v };
      }
      return b;
    };
    const c = best(true);
    const node = best(false);
    const fig = (x: { name: string; v: number }): string => `${x.name} ${fmtGoal(x.v)}`;
    let bound: string;
    if (c !== null && !meets(g, c.v)) bound = `FUSE (best C floor: ${fig(c)})`;
    else if (node !== null && !meets(g, node.v)) bound = `Node (best Node floor: ${fig(node)}${c !== null ? `; ${fig(c)} meets it in C` : ''})`;
    else if (node !== null || c !== null) bound = `not bound (${fig((node ?? c)!)} meets it)`;
    else bound = 'no floor measured';
    return [g.what, wanted(g), ...builds.map((b) => buildCell(g, results, b.name)), ...floorCells, bound];
  });
  return {
    title: 'Issue 14 targets and the floors of this run',
    header: ['target', 'wanted', ...builds.map((b) => b.name), ...floors.map((f) => f.name), 'bound by'],
    rows,
    notes: [
      'The floors (bench/targets.ts): floor-c, a C FUSE server answering from memory; floor-c-io, the same doing the',
      'backing lookups and durable copy-ups a union must; floor and floor-io, our Node transport doing the same.',
      'A figure in brackets does not count for its row (that floor skips work the row needs: floor-c copies nothing',
      'on chmod). Bound by FUSE: even the best C floor misses the target; by Node: a C floor meets it, the best Node',
      'floor does not (layerfs is served from Node).',
    ],
  };
}
