/** `layerfs umount MNT [-l]`: unmount and wait for the mount's daemon to exit. */
import type { Command } from 'commander';
import { CliError } from '../errors.js';
import { stopMount } from '../../fuse/index.js';

export function register(program: Command): void {
  program
    .command('umount')
    .alias('unmount')
    .description('unmount a layerfs mount and stop its daemon')
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
