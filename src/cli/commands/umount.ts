/** `layerfs umount MNT [-l]`: unmount and wait until the daemon has freed the mount. */
import type { Command } from 'commander';
import { CliError } from '../errors.js';
import { stopMount } from '../../daemon/index.js';

export function register(program: Command): void {
  program
    .command('umount')
    .alias('unmount')
    .description('unmount a layerfs mount (the daemon frees it)')
    .argument('<mnt>', 'mount point')
    .option('-l, --lazy', 'detach now even if busy (the daemon exits when the last user leaves)')
    .action(async (mnt: string, flags: { lazy?: boolean }) => {
      try {
        await stopMount(mnt, { lazy: flags.lazy ?? false });
      } catch (e) {
        throw new CliError(`umount ${mnt}`, e);
      }
    });
}
