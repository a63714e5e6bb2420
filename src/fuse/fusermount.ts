/**
 * Mounting as a normal user, through the setuid `fusermount3` of libfuse (Debian fuse3): no setuid
 * code of ours. Its protocol, as libfuse's own library speaks it:
 *   - we make a unix socketpair and start `fusermount3 -o OPTS -- MNT` with one end as its fd 3 and
 *     `_FUSE_COMMFD=3` in its environment;
 *   - it checks what a normal user may do (owns MNT, may write it; options from its allow list;
 *     allow_other only with `user_allow_other` in /etc/fuse.conf), opens /dev/fuse, mounts with
 *     `fd=N,rootmode=...,user_id=UID,group_id=GID` itself, sends the /dev/fuse fd back over the socket
 *     (one byte, SCM_RIGHTS) and exits 0; or prints why not on stderr and exits 1.
 * Unmounting: `fusermount3 -u [-z] -- MNT` (it checks the mount is ours: user_id=UID).
 */
import { spawn } from 'node:child_process';
import { closeSync, readFileSync, statSync } from 'node:fs';
import { MountError } from './mount-error.js';

/** $LAYERFS_FUSERMOUNT, else `fusermount3` from PATH. */
function program(): string {
  return process.env.LAYERFS_FUSERMOUNT || 'fusermount3';
}

/** Whether /etc/fuse.conf has a `user_allow_other` line (what fusermount3 asks for allow_other). */
export function userAllowOther(conf = '/etc/fuse.conf'): boolean {
  try {
    return readFileSync(conf, 'utf8')
      .split('\n')
      .some((l) => l.trim() === 'user_allow_other');
  } catch {
    return false;
  }
}

/** A value inside fusermount3's -o list: `\` escapes `,` and itself. */
function escapeValue(v: string): string {
  return v.replace(/([\\,])/g, '\\$1');
}

export interface FusermountOptions {
  /** VFS flag names (ro, nosuid, noexec, noatime, ...). */
  flags: string[];
  allowOther: boolean;
  defaultPermissions: boolean;
  /** What /proc/self/mountinfo shows as the source. */
  source: string;
  /** The type shows as `fuse.SUBTYPE`. */
  subtype: string;
}

/** The -o list for fusermount3. */
export function fusermountOptionString(o: FusermountOptions): string {
  const out = [...o.flags];
  if (o.allowOther) out.push('allow_other');
  if (o.defaultPermissions) out.push('default_permissions');
  out.push(`fsname=${escapeValue(o.source)}`, `subtype=${escapeValue(o.subtype)}`);
  return out.join(',');
}

interface Ran {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function run(args: string[], extraFd?: number): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const prog = program();
    const child = spawn(prog, args, {
      stdio: extraFd === undefined ? ['ignore', 'ignore', 'pipe'] : ['ignore', 'ignore', 'pipe', extraFd],
      env: extraFd === undefined ? process.env : { ...process.env, _FUSE_COMMFD: '3' },
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    child.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') reject(new MountError('ENOTSUP', `mounting without root needs ${prog} (Debian/Ubuntu package fuse3), not found on PATH`));
      else reject(new MountError(e.code ?? 'EIO', `cannot run ${prog}: ${e.message}`));
    });
    child.once('close', (status, signal) => resolve({ status, signal, stderr }));
  });
}

/** The errno a fusermount3 refusal stands for (its only output is a line of text). */
function refusalCode(text: string): string {
  if (/not owned by|no write access|only allowed if|is privileged|[Pp]ermission denied|Operation not permitted|unsafe option/.test(text)) return 'EPERM';
  if (/[Nn]o such file or directory/.test(text)) return 'ENOENT';
  if (/[Bb]usy/.test(text)) return 'EBUSY';
  if (/too many FUSE filesystems/.test(text)) return 'EMFILE';
  if (/not a directory/i.test(text)) return 'ENOTDIR';
  return 'EIO';
}

/** fusermount3 opens /dev/fuse as the calling user: a mode-0600 node (no udev rule) stops it. */
function devFuseHint(line: string): string {
  if (!/\/dev\/fuse/.test(line) || !/denied|not permitted/.test(line)) return '';
  try {
    const mode = statSync('/dev/fuse').mode & 0o777;
    if ((mode & 0o006) !== 0o006) return ` (/dev/fuse is mode 0${mode.toString(8)}; normal users need 0666, the usual udev default: chmod 0666 /dev/fuse)`;
  } catch {
    /* no /dev/fuse: the line says so */
  }
  return '';
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
}

/** Mount at `mountpoint` (absolute) through fusermount3; the served /dev/fuse fd. */
export async function fusermountMount(mountpoint: string, o: FusermountOptions): Promise<number> {
  if (o.allowOther && !userAllowOther()) {
    throw new MountError('EPERM', "allow_other needs a line 'user_allow_other' in /etc/fuse.conf when mounting without root (fusermount3 refuses it otherwise); drop allow_other or ask the admin to add it");
  }
  const { socketpair, recvFd } = await import('../sys/native.js');
  const [mine, theirs] = socketpair();
  let theirsOpen = true;
  try {
    const ranP = run(['-o', fusermountOptionString(o), '--', mountpoint], theirs);
    // the child has its copy (as fd 3): ours must go, so a fusermount3 that dies unsent reads as EOF
    closeSync(theirs);
    theirsOpen = false;
    const ran = await ranP;
    if (ran.status !== 0) {
      const line = firstLine(ran.stderr) || (ran.signal ? `killed by ${ran.signal}` : `exit status ${ran.status}`);
      throw new MountError(refusalCode(line), `${program()} refused the mount: ${line}${devFuseHint(line)}`);
    }
    try {
      return recvFd(mine);
    } catch {
      throw new MountError('EIO', `${program()} mounted ${mountpoint} but sent no /dev/fuse fd (too old or not libfuse's?)`);
    }
  } finally {
    if (theirsOpen) closeSync(theirs);
    closeSync(mine);
  }
}

/** `fusermount3 -u [-z] -- MNT`. */
export async function fusermountUnmount(mountpoint: string, lazy: boolean): Promise<void> {
  const ran = await run(['-u', ...(lazy ? ['-z'] : []), '--', mountpoint]);
  if (ran.status !== 0) {
    const line = firstLine(ran.stderr) || `exit status ${ran.status}`;
    throw new MountError(refusalCode(line), `${program()} -u ${mountpoint}: ${line}`);
  }
}
