/**
 * Differential test of the in-process API: random overlay-format lower trees and random operation
 * sequences (test/conformance's model) applied to kernel overlayfs through node:fs and to UnionFS
 * over a copy of the same layers; every step's result (value or errno code) and the final merged
 * trees must be equal. Needs root for the kernel overlay mount (required in CI).
 * LAYERFS_API_DIFF_RUNS (default 30), LAYERFS_API_DIFF_SEED to reproduce.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { UnionFS } from '../../src/api/index.js';
import { buildLowers, lowerSpec, opArb, type LowerSpec, type Op } from '../conformance/diff-model.js';
import { runOp } from '../conformance/diff-ops.js';
import { diffSnapshots, snapshot } from '../helpers/fs-snapshot.js';
import { freshUpper, mountUnavailable, mountUnion, type Mounted } from '../helpers/overlay.js';
import { runOpApi, snapshotApi } from './api-ops.js';

const RUNS = Number(process.env.LAYERFS_API_DIFF_RUNS || 30);
// Directory link counts are the engine's business (a renamed lower dir is a real copy here, nlink
// counts its subdirs; overlayfs says 1 for a redirected dir); LAYERFS_API_DIFF_DIR_NLINK=1 compares them.
const envDirNlink = process.env.LAYERFS_API_DIFF_DIR_NLINK === '1';
const SEED = process.env.LAYERFS_API_DIFF_SEED;

// setxattr has no node:fs API, so the API side cannot express it. Symlinks that may leave the
// union differ by design: the mount follows `/x` and a top-level `../x` on the host, the API stays
// inside the union (as in a chroot). A symlink can be renamed to the top, so `../` targets go too.
const escapes = (target: string): boolean => target.startsWith('/') || target.startsWith('../');
const opsForApi = fc.array(
  opArb.filter((o) => o.op !== 'setxattr' && !(o.op === 'symlink' && escapes(o.target))),
  { minLength: 1, maxLength: 25 },
);
const specForApi = lowerSpec.filter((spec) => spec.every((layer) => layer.every((e) => e.kind !== 'symlink' || !escapes(e.target))));

interface Layers {
  lowers: string[];
  upper: string;
  work: string;
  mnt: string;
}

async function differential(spec: LowerSpec, ops: Op[]): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'layerfs-api-diff-'));
  let ref: Mounted | undefined;
  let ufs: UnionFS | undefined;
  const open = (l: Layers): UnionFS => new UnionFS(`lowerdir=${l.lowers.join(':')},upperdir=${l.upper},workdir=${l.work}`);
  const snapOpts = { xattrs: false, dirNlink: envDirNlink };
  try {
    let refLayers: Layers = { lowers: buildLowers(dir, 'ref', spec), ...freshUpper(dir, 'ref-0') };
    ref = mountUnion('overlay', refLayers, refLayers.mnt);
    let sub: Layers = { lowers: buildLowers(dir, 'api', spec), ...freshUpper(dir, 'api-0') };
    ufs = open(sub);
    const problems: string[] = [];
    const before = diffSnapshots(snapshot(ref.mnt, snapOpts), await snapshotApi(ufs, envDirNlink));
    if (before.length > 0) problems.push('initial merged trees differ:', ...before);
    for (let i = 0; i < ops.length && problems.length === 0; i++) {
      const op = ops[i]!;
      if (op.op === 'remount' || op.op === 'rotate') {
        // remount: same layers again; rotate: the upper becomes the topmost lower under a fresh upper
        ref.unmount();
        await ufs.close();
        if (op.op === 'rotate') {
          refLayers = { lowers: [refLayers.upper, ...refLayers.lowers], ...freshUpper(dir, `ref-${i + 1}`), mnt: refLayers.mnt };
          sub = { lowers: [sub.upper, ...sub.lowers], ...freshUpper(dir, `api-${i + 1}`) };
        }
        ref = mountUnion('overlay', refLayers, refLayers.mnt);
        ufs = open(sub);
        const d = diffSnapshots(snapshot(ref.mnt, snapOpts), await snapshotApi(ufs, envDirNlink));
        if (d.length > 0) problems.push(`step ${i} ${JSON.stringify(op)}: merged trees differ after it:`, ...d);
        continue;
      }
      const a = runOp(ref.mnt, op, envDirNlink);
      const b = await runOpApi(ufs, op, envDirNlink);
      if (!isDeepStrictEqual(a, b)) problems.push(`step ${i} ${JSON.stringify(op)}`, `  overlay: ${JSON.stringify(a)}`, `  api:     ${JSON.stringify(b)}`);
    }
    if (problems.length === 0) {
      const after = diffSnapshots(snapshot(ref.mnt, snapOpts), await snapshotApi(ufs, envDirNlink));
      if (after.length > 0) problems.push('final merged trees differ:', ...after);
    }
    return problems;
  } finally {
    await ufs?.close();
    ref?.unmount();
    rmSync(dir, { recursive: true, force: true });
  }
}

test(`differential: random ops through UnionFS equal kernel overlayfs (${RUNS} runs)`, { timeout: 300_000 }, async (t) => {
  const why = mountUnavailable('overlay');
  if (why !== undefined) {
    if (process.env.CI) assert.fail(`kernel overlayfs unavailable in CI: ${why}`);
    t.skip(`kernel overlayfs unavailable: ${why}`);
    return;
  }
  let executed = 0;
  await fc.assert(
    fc.asyncProperty(specForApi, opsForApi, async (spec, ops) => {
      executed++;
      const problems = await differential(spec, ops);
      if (problems.length > 0) throw new Error(problems.join('\n'));
    }),
    { numRuns: RUNS, includeErrorInReport: true, ...(SEED !== undefined ? { seed: Number(SEED) } : {}) },
  );
  assert.equal(executed >= RUNS, true);
});
