/** One workload of the suite: builds what it needs once, then measures one target per call. */
import type { Ctx } from '../context.js';
import type { DataSets } from '../datasets/index.js';
import type { WorkloadId } from '../options.js';
import type { Target } from '../targets.js';

export interface Workload {
  id: WorkloadId;
  /** Builds data sets and declares the tables and metrics (before the first round). */
  prepare(ctx: Ctx, data: DataSets): void;
  /** One round's measurements of `t` (records samples or failures in ctx.results; never throws). */
  run(ctx: Ctx, t: Target): Promise<void>;
  /** After the last round: remove what prepare() left outside the work dir's mounts. */
  finish?(ctx: Ctx): void;
}

/** Throws unless `actual` equals `expected` (a target listing or counting something wrong). */
export function expectCount(what: string, actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`${what}: got ${actual}, expected ${expected}`);
}

/** Lines of `text` (no trailing empty line). */
export function lineCount(text: string): number {
  if (text === '') return 0;
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}
