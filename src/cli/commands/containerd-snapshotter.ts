/**
 * `layerfs containerd-snapshotter [--address PATH] [--root DIR]`: serves containerd's Snapshots
 * gRPC service in the foreground until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import * as path from 'node:path';
import { startContainerdSnapshotter } from '../../integrations/containerd-snapshotter.js';
import { CliError } from '../errors.js';
import { untilStopped } from '../until-stopped.js';

export const DEFAULT_ADDRESS = '/run/layerfs/containerd-snapshotter.sock';
export const DEFAULT_ROOT = '/var/lib/layerfs/containerd';

const HELP = `
containerd (1.6 or later) uses it as a proxy snapshotter; in its config.toml:
  [proxy_plugins.layerfs]
    type = "snapshot"
    address = "${DEFAULT_ADDRESS}"
Then:
  ctr images pull --snapshotter layerfs docker.io/library/busybox:latest
  ctr run --rm --snapshotter layerfs docker.io/library/busybox:latest c1 sh
Each snapshot is a layer under --root in the store's aufs layout (diff/<id>, layers/<id>), with
snapshots.json naming them. Containers get a fuse3.layerfs mount (one layer alone: a bind
mount), which containerd mounts through mount.fuse3 (Debian: fuse3) running \`layerfs\`: the
layerfs on containerd's PATH must be this one.
`;

export function register(program: Command): void {
  program
    .command('containerd-snapshotter')
    .description("serve containerd's Snapshots gRPC service (a proxy_plugins snapshotter)")
    .option('--address <path>', 'unix socket to listen on', DEFAULT_ADDRESS)
    .option('--root <dir>', 'where the snapshots live', DEFAULT_ROOT)
    .addHelpText('after', HELP)
    .action(async (flags: { address: string; root: string }) => {
      const address = path.resolve(flags.address);
      let s;
      try {
        s = await startContainerdSnapshotter({ address, root: path.resolve(flags.root) });
      } catch (e) {
        throw new CliError(`containerd-snapshotter ${address}`, e);
      }
      process.stderr.write(`layerfs containerd-snapshotter: listening on ${address}\n`);
      await untilStopped();
      await s.close();
    });
}
