/**
 * Issue 10's mount latency: 50 mounts in a row of the 20k-file tree, each with a fresh upper and
 * work dir, the way podman and Docker call a mount program: run the command until it returns
 * (layerfs: its launcher `bin/layerfs -o lowerdir=..,upperdir=..,workdir=.. MNT`, a thin client of
 * the resident daemon; fuse-overlayfs the same; kernel overlayfs `mount -t overlay`); p50 and p95
 * of the wall time per round. The mounts stay until the round's 50 are done, then are unmounted.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Tree } from '../datasets/tree.js';
import { isMounted, unmountTarget } from '../mount.js';
import type { MetricDef } from '../results.js';
import { overlayOpts, type MountSpec, type Target } from '../targets.js';
import type { Workload } from './workload.js';

/** The command a container engine runs to mount `spec` on `mnt` with target `t`. */
export function engineMountCommand(t: Target, spec: MountSpec, mnt: string): { cmd: string; args: string[] } {
  if (t.layerfs) return { cmd: t.layerfs.launcher, args: ['-o', t.layerfs.options(spec), mnt] };
  if (t.kind === 'kernel') return { cmd: 'mount', args: ['-t', 'overlay', 'overlay', '-o', overlayOpts(spec), mnt] };
  return t.command(spec, mnt);
}

/**
 * Mount `tree` on a fresh upper/work/mnt under `dir` the way a container engine does (the command
 * run until it returns, timed); the mount point, or the first line of why it failed.
 */
export function mountFresh(t: Target, tree: Tree, dir: string, env: NodeJS.ProcessEnv): { mnt: string; ms: number } | { error: string } {
  for (const d of ['up', 'work', 'mnt']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const mnt = path.join(dir, 'mnt');
  const spec = { lowers: tree.lowers, unionfsLowers: tree.unionfsLowers, upper: path.join(dir, 'up'), work: path.join(dir, 'work') };
  const { cmd, args } = engineMountCommand(t, spec, mnt);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 || !isMounted(mnt)) return { error: (r.stderr || r.error?.message || `status ${r.status}`).trim().split('\n')[0]! };
  return { mnt, ms };
}

export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}

export function mountsWorkload(): Workload {
  let tree: Tree;
  let m: { p50: MetricDef; p95: MetricDef };
  let rounds = 0;
  return {
    id: 'mounts',
    prepare(ctx, data) {
      tree = data.tree();
      const n = ctx.opt.sizes.latencyMounts;
      ctx.results.table({
        id: 'mounts',
        title: `10. Mount latency over ${n} mounts of the ${tree.files.length}-file tree`,
        ratio: 'time',
        notes: [
          `Wall time of the mount command until it returns, ${n} mounts in a row (each with a fresh upper and work dir, all kept mounted until the last); p50 and p95 of each round.`,
          'layerfs: `bin/layerfs -o lowerdir=..,upperdir=..,workdir=.. MNT` (a client of the resident daemon, started by the first mount of the run if none runs);',
          'fuse-overlayfs: the same options; kernel overlayfs: `mount -t overlay overlay -o ...`. unionfs-fuse and the native dir are not measured.',
        ],
      });
      m = {
        p50: ctx.results.metric({ table: 'mounts', name: 'mount p50', unit: 'ms', noCpu: true }),
        p95: ctx.results.metric({ table: 'mounts', name: 'mount p95', unit: 'ms', noCpu: true }),
      };
    },
    async run(ctx, t) {
      rounds++;
      if (t.kind === 'native' || t.kind === 'unionfs') {
        for (const x of [m.p50, m.p95]) ctx.results.cell(x, t.name).failures.push('not measured');
        return;
      }
      const n = ctx.opt.sizes.latencyMounts;
      const base = path.join(ctx.work, 'lat', `${ctx.slug(t)}-${rounds}`);
      const env = ctx.envOf(t);
      const mnts: string[] = [];
      const times: number[] = [];
      let failure: string | undefined;
      try {
        for (let i = 0; i < n && !ctx.aborted; i++) {
          const got = mountFresh(t, tree, path.join(base, String(i)), env);
          if ('error' in got) {
            failure = `mount ${i}: ${got.error}`;
            break;
          }
          mnts.push(got.mnt);
          times.push(got.ms);
        }
      } finally {
        for (const mnt of mnts.reverse()) await unmountTarget(mnt);
        ctx.discard(base);
      }
      if (failure || times.length < n) {
        const why = failure ?? 'aborted';
        for (const x of [m.p50, m.p95]) ctx.results.cell(x, t.name).failures.push(why);
        ctx.progress(`  ${t.name} · mounts: FAILED ${why}`);
        return;
      }
      const o = { root: '', upper: '', pids: [] };
      ctx.sample(m.p50, t, o, () => quantile(times, 0.5));
      ctx.sample(m.p95, t, o, () => quantile(times, 0.95));
    },
  };
}
