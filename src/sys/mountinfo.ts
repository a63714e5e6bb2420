/**
 * The mount table of this process's mount namespace, from /proc/self/mountinfo: the one parser,
 * and `isMountPoint` on top of it.
 */
import { readFileSync, realpathSync } from 'node:fs';

export interface MountEntry {
  /** Where it is mounted (absolute, octal escapes decoded). */
  mountpoint: string;
  /** Filesystem type, e.g. `fuse.layerfs`, `overlay`. */
  fstype: string;
  /** The mount source (decoded). */
  source: string;
}

/** `\040` -> space, as mountinfo escapes space, tab, newline and backslash. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parse mountinfo text: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 5 || sep < 0 || f.length < sep + 3) continue;
    out.push({ mountpoint: unescape(f[4]!), fstype: f[sep + 1]!, source: unescape(f[sep + 2]!) });
  }
  return out;
}

/** The mounts visible to this process now (throws when /proc/self/mountinfo cannot be read). */
export function mountTable(): MountEntry[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/**
 * Whether something is mounted on `dir` (symlinks resolved first). False when `dir` does not
 * exist or the mount table cannot be read.
 */
export function isMountPoint(dir: string): boolean {
  try {
    const real = realpathSync(dir);
    return mountTable().some((m) => m.mountpoint === real);
  } catch {
    return false;
  }
}
