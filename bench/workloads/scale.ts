/**
 * Issue 10's memory at scale: 1, 10 and 100 live mounts of the 20k-file tree (each with its own
 * upper and work dir, mounted as a container engine does: see mounts.ts), `find` over each right
 * after mounting it; then the memory of what serves them: the one layerfs daemon (its own, apart
 * from the other workloads' daemon) or every fuse-overlayfs process together. RSS counts pages
 * shared between processes once per process; PSS shares them out (the fair sum over 100).
 * Measured in the first round only (memory hardly moves between rounds; 100 mounts take minutes).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { Tree } from '../datasets/tree.js';
import { unmountTarget } from '../mount.js';
import type { MetricDef } from '../results.js';
import { memoryOf } from '../scale-memory.js';
import { mountFresh } from './mounts.js';
import type { Workload } from './workload.js';

export function scaleWorkload(): Workload {
  let tree: Tree;
  const m = new Map<string, MetricDef>();
  const done = new Set<string>();
  return {
    id: 'scale',
    prepare(ctx, data) {
      tree = data.tree();
      const counts = ctx.opt.sizes.scaleMounts;
      ctx.results.table({
        id: 'scale',
        title: `11. Memory with ${counts.join(', ')} live mounts of the ${tree.files.length}-file tree`,
        ratio: 'size',
        notes: [
          `Each mount gets its own upper and work dir and a \`find\` over it right after mounting; then VmRSS and Pss (smaps_rollup) summed over what serves the mounts`,
          'layerfs: its resident daemon (one process, a daemon of its own for this table); fuse-overlayfs: every process, one per mount. MB = 10^6 bytes. First round only.',
        ],
      });
      for (const n of counts) {
        for (const k of ['RSS', 'PSS']) m.set(`${k}${n}`, ctx.results.metric({ table: 'scale', name: `${k} with ${n} mount${n === 1 ? '' : 's'}`, unit: 'MB', noCpu: true }));
      }
    },
    async run(ctx, t) {
      const all = [...m.values()];
      if (t.kind !== 'layerfs' && t.kind !== 'fuse-overlayfs') {
        for (const x of all) ctx.results.cell(x, t.name).failures.push(t.kind === 'kernel' ? 'in the kernel' : 'not measured');
        return;
      }
      if (done.has(t.name)) return;
      done.add(t.name);
      const counts = ctx.opt.sizes.scaleMounts;
      const max = Math.max(...counts);
      const base = path.join(ctx.work, 'scale', ctx.slug(t));
      const env = ctx.envOf(t, 'scale');
      const mnts: string[] = [];
      let failure: string | undefined;
      try {
        for (let i = 0; i < max && !ctx.aborted; i++) {
          const got = mountFresh(t, tree, path.join(base, String(i)), env);
          if ('error' in got) {
            failure = `mount ${i}: ${got.error}`;
            break;
          }
          const mnt = got.mnt;
          mnts.push(mnt);
          const f = spawnSync('find', [mnt], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 600_000 });
          if (f.status !== 0) {
            failure = `find ${mnt}: ${(f.stderr || '').trim().split('\n')[0]}`;
            break;
          }
          if (counts.includes(i + 1)) {
            const pids = new Set<number>();
            for (const x of t.kind === 'layerfs' ? [mnt] : mnts) for (const p of ctx.pidsOf(t, x, 'scale')) pids.add(p);
            const mem = memoryOf([...pids]);
            const o = { root: mnt, upper: '', pids: [] };
            ctx.sample(m.get(`RSS${i + 1}`)!, t, o, () => mem.rssMB);
            ctx.sample(m.get(`PSS${i + 1}`)!, t, o, () => mem.pssMB);
          }
        }
      } finally {
        ctx.progress(`  ${t.name} · scale: unmounting ${mnts.length} mounts`);
        for (const mnt of mnts.reverse()) await unmountTarget(mnt);
        ctx.discard(base);
      }
      if (failure) {
        for (const x of all) if (ctx.results.cell(x, t.name).values.length === 0) ctx.results.cell(x, t.name).failures.push(failure);
        ctx.progress(`  ${t.name} · scale: FAILED ${failure}`);
      }
    },
  };
}
