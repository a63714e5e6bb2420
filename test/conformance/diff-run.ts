/**
 * One differential run: build the same overlay-format lower layers twice, mount them with a reference
 * (kernel overlayfs) and a subject (layerfs by default), apply the same operations to both, and
 * return every difference: the first differing step (op, expected result, got result) and the
 * differences of the final merged trees. Empty when the two behave the same.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { diffSnapshots, snapshot } from '../helpers/fs-snapshot.js';
import { freshUpper, mountUnion, parseKind, type Mounted, type UnionKind } from '../helpers/overlay.js';
import { buildLowers, type LowerSpec, type Op } from './diff-model.js';
import { envDirNlink, runOp, type Result } from './diff-ops.js';

export interface DiffConfig {
  ref: UnionKind;
  sub: UnionKind;
  /** Compare directory link counts (overlayfs reports 1 for merged dirs). */
  dirNlink: boolean;
  /** Compare mtimes not set at wall-clock time by an operation (lower times kept by copy-up and rename). */
  times: boolean;
}

/**
 * From the environment: LAYERFS_DIFF_REF / LAYERFS_DIFF_SUBJECT (overlay, layerfs, fuse-overlayfs;
 * default overlay vs layerfs), LAYERFS_DIFF_DIR_NLINK=0 to ignore directory link counts,
 * LAYERFS_DIFF_TIMES=0 to ignore mtimes.
 */
export function diffConfig(): DiffConfig {
  return {
    ref: parseKind(process.env.LAYERFS_DIFF_REF, 'overlay'),
    sub: parseKind(process.env.LAYERFS_DIFF_SUBJECT, 'layerfs'),
    dirNlink: envDirNlink,
    times: process.env.LAYERFS_DIFF_TIMES !== '0',
  };
}

/**
 * Compare the two merged trees, mtimes included, except where both sides show a time from this run
 * (set by an operation at wall-clock time, which never matches between two mounts).
 */
function compareTrees(ref: string, sub: string, dirNlink: boolean, times: boolean, since: number): string[] {
  const opts = { dirNlink, times };
  const a = snapshot(ref, opts);
  const b = snapshot(sub, opts);
  for (const [p, ea] of a) {
    const eb = b.get(p);
    if (!eb || ea.mtimeMs === undefined || eb.mtimeMs === undefined) continue;
    if (ea.mtimeMs >= since && eb.mtimeMs >= since) {
      delete ea.mtimeMs;
      delete eb.mtimeMs;
    }
  }
  return diffSnapshots(a, b);
}

function show(r: Result[]): string {
  return JSON.stringify(r);
}

/** One side of the comparison: its current mount, and how to remount or rotate it. */
class Side {
  private m: Mounted;
  private rotations = 0;
  constructor(
    private readonly kind: UnionKind,
    private readonly dir: string,
    private readonly tag: string,
    lowers: string[],
  ) {
    const { upper, work, mnt } = freshUpper(dir, `${tag}-0`);
    this.m = mountUnion(kind, { lowers, upper, work }, mnt, { watchdogSeconds: 300 });
  }
  get mnt(): string {
    return this.m.mnt;
  }
  remount(): void {
    const { layers, mnt } = this.m;
    this.m.unmount();
    this.m = mountUnion(this.kind, layers, mnt, { watchdogSeconds: 300 });
  }
  /** The upper layer becomes the topmost lower layer under a fresh upper (as unionmount-testsuite --ov=N). */
  rotate(): void {
    const { layers, mnt } = this.m;
    this.m.unmount();
    this.rotations++;
    const { upper, work } = freshUpper(this.dir, `${this.tag}-${this.rotations}`);
    this.m = mountUnion(this.kind, { lowers: [layers.upper, ...layers.lowers], upper, work }, mnt, { watchdogSeconds: 300 });
  }
  unmount(): void {
    this.m.unmount();
  }
}

export function differentialRun(spec: LowerSpec, ops: Op[], kinds: DiffConfig = diffConfig()): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'layerfs-diff-'));
  const sides: Side[] = [];
  // mtimes at or after this are from this run: building the layers (each side's own roots, made
  // seconds apart on a loaded machine) and the operations (minus 2 s for coarse timestamps)
  const since = Date.now() - 2000;
  try {
    for (const tag of ['ref', 'sub'] as const) sides.push(new Side(kinds[tag], dir, tag, buildLowers(dir, tag, spec)));
    const [ref, sub] = sides as [Side, Side];
    const problems: string[] = [];
    const trees = (): string[] => compareTrees(ref.mnt, sub.mnt, kinds.dirNlink, kinds.times, since);
    const before = trees();
    if (before.length > 0) problems.push('initial merged trees differ:', ...before);
    for (let i = 0; i < ops.length && problems.length === 0; i++) {
      const op = ops[i]!;
      if (op.op === 'remount' || op.op === 'rotate') {
        for (const s of sides) op.op === 'remount' ? s.remount() : s.rotate();
        const d = trees();
        if (d.length > 0) problems.push(`step ${i} ${JSON.stringify(op)}: merged trees differ after it:`, ...d);
        continue;
      }
      const a = runOp(ref.mnt, op, kinds.dirNlink);
      const b = runOp(sub.mnt, op, kinds.dirNlink);
      if (!isDeepStrictEqual(a, b)) {
        problems.push(`step ${i} ${JSON.stringify(op)}`, `  ${kinds.ref}: ${show(a)}`, `  ${kinds.sub}: ${show(b)}`);
      }
    }
    if (problems.length === 0) {
      const after = trees();
      if (after.length > 0) problems.push('final merged trees differ:', ...after);
    }
    return problems;
  } finally {
    let unmountError: unknown;
    for (const s of sides.reverse()) {
      try {
        s.unmount();
      } catch (e) {
        unmountError = e;
      }
    }
    rmSync(dir, { recursive: true, force: true });
    if (unmountError) throw unmountError;
  }
}
