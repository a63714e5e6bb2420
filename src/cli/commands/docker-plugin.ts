/**
 * `layerfs docker-plugin [--socket PATH] [--root DIR]`: serves Docker's GraphDriver plugin
 * protocol in the foreground until SIGINT/SIGTERM (then unmounts what it mounted).
 */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startDockerPlugin } from '../../integrations/docker-plugin.js';
import { fuseMounter } from '../../integrations/fuse-mounter.js';
import { CliError } from '../errors.js';
import { untilStopped } from '../until-stopped.js';

export const DEFAULT_SOCKET = '/run/docker/plugins/layerfs.sock';

const HELP = `
dockerd finds the plugin by its socket name: /run/docker/plugins/NAME.sock, or a file
/etc/docker/plugins/NAME.spec holding unix:///path/to/socket. Then:
  dockerd --experimental --storage-driver=layerfs
Layers live under --root, else under the Home dockerd passes (<data-root>/layerfs), in the
store's aufs layout (diff/, layers/, mnt/); containers are mounted at mnt/<id>.

Example:
  layerfs docker-plugin &
  dockerd --experimental --storage-driver=layerfs
`;

export function register(program: Command): void {
  program
    .command('docker-plugin')
    .description("serve Docker's GraphDriver plugin protocol (dockerd --experimental --storage-driver=layerfs)")
    .option('--socket <path>', 'unix socket to listen on', DEFAULT_SOCKET)
    .option('--root <dir>', 'layer directory (default: the Home dockerd passes to Init)')
    .addHelpText('after', HELP)
    .action(async (flags: { socket: string; root?: string }) => {
      const socket = path.resolve(flags.socket);
      let plugin;
      try {
        fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o755 });
        plugin = await startDockerPlugin({ socket, mounter: fuseMounter, ...(flags.root !== undefined ? { root: path.resolve(flags.root) } : {}) });
      } catch (e) {
        throw new CliError(`docker-plugin ${socket}`, e);
      }
      process.stderr.write(`layerfs docker-plugin: listening on ${socket}\n`);
      await untilStopped();
      await plugin.close();
    });
}
