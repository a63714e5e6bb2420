/**
 * One workload, two runs: a reference run without kills and a run with the serving daemon kill -9'd
 * every 150-600 ms. Each run: a fresh union (lowers filled, hashed), mounted through bin/layerfs, the
 * probe (and in the second run the kill loop) started, the workload run, the loop stopped, the merged
 * tree snapshot taken, the lowers hashed again, everything torn down. The second run must end with no
 * error seen by the workload or the probe, the reference run's merged tree, and untouched lowers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fuseUnavailable } from '../helpers/mount.js';
import { diffSnapshots, type Snapshot } from '../helpers/fs-snapshot.js';
import {
  describeReport,
  killSeed,
  logRecovery,
  lowerChanges,
  lowerSnapshots,
  makeUnion,
  mergedSnapshot,
  mountUnion,
  reportProblems,
  startKillLoop,
  teardown,
  type Union,
} from './kill-loop.js';
import type { DriverReport } from './kill-driver.js';

export interface Workload {
  name: string;
  fill(lo1: string, lo2: string): void;
  /**
   * Run on the mounted union (u.mnt). Throws an Error whose message names the call that failed and
   * why. `probeDir` is where the probe looks (default the mount). Returns extra lines for the log.
   */
  run(u: Union, ctx: { kill: boolean; seed: number; startLoop(probeDir?: string): void }): Promise<void>;
  /** Paths (relative to the mount) left out of the tree comparison, with why in a comment there. */
  ignore?: string[];
  /** The workload starts the loop itself (ctx.startLoop) once what it needs is up. */
  startsLoop?: boolean;
  /** Mounts the workload makes that teardown must also unmount (besides u.mnt). */
  extraMounts?(u: Union): string[];
}

export interface RunResult {
  tree: Snapshot;
  report: DriverReport;
  /** The scratch dir (removed unless kept: `keep`, or a failure). */
  root: string;
}

/** One run; throws one Error listing every problem (workload error, probe errors, lower changes). */
export async function runOnce(w: Workload, kill: boolean, seed: number, keep = false): Promise<RunResult> {
  const u = makeUnion(`kill-${w.name}`, w.fill);
  const problems: string[] = [];
  let report: DriverReport | undefined;
  let tree: Snapshot | undefined;
  try {
    const before = lowerSnapshots(u);
    mountUnion(u);
    let loop: ReturnType<typeof startKillLoop> | undefined;
    const startLoop = (probeDir?: string) => {
      loop ??= startKillLoop(u, probeDir === undefined ? { kill, seed } : { kill, seed, probeDir });
    };
    if (!w.startsLoop) startLoop();
    const sabotage = kill ? process.env.LAYERFS_KILLTEST_SABOTAGE : undefined;
    if (sabotage === 'lower') writeFileSync(join(u.lowers[1]!, 'sabotage'), 'x');
    const hang = sabotage === 'hang' ? setTimeout(() => stopDaemon(u), 1500) : undefined;
    try {
      await w.run(u, { kill, seed, startLoop });
    } catch (e) {
      problems.push(`workload: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      clearTimeout(hang);
      if (loop) {
        report = await loop.stop();
        console.log(describeReport(`${w.name} ${kill ? 'with kills' : 'reference'}`, report));
        logRecovery(w.name, report);
        problems.push(...reportProblems(report));
      }
    }
    if (sabotage === 'tree') appendFileSync(join(u.upper, 'sabotage'), 'x');
    if (problems.length === 0) tree = await mergedSnapshot(u, u.mnt, { ignore: w.ignore ?? [] });
    problems.push(...lowerChanges(u, before).slice(0, 20));
  } catch (e) {
    problems.push(e instanceof Error ? e.message : String(e));
  } finally {
    const forced = await teardown(u, w.extraMounts?.(u) ?? [], keep || problems.length > 0);
    if (forced.length) problems.push(`teardown had to force: ${forced.join('; ')}`);
  }
  if (kill && report && report.kills.length === 0) problems.push('the kill loop killed nothing (workload too short, or no daemon pid file)');
  if (problems.length && existsSync(u.root)) problems.push(`run dir kept for diagnosis (daemon and supervisor log in run/; journals only while the mount was still up): ${u.root}`);
  if (problems.length) throw new Error(`${w.name} (${kill ? `with kills, seed ${seed}` : 'reference, no kills'}):\n  ${problems.join('\n  ')}`);
  return { tree: tree!, report: report!, root: u.root };
}

/**
 * Self-check of the harness (LAYERFS_KILLTEST_SABOTAGE, in the kill run only): `lower` writes into a
 * lower branch, `tree` adds a file to the upper branch after the workload, `hang` SIGSTOPs the daemon
 * 1.5 s into the workload (the workload must hit its hard timeout and teardown must still clean up).
 */
function stopDaemon(u: Union): void {
  for (const f of readdirSync(u.run).filter((n) => /^daemon-.*\.pid$/.test(n))) {
    try {
      process.kill(Number(readFileSync(join(u.run, f), 'utf8')), 'SIGSTOP');
    } catch {
      /* gone */
    }
  }
}

/** The two node:test cases of a workload: reference, then under kills compared with it. */
export function twoRuns(w: Workload, timeoutMs: number): void {
  const why = fuseUnavailable();
  if (why !== null && process.env.CI) throw new Error(`restart tests cannot run: ${why}`);
  const opts = { skip: why ?? false, timeout: timeoutMs };
  let reference: Snapshot | undefined;
  test(`${w.name}: reference run without kills`, opts, async () => {
    reference = (await runOnce(w, false, 0)).tree;
  });
  test(`${w.name}: the same under kill -9 of the serving daemon every ${150}-${600} ms`, opts, async () => {
    assert.ok(reference, 'the reference run failed, nothing to compare with');
    const seed = killSeed();
    console.log(`${w.name}: kill seed ${seed} (LAYERFS_KILL_SEED=${seed} repeats it)`);
    // LAYERFS_KILLTEST_KILLS=0: the second run without kills too (shows the two runs end alike)
    // kept until the trees compare equal: a difference leaves the run dir (logs, branches)
    const { tree, root } = await runOnce(w, process.env.LAYERFS_KILLTEST_KILLS !== '0', seed, true);
    const diff = diffSnapshots(reference, tree);
    const kept = `run dir kept for diagnosis (daemon and supervisor log in run/; journals only while the mount was still up): ${root}`;
    assert.deepEqual(diff.slice(0, 30), [], `${w.name}: the merged tree after the kill run differs from the reference run (${diff.length} differences); ${kept}`);
    if (!process.env.LAYERFS_KEEP_SCRATCH) rmSync(root, { recursive: true, force: true });
  });
}
