/**
 * The bench's issue-14 table (bench/goals.ts floorsTable): from a run's medians, what each layerfs
 * build and each floor scored against kernel overlayfs, and what bounds each row, as a reader of
 * the report sees them. Figures of the 2026-12-06 run (docs/performance.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { floorsTable } from '../../bench/goals.js';
import { Results, type MetricDef, type RatioKind } from '../../bench/results.js';
import type { Kind, Target } from '../../bench/targets.js';

const target = (name: string, kind: Kind): Target => ({ name, kind, command: () => ({ cmd: 'true', args: [] }) });

function results(): Results {
  const r = new Results();
  const put = (table: string, ratio: RatioKind, name: string, unit: MetricDef['unit'], byTarget: Record<string, number>): void => {
    r.table({ id: table, title: table, ratio, notes: [] });
    const m = r.metric({ table, name, unit });
    for (const [t, v] of Object.entries(byTarget)) r.cell(m, t).values.push(v);
  };
  put('list', 'throughput', 'ls -lR cached', 'ms', { 'kernel overlayfs': 392, layerfs: 1529, 'floor-c': 819, 'floor-c-io': 875, 'floor-io': 1433 });
  put('stat', 'throughput', 'stat uncached', 'ms', { 'kernel overlayfs': 489, layerfs: 1363, 'floor-c': 514, 'floor-c-io': 845, 'floor-io': 1075 });
  put('smallcpup', 'time', 'chmod', 'ms', { 'kernel overlayfs': 246, layerfs: 537, 'floor-c': 50.8, 'floor-c-io': 277, 'floor-io': 466 });
  put('memory', 'size', 'daemon VmHWM after stat, ls -lR, find', 'MB', { layerfs: 92.6, 'floor-c': 7.44, 'floor-c-io': 7.42, 'floor-io': 114 });
  return r;
}

const TARGETS = [
  target('kernel overlayfs', 'kernel'),
  target('layerfs', 'layerfs'),
  target('floor-c', 'floor-c'),
  target('floor-c-io', 'floor-c-io'),
  target('floor-io', 'floor-io'),
];

function row(t: NonNullable<ReturnType<typeof floorsTable>>, start: string): Record<string, string> {
  const r = t.rows.find((x) => x[0]!.startsWith(start));
  assert.ok(r, `a row for ${start}`);
  return Object.fromEntries(t.header.map((h, i) => [h, r[i]!]));
}

test('the issue-14 table shows each row against the floors and names what bounds it', () => {
  const t = floorsTable(results(), TARGETS);
  assert.ok(t, 'a table when floors ran');
  assert.deepEqual(t.header, ['target', 'wanted', 'layerfs', 'floor-c', 'floor-c-io', 'floor-io', 'bound by']);

  const ls = row(t, '`ls -lR` (cached)');
  assert.equal(ls.layerfs, '0.26 MISSED');
  assert.equal(ls['floor-c'], '0.48 misses');
  assert.equal(ls['bound by'], 'FUSE (best C floor: floor-c 0.48)');

  // floor-c answers lstat from memory: it does not count where a union must read the inode
  const stat = row(t, 'uncached stat');
  assert.equal(stat['floor-c'], '(0.95)');
  assert.equal(stat['bound by'], 'FUSE (best C floor: floor-c-io 0.58)');

  const chmod = row(t, 'small-file copy-up');
  assert.equal(chmod.layerfs, '2.18 MISSED');
  assert.equal(chmod['floor-c'], '(0.21)', 'floor-c copies nothing: not a floor for chmod');
  assert.equal(chmod['floor-c-io'], '1.13');
  assert.equal(chmod['bound by'], 'Node (best Node floor: floor-io 1.89; floor-c-io 1.13 meets it in C)');

  const mem = row(t, 'daemon peak memory');
  assert.equal(mem.layerfs, '92.6 MISSED');
  assert.equal(mem['bound by'], 'Node (best Node floor: floor-io 114; floor-c-io 7.42 meets it in C)');

  // a row no floor measured says so rather than guessing
  assert.equal(row(t, '`ls -l` of one dir')['bound by'], 'no floor measured');
});

test('a Node floor that meets a target leaves the row not bound', () => {
  const r = results();
  r.cell(r.metrics.find((m) => m.name === 'chmod')!, 'floor-io').values.splice(0, 1, 280);
  const chmod = row(floorsTable(r, TARGETS)!, 'small-file copy-up');
  assert.equal(chmod['floor-io'], '1.14');
  assert.equal(chmod['bound by'], 'not bound (floor-io 1.14 meets it)');
});

test('no table without a floor in the run', () => {
  assert.equal(floorsTable(results(), TARGETS.slice(0, 2)), null);
});
