/**
 * Who we are to the kernel, for the choices that need real root: mount(2) of a FUSE filesystem
 * (CAP_SYS_ADMIN of the mount's user namespace), FUSE passthrough and `trusted.*` xattrs
 * (CAP_SYS_ADMIN in the initial user namespace).
 *
 *   'root'    euid 0 in the initial user namespace: everything, as before
 *   'userns'  euid 0 in a user namespace of its own (podman unshare, `unshare --user
 *             --map-root-user`): mount(2) of FUSE works when /dev/fuse opens; no passthrough, no trusted.*
 *   'user'    any other user: mounts through the setuid fusermount3; no passthrough, no trusted.*
 *
 * Reads /proc/self/uid_map once per process (a user namespace cannot be left).
 */
import { readFileSync } from 'node:fs';

export type Privilege = 'root' | 'userns' | 'user';

let initialNs: boolean | undefined;

/** Whether this process runs in the initial user namespace (its uid_map maps every id to itself). */
export function inInitialUserNs(): boolean {
  if (initialNs === undefined) {
    try {
      const lines = readFileSync('/proc/self/uid_map', 'utf8').trim().split('\n');
      const f = (lines[0] ?? '').trim().split(/\s+/);
      initialNs = lines.length === 1 && f[0] === '0' && f[1] === '0' && f[2] === '4294967295';
    } catch {
      initialNs = true; // no /proc: assume the plain case
    }
  }
  return initialNs;
}

/** This process's privilege (see the module comment). */
export function privilege(): Privilege {
  const euid = typeof process.geteuid === 'function' ? process.geteuid() : 0;
  return euid !== 0 ? 'user' : inInitialUserNs() ? 'root' : 'userns';
}

/** euid 0 in the initial user namespace. */
export function isRealRoot(): boolean {
  return privilege() === 'root';
}
