/**
 * Turns the results into tables (medians per target, the daemon's CPU time,
 * ratios of each layerfs build to each peer) and renders them as aligned text
 * for the terminal or as markdown.
 */
import { median, ratio, type Cell, type MetricDef, type Results, type TableDef } from './results.js';
import type { Target } from './targets.js';

export interface TextTable {
  title: string;
  header: string[];
  rows: string[][];
  notes: string[];
}

function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return '?';
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function fmtValue(m: MetricDef, v: number): string {
  if (m.unit === 'ms' && m.ops) return `${fmtNum(v)} ms (${fmtNum((m.ops * 1000) / v)}/s)`;
  return `${fmtNum(v)} ${m.unit}`;
}

const RATIO_HEAD: Record<TableDef['ratio'], string> = {
  throughput: 'layerfs throughput ÷ peer throughput: >1 means layerfs is faster',
  time: 'layerfs time ÷ peer time: <1 means layerfs is faster',
  size: 'layerfs memory ÷ peer memory: <1 means layerfs uses less',
};

class Footnotes {
  readonly lines: string[] = [];
  add(text: string): string {
    let i = this.lines.indexOf(text);
    if (i < 0) i = this.lines.push(text) - 1;
    return `[${i + 1}]`;
  }
}

function cellText(m: MetricDef, c: Cell | undefined, rounds: number, fn: Footnotes, who: string): string {
  if (!c || (c.values.length === 0 && c.failures.length === 0)) return '-';
  const why = [...new Set(c.failures)].join(' | ');
  const notes = [...c.notes];
  if (c.values.length === 0) return `n/a ${fn.add(`${who}, ${m.name}: ${why}`)}`;
  let s = fmtValue(m, median(c.values));
  if (c.failures.length) notes.unshift(`${c.failures.length}/${rounds} rounds failed: ${why}`);
  if (notes.length) s += ` ${fn.add(`${who}, ${m.name}: ${notes.join('; ')}`)}`;
  return s;
}

/** One table per workload: metric rows, a column per target; then the ratio rows of each layerfs build. */
export function workloadTables(results: Results, targets: Target[], rounds: number): TextTable[] {
  const out: TextTable[] = [];
  const builds = targets.filter((t) => t.kind === 'layerfs');
  const peers = targets.filter((t) => t.kind !== 'layerfs');
  for (const def of results.tables) {
    const metrics = results.metrics.filter((m) => m.table === def.id);
    const fn = new Footnotes();
    const rows: string[][] = [];
    for (const m of metrics) {
      rows.push([m.name, ...targets.map((t) => cellText(m, results.peek(m, t.name), rounds, fn, t.name))]);
      const cpu = targets.map((t) => {
        const c = results.peek(m, t.name);
        return c && c.cpuMs.length ? `${Math.round(median(c.cpuMs))} ms` : '';
      });
      if (cpu.some(Boolean)) rows.push([`  daemon CPU`, ...cpu.map((v) => v || '-')]);
    }
    if (def.id === 'lookup' && metrics.length > 1) {
      const first = metrics[0]!;
      const last = metrics[metrics.length - 1]!;
      rows.push([
        `${last.name} ÷ ${first.name}`,
        ...targets.map((t) => {
          const a = results.medianOf(def.id, last.name, t.name);
          const b = results.medianOf(def.id, first.name, t.name);
          return a !== undefined && b !== undefined ? `${fmtNum(a / b)}x` : 'n/a';
        }),
      ]);
    }
    out.push({ title: def.title + ' — medians', header: ['metric', ...targets.map((t) => t.name)], rows, notes: [...def.notes, ...fn.lines.map((l, i) => `[${i + 1}] ${l}`)] });

    const ratioRows: string[][] = [];
    for (const b of builds) {
      for (const m of metrics) {
        const mine = results.medianOf(def.id, m.name, b.name);
        ratioRows.push([
          m.name,
          b.name,
          ...peers.map((p) => {
            const theirs = results.medianOf(def.id, m.name, p.name);
            return mine !== undefined && theirs !== undefined ? fmtNum(ratio(def.ratio, m, mine, theirs)) : 'n/a';
          }),
        ]);
      }
    }
    if (ratioRows.length && peers.length) {
      out.push({
        title: `${def.title.replace(/^(\d+)\..*/, '$1.')} ratios (${RATIO_HEAD[def.ratio]})`,
        header: ['metric', 'layerfs build', ...peers.map((p) => `vs ${p.name}`)],
        rows: ratioRows,
        notes: [],
      });
    }
  }
  return out;
}

export function renderPlain(t: TextTable): string {
  const all = [t.header, ...t.rows];
  const widths = t.header.map((_, i) => Math.max(...all.map((r) => [...(r[i] ?? '')].length)));
  const line = (r: string[]): string =>
    r.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ').trimEnd();
  return [t.title, line(t.header), ...t.rows.map(line), ...t.notes.map((n) => `  ${n}`)].join('\n');
}

export function renderMarkdown(t: TextTable, level = '###'): string {
  const esc = (v: string): string => v.replace(/\|/g, '\\|');
  const lines = [
    `${level} ${t.title}`,
    '',
    `| ${t.header.map(esc).join(' | ')} |`,
    `|${t.header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ];
  if (t.notes.length) lines.push('', ...t.notes.map((n) => `${n}  `));
  return lines.join('\n');
}
