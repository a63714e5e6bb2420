/**
 * `layerfs mount [SOURCE] MNT -o OPTIONS [-f] [-d]`
 *
 * OPTIONS: AUFS `dirs=A=rw:B=ro:...` (or `br=`/`br:`), or overlay `lowerdir=..,upperdir=..,workdir=..`,
 * plus our options (whiteout=, dirrename=, xino=), mount flags (ro, rw, nosuid, nodev, noexec,
 * noatime, ...) and FUSE ones (allow_other, default_permissions: on for root; noallow_other,
 * nodefault_permissions turn them off). fstab/mount(8) noise (defaults, auto, _netdev, x-*, ...)
 * is accepted and ignored. Returns once the mount is live; a daemon keeps serving it.
 */
import type { Command } from 'commander';
import { CliError } from '../errors.js';
import { startMount, startSession } from '../../fuse/index.js';
import { unmountOnSignals } from '../../fuse/daemon-signals.js';

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

interface MountFlags {
  options: string[];
  foreground?: boolean;
  debug?: boolean;
}

export function register(program: Command): void {
  program
    .command('mount')
    .description('mount a union at MNT through FUSE (also: mount -t fuse.layerfs -o OPTIONS none MNT)')
    .argument('<source-or-mnt>', 'SOURCE (shown in the mount table) when MNT follows, else MNT')
    .argument('[mnt]', 'mount point')
    .option('-o, --options <options>', 'mount options, comma-separated (repeatable)', collect, [])
    .option('-f, --foreground', 'serve in the foreground until unmounted')
    .option('-d, --debug', 'trace every request (opcode, nodeid, result) to stderr; implies -f')
    .action(async (a: string, b: string | undefined, flags: MountFlags) => {
      const mountpoint = b ?? a;
      const source = b === undefined ? undefined : a;
      const options = flags.options.join(',');
      const what = `mount ${mountpoint}`;
      if (!options.trim()) throw new CliError(what, 'no branches given (use -o dirs=A=rw:B=ro or -o lowerdir=...,upperdir=...,workdir=...)', 2);
      if (flags.foreground || flags.debug) {
        let s;
        try {
          s = await startSession({ options, mountpoint, debug: flags.debug ?? false, ...(source !== undefined ? { source } : {}) });
        } catch (e) {
          throw new CliError(what, e);
        }
        unmountOnSignals(s);
        const r = await s.done;
        if (r.error) throw new CliError(what, `serving stopped: ${r.error}`);
        return;
      }
      try {
        await startMount({ options, mountpoint, debug: false, ...(source !== undefined ? { source } : {}) });
      } catch (e) {
        throw new CliError(what, e);
      }
    });
}
