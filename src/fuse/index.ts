/**
 * The FUSE transport's programmatic API: startSession() serves one mount from this process (the
 * resident daemon, src/daemon, runs one per mount; `mount -f` runs one in the foreground);
 * listMounts() gives the live mounts from the runtime dir.
 */

export { listMounts, findMount, runDir, siLines, processAlive, type MountInfo, type BranchInfo } from './runtime-dir.js';
export { startSession, type Session, type SessionParams } from './session.js';
export { splitOptions, mountTable, isMountPoint, FSTYPE } from './mount.js';
export { MountError } from './mount-error.js';
