/**
 * `layerfs mount [SOURCE] MNT -o OPTIONS [-f] [-d]`
 *
 * OPTIONS: AUFS `dirs=A=rw:B=ro:...` (or `br=`/`br:`), or overlay `lowerdir=..,upperdir=..,workdir=..`,
 * plus our options (whiteout=, dirrename=, xino=), mount flags (ro, rw, nosuid, nodev, noexec,
 * noatime, ...) and FUSE ones (allow_other, default_permissions: on for root; noallow_other,
 * nodefault_permissions turn them off). fstab/mount(8) noise (defaults, auto, _netdev, x-*, ...)
 * is accepted and ignored. Returns once the mount is live; the resident daemon (src/daemon) serves it.
 */
import type { Command } from 'commander';
import { CliError } from '../errors.js';
import { startSession } from '../../fuse/index.js';
import { startMount } from '../../daemon/index.js';
import { unmountOnSignals } from '../../fuse/daemon-signals.js';
import { unknownOptionsWarning } from '../../fuse/option-warnings.js';
import { isRemount } from '../../daemon/remount.js';

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

interface MountFlags {
  options: string[];
  foreground?: boolean;
  debug?: boolean;
}

const MOUNT_OPTIONS_HELP = `
Branches (one of):
  dirs=A=rw:B=ro:C         AUFS branches, topmost first (also br=, br:); perms rw, ro, rr, +wh;
                           default: the first rw when writable, the rest ro
  lowerdir=L1:L2,upperdir=U,workdir=W
                           overlay form; leftmost lower is topmost; no upperdir = read-only
Union options:
  whiteout=aufs|overlay    whiteout format written (both are read); default aufs with dirs=,
                           overlay with lowerdir= (char 0/0 whiteouts, trusted.overlay.opaque=y
                           dirs, as overlayfs and fuse-overlayfs write)
  dirrename=redirect|exdev rename of a dir that exists below: copy it (default) or EXDEV as AUFS
                           (also redirect_dir=on|off, xdev)
  xino=PATH                persistent inode table (default: hidden file in the rw branch)
Several writable branches (dirs=/d1=rw:/d2=rw:/base=ro; the rw ones topmost), as AUFS:
  create=tdp|rr|mfs[:SEC]|mfsrr:LOW|pmfs[:SEC]|pmfsrr:LOW
                           where a new file/dir/link goes: tdp (default) topmost rw branch with
                           the parent; rr round robin; mfs most free space (kept SEC s, default
                           30); mfsrr mfs, rr under LOW bytes free (k/m/g); pmfs mfs among the
                           rw branches with the parent; ENOSPC/EDQUOT/EROFS moves on to the next
                           branch (not with tdp)
  cpup=tdp|bup|bu          where a copy-up of a read-only file goes: tdp (default) topmost rw
                           branch with the parent; bup nearest rw branch above it with the
                           parent; bu nearest rw branch above it (falls over on ENOSPC)
  volatile                 no fsync of copied-up data before it gets its name (faster; not
                           crash-safe, as overlayfs volatile)
  userxattr, nouserxattr   private markers as user.* xattrs (user.overlay.opaque, ...), as
                           overlayfs userxattr; default on unless real root (trusted.* needs it)
  udba=none|reval|notify   changes made directly in a branch behind the mount (AUFS's names):
                           none (default) not looked for; reval: re-checked on access (1 s
                           kernel timeouts, dir stamps checked at most every 0.5 s); notify:
                           inotify watches on the branch dirs the kernel knows, each change
                           shown at once, long timeouts kept (past fs.inotify.max_user_watches
                           the rest as reval); layerfs info shows the mode and watches
fuse-overlayfs options (what podman and Docker pass a mount program):
  fsync=0                  same as volatile
  uidmapping=A:B:N[:...], gidmapping=A:B:N[:...]
                           ids A..A+N-1 as stored in the branches show as B..B+N-1 (others as
                           65534); chown and new files store them back unshifted
  squash_to_root, squash_to_uid=N, squash_to_gid=N
                           every file shows this owner; chown never fails
  xattr_permissions=1|2    chown/chmod recorded in security.|user.containers.override_stat
  static_nlink             directories show link count 1
  noacl                    no POSIX ACLs from the kernel (default: enforced and cached by the
                           kernel with default_permissions; new entries get the parent's
                           default ACL); mode bits only, the kernel applies the umask
  context=...              accepted (no SELinux labels on FUSE); unknown options are
                           warned about on one line and ignored
FUSE options:
  allow_other, default_permissions   on by default for root (noallow_other,
                           nodefault_permissions turn them off); without root allow_other
                           needs user_allow_other in /etc/fuse.conf (mounts go through
                           fusermount3, see README "Rootless")
  entry_timeout=S, attr_timeout=S, negative_timeout=S
                           kernel cache timeouts in seconds (default 3600, 1 with udba=reval);
                           with udba=none changes made to the branches behind the mount's back
                           show after these at the earliest; udba=notify keeps them long
  spin=US                  after each reply, poll /dev/fuse for US microseconds before
                           sleeping (default 50; 0 = blocking reads): a client asking back
                           to back is served without a wake-up; an idle mount uses no CPU
  uring, nouring           carry requests over FUSE-over-io_uring (Linux 6.14+, fuse module
                           parameter enable_uring=Y) instead of /dev/fuse read/write; falls
                           back to /dev/fuse where the kernel lacks it (layerfs info says
                           which serves the mount). Default nouring ($LAYERFS_URING=1 flips it)
  passthrough=on|off       the kernel reads/writes regular files straight from the branch
                           file (default on, Linux 6.9+, root daemon); off: every read and
                           write goes through the daemon
  supervise=on|off         the mount survives a crash of the daemon (default on, Linux 6.9+:
                           the supervisor holds /dev/fuse and starts a new daemon; files
                           open in passthrough mode keep their backing files); off: a daemon
                           crash ends the mount, as before. LAYERFS_SUPERVISOR=0 starts the daemon without a supervisor
Mount flags ro, rw, nosuid, nodev, noexec, noatime... and fstab words are accepted.
Changing the branches of a live mount (-o remount,CHANGE[,CHANGE...]; in order, all or nothing;
also by mount -o remount,... MNT):
  add:INDEX:DIR[=PERM]     DIR becomes branch INDEX (0 = topmost); ins:INDEX:DIR[=PERM] the same
  append:DIR[=PERM]        DIR becomes the bottom branch;  prepend:DIR[=PERM]: the topmost
  del:DIR                  the branch DIR leaves (EBUSY while files are open on it)
  mod:DIR=PERM             the branch gets PERM (rw, ro, rr[+ATTR]); PERM defaults to ro
Environment: a background mount is sent to the resident daemon by a small C client (no Node
start; Node when no daemon runs yet): LAYERFS_NO_CLIENT=1 always uses Node, LAYERFS_CLIENT_TRACE=1
says which way was taken, LAYERFS_MOUNT_TIMING=1 logs each mount's phases to the daemon's log.

Examples:
  layerfs mount -o dirs=./container-layer:./image-layer4:./image-layer3 ./mnt
  layerfs mount -o lowerdir=/l1:/l2,upperdir=/u,workdir=/w /mnt
  layerfs mount -o dirs=/srv/rw=rw:/srv/base=ro,udba=notify /mnt   edits in /srv/base show at once
  mount -t fuse.layerfs -o dirs=/rw=rw:/ro=ro none /mnt
  layerfs mount -o dirs=/disk1=rw:/disk2=rw:/media=ro,create=mfs /pool   pool two disks
  layerfs mount -o lowerdir=/ext/usr:/usr /usr     MNT may be a branch itself (or its parent):
                                                   branch roots are held open from before the mount
  layerfs mount -o remount,add:1:/srv/patch ./mnt  a new branch below the rw one, seen at once
  mount -o remount,prepend:/srv/up2=rw,mod:/srv/up=ro /mnt
  layerfs mount -o remount,del:/srv/patch ./mnt
`;

