/**
 * What the bench measured: tables (one per workload) of metrics, and for each
 * metric and target the samples of every round, the daemon CPU time, and why
 * rounds failed.
 */

/**
 * How a table's ratio column reads: 'throughput' = layerfs speed / peer speed
 * (>1: layerfs is better); 'time' and 'size' = layerfs value / peer value (<1:
 * layerfs is better), as issue 6 states those targets.
 */
export type RatioKind = 'throughput' | 'time' | 'size';

export interface TableDef {
  id: string;
  title: string;
  ratio: RatioKind;
  /** Lines printed under the table: what was measured, how. */
  notes: string[];
}

export interface MetricDef {
  table: string;
  name: string;
  /** ms: lower is better; MB/s: higher is better; MB: lower is better. */
  unit: 'ms' | 'MB/s' | 'MB';
  /** For ms: operations done, to show ops/s. */
  ops?: number;
  /** Do not record the daemon's CPU time (a derived value, or not a time). */
  noCpu?: boolean;
}

export interface Cell {
  values: number[];
  cpuMs: number[];
  failures: string[];
  notes: Set<string>;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export class Results {
  readonly tables: TableDef[] = [];
  readonly metrics: MetricDef[] = [];
  private readonly cells = new Map<string, Cell>();

  table(def: TableDef): void {
    if (!this.tables.some((t) => t.id === def.id)) this.tables.push(def);
  }

  metric(def: MetricDef): MetricDef {
    const have = this.metrics.find((m) => m.table === def.table && m.name === def.name);
    if (have) return have;
    this.metrics.push(def);
    return def;
  }

  cell(m: MetricDef, target: string): Cell {
    const k = `${m.table}\0${m.name}\0${target}`;
    let c = this.cells.get(k);
    if (!c) this.cells.set(k, (c = { values: [], cpuMs: [], failures: [], notes: new Set() }));
    return c;
  }

  peek(m: MetricDef, target: string): Cell | undefined {
    return this.cells.get(`${m.table}\0${m.name}\0${target}`);
  }

  /** Median of `target`'s samples of metric `name` in table `table`, if any. */
  medianOf(table: string, name: string, target: string): number | undefined {
    const m = this.metrics.find((x) => x.table === table && x.name === name);
    const c = m && this.peek(m, target);
    return c && c.values.length ? median(c.values) : undefined;
  }
}

/** True when a larger value of this metric is better. */
export const higherIsBetter = (m: MetricDef): boolean => m.unit === 'MB/s';

/** The ratio layerfs : peer as the table's kind reads it (see RatioKind). */
export function ratio(kind: RatioKind, m: MetricDef, layerfs: number, peer: number): number {
  if (kind === 'throughput') return higherIsBetter(m) ? layerfs / peer : peer / layerfs;
  return higherIsBetter(m) ? peer / layerfs : layerfs / peer;
}
