/**
 * podman run under kill -9 of the serving daemon: podman (root, its own storage) with layerfs as its
 * overlay mount program (own LAYERFS_RUN_DIR), a busybox base image made here; `podman run -d` of a
 * container that writes files for a few seconds (small files, a big one, a copy of /bin, renames,
 * deletions of image files), the daemon kill -9'd from the moment the container runs until it exits.
 * Its exit code must be 0 and its files (read back with `podman export`) those of the run without kills.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from '../helpers/mount.js';
import { Podman, VM_RUN_FLAGS, busyboxImageTar, readTarTree, treeLines, unmountUnder } from '../podman/podman.js';
import type { Union } from './kill-loop.js';
import { twoRuns } from './two-runs.js';

const SCRIPT = `set -e
mkdir -p /out/small
for i in $(seq 1 400); do echo "file $i $(seq 1 $i | tail -c 200)" > /out/small/f$i; done
seq 1 400000 > /out/big
cp -a /bin /out/bin-copy
for i in $(seq 1 100); do mv /out/small/f$i /out/small/g$i; done
rm -f /data/gone /bin/vi
echo appended >> /data/keep
cat /out/small/g1 /out/big | md5sum > /out/sum
sync`;

let reference: string[] | undefined;
const podmans = new Map<string, Podman>();

twoRuns(
  {
    name: 'podman',
    fill() {},
    startsLoop: true,
    extraMounts: (u: Union) => unmountUnder(u.root),
    async run(u, ctx) {
      const p = new Podman({ dir: join(u.root, 'podman'), mountProgram: BIN, env: u.env });
      podmans.set(u.root, p);
      mkdirSync(join(u.root, 'img'));
      const tar = busyboxImageTar(join(u.root, 'img'), 'base', { 'data/keep': 'keep\n', 'data/gone': 'gone\n', 'etc/hosts': '', 'etc/hostname': '', 'etc/resolv.conf': '' });
      try {
        p.importTar(tar, 'base:1');
        p.ok(['run', '-d', ...VM_RUN_FLAGS, '--name', 'w', 'base:1', 'sh', '-c', SCRIPT]);
        const merged = p.ok(['inspect', '--format', '{{.GraphDriver.Data.MergedDir}}', 'w']).trim();
        ctx.startLoop(merged);
        const wait = p.run(['wait', 'w'], { timeoutMs: 120_000 });
        if (wait.status !== 0) throw new Error(`podman wait w failed (${wait.status}): ${wait.stderr.trim()}`);
        if (wait.stdout.trim() !== '0') {
          const logs = p.run(['logs', 'w']);
          throw new Error(`the container exited ${wait.stdout.trim()}: ${(logs.stdout + logs.stderr).trim().split('\n').slice(-5).join(' | ')}`);
        }
        const exp = join(u.root, 'w.tar');
        p.ok(['export', '-o', exp, 'w']);
        const tree = treeLines(await readTarTree(exp, true)).filter((l) => l.startsWith('/out') || l.startsWith('/data') || l.startsWith('/bin/vi'));
        for (const want of ['/out/big ', '/out/small/g100 ', '/out/small/f400 ', '/out/bin-copy/busybox ', '/out/sum ', '/data/keep ']) {
          if (!tree.some((l) => l.startsWith(want))) throw new Error(`the container's file ${want.trim()} is missing (podman export)`);
        }
        if (tree.some((l) => l.startsWith('/data/gone ') || l.startsWith('/bin/vi '))) throw new Error('a file the container removed is still there');
        if (!ctx.kill) reference = tree;
        else if (reference === undefined) throw new Error('no reference run');
        else {
          const missing = reference.filter((l) => !tree.includes(l));
          const extra = tree.filter((l) => !reference!.includes(l));
          if (missing.length || extra.length) throw new Error(`the container's files differ from the run without kills: missing ${missing.slice(0, 5).join(', ')}; unexpected ${extra.slice(0, 5).join(', ')}`);
        }
      } finally {
        p.clean();
      }
    },
  },
  240_000,
);