export function register(program: Command): void {
  program
    .command('mount')
    .description('mount a union at MNT through FUSE (also: mount -t fuse.layerfs -o OPTIONS none MNT)')
    .argument('<source-or-mnt>', 'SOURCE (shown in the mount table) when MNT follows, else MNT')
    .argument('[mnt]', 'mount point')
    .option('-o, --options <options>', 'mount options, comma-separated (repeatable)', collect, [])
    .option('-f, --foreground', 'serve in the foreground until unmounted')
    .option('-d, --debug', 'trace every request (opcode, nodeid, result) to stderr; implies -f')
    .addHelpText('after', MOUNT_OPTIONS_HELP)
    .action(async (a: string, b: string | undefined, flags: MountFlags) => {
      const mountpoint = b ?? a;
      const source = b === undefined ? undefined : a;
      const options = flags.options.join(',');
      const what = `mount ${mountpoint}`;
      if (!options.trim()) throw new CliError(what, 'no branches given (use -o dirs=A=rw:B=ro or -o lowerdir=...,upperdir=...,workdir=...)', 2);
      // a remount changes the branches of the mount the daemon serves at MNT: nothing to serve here
      const remounting = isRemount(options);
      const warning = remounting ? undefined : unknownOptionsWarning(options);
      if (warning) process.stderr.write(warning + '\n');
      if ((flags.foreground || flags.debug) && !remounting) {
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
        await startMount({ options, mountpoint, ...(source !== undefined ? { source } : {}) });
      } catch (e) {
        throw new CliError(what, e);
      }
    });
}
