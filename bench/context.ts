/**
 * What every workload gets: the options, the targets, the results to fill, and
 * helpers to mount a target freshly, drop caches, run a timed command and record
 * a sample (with the FUSE daemon's CPU time) or the reason it failed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LayerSet } from './datasets/layer-set.js';
import { cpuMs, mountTarget, pidsMentioning, unmountTarget } from './mount.js';
import { daemonPid } from './scale-memory.js';
import type { Options } from './options.js';
import type { MetricDef, Results } from './results.js';
import type { Target } from './targets.js';

/** A target ready to measure: the merged root, its upper (rw) dir, its daemon pids. */
export interface Opened {
  root: string;
  upper: string;
  pids: number[];
}

export class Ctx {
  aborted = false;
  private readonly t0 = Date.now();

  constructor(
    readonly work: string,
    /** dist/bench, where the child scripts are. */
    readonly here: string,
    readonly opt: Options,
    readonly targets: Target[],
    readonly results: Results,
  ) {}

  slug(t: Target): string {
    return t.name.replace(/[^a-z0-9]+/gi, '-');
  }

  mntOf(t: Target): string {
    return path.join(this.work, `mnt-${this.slug(t)}`);
  }

  /** The runtime dir of the layerfs daemon of target `t` (`tag`: a daemon apart, e.g. for the scale rows). */
  daemonRun(t: Target, tag = ''): string {
    return path.join(this.work, `run-${this.slug(t)}${tag ? `-${tag}` : ''}`);
  }

  /** The environment a mount command of `t` runs with: layerfs targets get their own daemon. */
  envOf(t: Target, tag = ''): NodeJS.ProcessEnv {
    return t.kind === 'layerfs' ? { ...process.env, LAYERFS_RUN_DIR: this.daemonRun(t, tag), LAYERFS_DAEMON_IDLE_MS: '3000' } : process.env;
  }

  /** The processes serving a mount of `t` on `mnt`: the layerfs daemon, or those naming `mnt`. */
  pidsOf(t: Target, mnt: string, tag = ''): number[] {
    if (t.kind === 'kernel' || t.kind === 'native') return [];
    if (t.kind === 'layerfs') {
      const pid = daemonPid(this.daemonRun(t, tag));
      return pid === undefined ? [] : [pid];
    }
    return pidsMentioning(mnt);
  }

  progress(msg: string): void {
    const s = Math.round((Date.now() - this.t0) / 1000);
    process.stderr.write(`[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${msg}\n`);
  }

  private trashed = 0;

  /**
   * Moves `p` out of the way instead of deleting it: on this disk (ext4 with
   * online discard) files created soon after many deletions were measured up to
   * 25x slower, so nothing is deleted until the run is over (run.ts's cleanup).
   */
  discard(p: string): void {
    if (!fs.existsSync(p)) return;
    const trash = path.join(this.work, 'trash');
    fs.mkdirSync(trash, { recursive: true });
    fs.renameSync(p, path.join(trash, String(this.trashed++)));
  }

  dropCaches(): void {
    spawnSync('sync');
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  }

  /**
   * Mounts `t` over `set` with a fresh empty upper (the native dir is used as
   * is), runs `fn`, and always unmounts and removes the upper. When the mount
   * fails, every metric in `metrics` records the reason for this round.
   */
  async withMount(t: Target, set: LayerSet, metrics: MetricDef[], fn: (m: Opened) => Promise<void> | void): Promise<void> {
    if (this.aborted) throw new Error('aborted');
    if (t.kind === 'native') {
      await fn({ root: set.native, upper: set.native, pids: [] });
      return;
    }
    const base = path.join(this.work, 'run', this.slug(t));
    this.discard(base);
    const upper = path.join(base, 'upper');
    const work = path.join(base, 'work');
    fs.mkdirSync(upper, { recursive: true });
    fs.mkdirSync(work, { recursive: true });
    const mnt = this.mntOf(t);
    const why = await mountTarget(t, { lowers: set.lowers, unionfsLowers: set.unionfsLowers, upper, work }, mnt, path.join(base, 'mount.log'), 30_000, this.envOf(t));
    if (why) {
      for (const m of metrics) this.results.cell(m, t.name).failures.push(`mount failed: ${why}`);
      this.progress(`${t.name}: mount failed: ${why}`);
      this.discard(base);
      return;
    }
    try {
      if (!this.aborted) await fn({ root: mnt, upper, pids: this.pidsOf(t, mnt) });
    } finally {
      const note = await unmountTarget(mnt);
      if (note) for (const m of metrics) this.results.cell(m, t.name).notes.add(note);
      this.discard(base);
    }
  }

  /**
   * Runs one measurement: `fn` returns the value in the metric's unit (throws
   * when the target got it wrong). Records it with the daemon's CPU time, or
   * the failure; never throws.
   */
  sample(m: MetricDef, t: Target, o: Opened, fn: () => number): number | undefined {
    const c = this.results.cell(m, t.name);
    const cpu0 = cpuMs(o.pids);
    try {
      const v = fn();
      if (o.pids.length && !m.noCpu) c.cpuMs.push(cpuMs(o.pids) - cpu0);
      c.values.push(v);
      this.progress(`  ${t.name} · ${m.name}: ${v < 10 ? v.toFixed(2) : v.toFixed(0)} ${m.unit}`);
      return v;
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      c.failures.push(why);
      this.progress(`  ${t.name} · ${m.name}: FAILED ${why}`);
      return undefined;
    }
  }

  /** Runs `cmd args` and returns its wall time in ms; throws with its stderr when it fails. */
  timed(cmd: string, args: string[], opts: { cwd?: string; out?: (stdout: string) => void; err?: (stderr: string) => void } = {}): number {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, {
      cwd: opts.cwd,
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C' },
      maxBuffer: 1 << 30,
      timeout: 600_000,
      stdio: ['ignore', opts.out ? 'pipe' : 'ignore', 'pipe'],
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) {
      const err = (r.stderr || r.error?.message || `status ${r.status}`).trim().split('\n');
      throw new Error(`${cmd} failed: ${err[0]}${err.length > 1 ? ` (+${err.length - 1} lines)` : ''}`);
    }
    opts.out?.(r.stdout ?? '');
    opts.err?.(r.stderr ?? '');
    return ms;
  }

  /** Runs a child script of dist/bench with `args` (bound to CPU `cpu` when given); returns its parsed JSON line. */
  child<T>(script: string, args: string[], cpu?: number): T {
    const argv = [path.join(this.here, script), ...args];
    const r =
      cpu === undefined
        ? spawnSync(process.execPath, argv, { encoding: 'utf8', timeout: 600_000 })
        : spawnSync('taskset', ['-c', String(cpu), process.execPath, ...argv], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`${script} failed: ${(r.stderr || r.error?.message || `status ${r.status}`).trim().split('\n')[0]}`);
    return JSON.parse(r.stdout.trim()) as T;
  }
}
