/**
 * The FUSE transport's programmatic API: startSession() serves one mount from this process (the
 * resident daemon, src/daemon, runs one per mount; `mount -f` runs one in the foreground);
 * listMounts() gives the live mounts from the runtime dir.
 */

export { listMounts, findMount, runDir, siLines, type MountInfo, type BranchInfo } from './runtime-dir.js';
export { processAlive } from '../sys/process.js';
export { mountTable, isMountPoint } from '../sys/mountinfo.js';
export { startSession, type Session, type SessionParams } from './session.js';
export { splitOptions, FSTYPE } from './mount.js';
export { MountError } from './mount-error.js';
