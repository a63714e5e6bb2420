/**
 * `layerfs info [MNT] [--json]`: what `cat /run/layerfs/si_<id>/*` prints (branches `path=perm`,
 * branch ids, xi_path) for one mount or for every live mount; `--json` for programs.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../errors.js';
import { listMounts, siLines, type MountInfo } from '../../fuse/index.js';

function pick(mnt: string | undefined): MountInfo[] {
  const all = listMounts();
  if (mnt === undefined) return all;
  const abs = resolve(mnt);
  let real = abs;
  try {
    real = realpathSync(abs);
  } catch {
    /* dead or missing: compare the plain path */
  }
  const found = all.filter((m) => m.mountpoint === abs || m.mountpoint === real);
  if (found.length === 0) throw new CliError(`info ${mnt}`, `${abs} is not a layerfs mount point`);
  return found;
}

export function register(program: Command): void {
  program
    .command('info')
    .description('show the branches of a mount (or of all mounts), like /sys/fs/aufs/si_*')
    .argument('[mnt]', 'mount point')
    .option('--json', 'machine-readable output')
    .action((mnt: string | undefined, flags: { json?: boolean }) => {
      const mounts = pick(mnt);
      if (flags.json) {
        process.stdout.write(JSON.stringify(mnt === undefined ? mounts : mounts[0], null, 2) + '\n');
        return;
      }
      const blocks = mounts.map((m) => siLines(m).join('\n') + '\n');
      if (mnt === undefined && mounts.length > 1) {
        process.stdout.write(mounts.map((m, i) => `si_${m.id} ${m.mountpoint}\n${blocks[i]}`).join('\n'));
      } else process.stdout.write(blocks.join(''));
    });
}
