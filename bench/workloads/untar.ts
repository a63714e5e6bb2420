/**
 * Workload 7: `tar -xf` of the tree (a tarball made once from the native dir,
 * on the same disk) into an empty dir of a fresh mount; time until tar exits,
 * and with the `sync` after it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Tree } from '../datasets/tree.js';
import type { MetricDef } from '../results.js';
import { expectCount, lineCount, type Workload } from './workload.js';

export function untarWorkload(): Workload {
  let tree: Tree;
  let tarball = '';
  let entries = 0;
  let m: { tar: MetricDef; sync: MetricDef };
  return {
    id: 'untar',
    prepare(ctx, data) {
      tree = data.tree();
      tarball = data.file('tree.tar');
      const r0 = spawnSync('tar', ['-cf', tarball, '-C', tree.native, '.'], { encoding: 'utf8' });
      if (r0.status !== 0) throw new Error(`tar -cf: ${r0.stderr}`);
      entries = tree.files.length + tree.dirs;
      const r = ctx.results;
      r.table({
        id: 'untar',
        title: `7. Untar of the ${tree.files.length}-file tree into an empty dir of the mount`,
        ratio: 'time',
        notes: [
          `\`tar -xf TARBALL -C MNT/x\` (${(fs.statSync(tarball).size / 1e6).toFixed(1)} MB, made from the native dir, on the same disk), fresh mount;`,
          'time until tar exits, then with the `sync` after it. The extracted entries are counted afterwards (untimed).',
          'Nothing is deleted during a run: on this ext4 (online discard) creating files soon after deleting many was up to 25x slower.',
        ],
      });
      m = {
        tar: r.metric({ table: 'untar', name: 'tar -xf', unit: 'ms', ops: entries }),
        sync: r.metric({ table: 'untar', name: 'tar -xf + sync', unit: 'ms', ops: entries, noCpu: true }),
      };
    },
    async run(ctx, t) {
      const set = t.kind === 'native' ? { ...tree, native: path.join(ctx.work, 'run', 'native-untar') } : tree;
      if (t.kind === 'native') fs.mkdirSync(set.native, { recursive: true });
      try {
        await ctx.withMount(t, set, [m.tar, m.sync], (o) => {
          const dest = path.join(o.root, 'x');
          fs.mkdirSync(dest);
          ctx.timed('sync', []);
          const ms = ctx.sample(m.tar, t, o, () => ctx.timed('tar', ['-xf', tarball, '-C', dest]));
          if (ms !== undefined) ctx.sample(m.sync, t, o, () => ms + ctx.timed('sync', []));
          try {
            ctx.timed('find', [dest, '-mindepth', '1'], { out: (s) => expectCount('extracted entries', lineCount(s), entries) });
          } catch (e) {
            ctx.results.cell(m.tar, t.name).notes.add(e instanceof Error ? e.message : String(e));
          }
        });
      } finally {
        if (t.kind === 'native') ctx.discard(set.native);
      }
      ctx.timed('sync', []);
    },
  };
}
