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
}

/**
 * From the environment: LAYERFS_DIFF_REF / LAYERFS_DIFF_SUBJECT (overlay, layerfs, fuse-overlayfs;
 * default overlay vs layerfs), LAYERFS_DIFF_DIR_NLINK=0 to ignore directory link counts.
 */
export function diffConfig(): DiffConfig {
  return {
    ref: parseKind(process.env.LAYERFS_DIFF_REF, 'overlay'),
    sub: parseKind(process.env.LAYERFS_DIFF_SUBJECT, 'layerfs'),
    dirNlink: envDirNlink,
  };
}

function show(r: Result[]): string {
  return JSON.stringify(r);
}

export function differentialRun(spec: LowerSpec, ops: Op[], kinds: DiffConfig = diffConfig()): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'layerfs-diff-'));
  const mounts: Mounted[] = [];
  try {
    const sides = (['ref', 'sub'] as const).map((tag) => {
      const lowers = buildLowers(dir, tag, spec);
      const { upper, work, mnt } = freshUpper(dir, tag);
      const m = mountUnion(kinds[tag], { lowers, upper, work }, mnt, { watchdogSeconds: 300 });
      mounts.push(m);
      return m;
    });
    const [ref, sub] = sides as [Mounted, Mounted];
    const problems: string[] = [];
    const snapOpts = { dirNlink: kinds.dirNlink };
    const before = diffSnapshots(snapshot(ref.mnt, snapOpts), snapshot(sub.mnt, snapOpts));
    if (before.length > 0) problems.push('initial merged trees differ:', ...before);
    for (let i = 0; i < ops.length && problems.length === 0; i++) {
      const op = ops[i]!;
      const a = runOp(ref.mnt, op, kinds.dirNlink);
      const b = runOp(sub.mnt, op, kinds.dirNlink);
      if (!isDeepStrictEqual(a, b)) {
        problems.push(`step ${i} ${JSON.stringify(op)}`, `  ${kinds.ref}: ${show(a)}`, `  ${kinds.sub}: ${show(b)}`);
      }
    }
    if (problems.length === 0) {
      const after = diffSnapshots(snapshot(ref.mnt, snapOpts), snapshot(sub.mnt, snapOpts));
      if (after.length > 0) problems.push('final merged trees differ:', ...after);
    }
    return problems;
  } finally {
    let unmountError: unknown;
    for (const m of mounts.reverse()) {
      try {
        m.unmount();
      } catch (e) {
        unmountError = e;
      }
    }
    rmSync(dir, { recursive: true, force: true });
    if (unmountError) throw unmountError;
  }
}
