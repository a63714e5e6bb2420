/**
 * Workload podman (issue 10 §5): podman's overlay driver with each target as its mount program
 * (kernel overlayfs: none; fuse-overlayfs; layerfs builds), each with its own storage under the work
 * dir and a base image of static busybox plus `podmanImageFiles` small files, imported once:
 *   - `podman run --rm IMAGE true` wall time (mount, start, stop, unmount);
 *   - `podman run` of a container that creates `podmanFiles` files (in 30 dirs), wall time;
 *   - `podman diff` of that container (with a mount program podman diffs the merged container
 *     against the merged image: both mounted, both walked), checked to list every new file;
 *   - `podman commit` of it.
 * Containers and images stay until the end (the bench deletes nothing during a run); finish()
 * removes them. layerfs targets use their own resident daemon (LAYERFS_RUN_DIR in the work dir), with
 * its default idle time (it stays between rounds, as on a host running containers one after another),
 * stopped by pid in finish().
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PODMAN, Podman, VM_RUN_FLAGS, busyboxImageTar } from '../../test/podman/podman.js';
import type { MetricDef } from '../results.js';
import type { Target } from '../targets.js';
import { type Workload } from './workload.js';

/**
 * The resident daemon of a layerfs target runs with its default idle time (what a podman host
 * gets: it stays between podman commands); stop it by pid at the end.
 */
function stopDaemons(run: string): void {
  let names: string[] = [];
  try {
    names = fs.readdirSync(run).filter((n) => /^daemon-\d+\.pid$/.test(n));
  } catch {
    return;
  }
  for (const n of names) {
    try {
      process.kill(Number(fs.readFileSync(path.join(run, n), 'utf8').trim()), 'SIGTERM');
    } catch {
      /* gone */
    }
  }
}

export function podmanWorkload(): Workload {
  const pods = new Map<string, Podman>();
  const runs = new Map<string, number>();
  let m: { run: MetricDef; create: MetricDef; diff: MetricDef; commit: MetricDef };
  let files = 0;
  const none = { root: '', upper: '', pids: [] };

  /** A container of `files` new files: 30 dirs of files/30. */
  const script = (n: number): string => {
    const per = Math.ceil(n / 30);
    return `mkdir /many && cd /many && for d in $(seq 30); do mkdir $d; for f in $(seq ${per}); do echo $d.$f > $d/$f; done; done`;
  };

  return {
    id: 'podman',
    prepare(ctx) {
      files = 30 * Math.ceil(ctx.opt.sizes.podmanFiles / 30);
      const imageFiles = ctx.opt.sizes.podmanImageFiles;
      const r = ctx.results;
      r.table({
        id: 'podman',
        title: `10. podman with each target as its overlay storage (${imageFiles} files in the image, ${files} made by the container)`,
        ratio: 'time',
        notes: [
          'podman 4 as root, own --root/--runroot per target; kernel overlayfs = no mount program, the others as',
          '`--storage-opt overlay.mount_program=PROG`; `--runtime runc --cgroup-manager cgroupfs --network none`.',
          'run --rm: `podman run --rm IMAGE true`. run + files: a `podman run` whose shell makes the files (30 dirs).',
          'diff / commit: `podman diff` / `podman commit` of that container; with a mount program podman diffs by',
          "mounting container and image and walking both (its naive diff); kernel overlayfs walks the upper dir only.",
        ],
      });
      m = {
        run: r.metric({ table: 'podman', name: 'podman run --rm', unit: 'ms', noCpu: true }),
        create: r.metric({ table: 'podman', name: `podman run making ${files} files`, unit: 'ms', noCpu: true }),
        diff: r.metric({ table: 'podman', name: 'podman diff', unit: 'ms', noCpu: true }),
        commit: r.metric({ table: 'podman', name: 'podman commit', unit: 'ms', noCpu: true }),
      };
      if (!fs.existsSync(PODMAN)) return; // run() records why
      const base = path.join(ctx.work, 'podman');
      fs.mkdirSync(base, { recursive: true });
      const extra: Record<string, string> = {};
      for (let i = 0; i < imageFiles; i++) extra[`usr/share/pkg${Math.floor(i / 100)}/file${i}`] = `${i}\n`;
      const tar = busyboxImageTar(base, 'base', extra);
      for (const t of ctx.targets) {
        if (!t.podman) continue;
        const dir = path.join(base, ctx.slug(t));
        const p = new Podman({
          dir,
          mountProgram: t.podman.mountProgram ?? undefined,
          env: { ...process.env, LAYERFS_RUN_DIR: path.join(dir, 'layerfs-run') },
          extraGlobal: t.podman.mountopt ? ['--storage-opt', `overlay.mountopt=${t.podman.mountopt}`] : [],
        });
        ctx.progress(`podman: importing the base image for ${t.name}`);
        p.importTar(tar, 'base:1');
        pods.set(t.name, p);
      }
    },
    async run(ctx, t: Target) {
      if (!t.podman) return;
      const p = pods.get(t.name);
      if (!p) throw new Error(`${PODMAN} missing`);
      const n = (runs.get(t.name) ?? 0) + 1;
      runs.set(t.name, n);
      const podman = (args: string[]): string => {
        const r = p.run(args, { timeoutMs: 600_000 });
        if (r.status !== 0) throw new Error(`podman ${args[0]} failed: ${r.stderr.trim().split('\n')[0]}`);
        return r.stdout;
      };
      ctx.sample(m.run, t, none, () => {
        const t0 = performance.now();
        podman(['run', '--rm', ...VM_RUN_FLAGS, 'base:1', 'true']);
        return performance.now() - t0;
      });
      const name = `many-${n}`; // not a hex prefix of some image id
      const made = ctx.sample(m.create, t, none, () => {
        const t0 = performance.now();
        podman(['run', ...VM_RUN_FLAGS, '--name', name, 'base:1', 'sh', '-c', script(files)]);
        return performance.now() - t0;
      });
      if (made === undefined) return;
      ctx.sample(m.diff, t, none, () => {
        const t0 = performance.now();
        const out = podman(['container', 'diff', name]);
        const ms = performance.now() - t0;
        const added = out.split('\n').filter((l) => l.startsWith('A /many/')).length;
        if (added !== files + 30) throw new Error(`podman diff listed ${added} new entries under /many, expected ${files + 30}`);
        return ms;
      });
      ctx.sample(m.commit, t, none, () => {
        const t0 = performance.now();
        podman(['commit', '--quiet', name, `bench-commit:${n}`]);
        return performance.now() - t0;
      });
    },
    finish(ctx) {
      for (const [name, p] of pods) {
        ctx.progress(`podman: removing the containers and images of ${name}`);
        p.clean();
        stopDaemons(path.join(p.dir, 'layerfs-run'));
      }
    },
  };
}
