/**
 * Differential test (issue 4 item 2): random lower trees (2-4 overlay-format layers with whiteouts and
 * opaque dirs) and random operation sequences, run on kernel overlayfs (redirect_dir=on) and on
 * layerfs; every step's result and the final merged trees must be equal.
 *
 * Operations include remounts and rotations (the upper becomes the topmost lower under a fresh upper).
 * Bounded for CI (LAYERFS_DIFF_RUNS, default 40 runs; LAYERFS_DIFF_TIME_S, default 90 s); a long run:
 *   LAYERFS_DIFF_RUNS=1000 LAYERFS_DIFF_TIME_S=3600 node scripts/test.mjs conformance/differential
 * Reproduce a failure with LAYERFS_DIFF_SEED=<seed> (and LAYERFS_DIFF_PATH=<path> for the shrunk case).
 * LAYERFS_DIFF_REF / LAYERFS_DIFF_SUBJECT pick the two implementations (overlay, layerfs, fuse-overlayfs);
 * LAYERFS_DIFF_DIR_NLINK=0 ignores directory link counts (overlayfs reports 1 for a merged dir);
 * LAYERFS_DIFF_TIMES=0 ignores mtimes (compared where not set at wall-clock time by an operation).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { requireMount } from '../helpers/overlay.js';
import { lowerSpec, opsArb } from './diff-model.js';
import { diffConfig, differentialRun } from './diff-run.js';

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
}

const runs = envInt('LAYERFS_DIFF_RUNS', 40);
const seconds = envInt('LAYERFS_DIFF_TIME_S', 90);

const cfg = diffConfig();

test(`differential: random ops on ${cfg.sub} equal ${cfg.ref} (${runs} runs${cfg.dirNlink ? '' : ', dir nlink ignored'}${cfg.times ? '' : ', times ignored'})`, { timeout: (seconds + 60) * 1000 }, (t) => {
  const { ref, sub } = cfg;
  if (!requireMount(t, ref) || !requireMount(t, sub)) return;
  const seed = process.env.LAYERFS_DIFF_SEED;
  const path = process.env.LAYERFS_DIFF_PATH;
  let executed = 0;
  fc.assert(
    fc.property(lowerSpec, opsArb, (spec, ops) => {
      executed++;
      const problems = differentialRun(spec, ops, cfg);
      if (problems.length > 0) throw new Error(problems.join('\n'));
    }),
    {
      numRuns: runs,
      interruptAfterTimeLimit: seconds * 1000,
      markInterruptAsFailure: false,
      includeErrorInReport: true,
      ...(seed !== undefined ? { seed: Number(seed) } : {}),
      ...(path !== undefined ? { path } : {}),
    },
  );
  t.diagnostic(`${executed} runs executed (requested ${runs}, limit ${seconds}s)`);
  assert.ok(executed >= Math.min(runs, 5), `only ${executed} runs fit in ${seconds}s`);
});
