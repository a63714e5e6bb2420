/**
 * sys: the only place that touches syscalls Node lacks. `native` is the addon
 * wrapper (xattrs, mknod, renameat2, utimensat, fallocate, SEEK_DATA/HOLE,
 * copy_file_range, FICLONE, ioctl, mount/umount2, socketpair/recvFd); all functions throw FsError.
 * `privilege` says whether we are real root, namespace root or a normal user.
 */
export * from './native.js';
export * as native from './native.js';
export { privilege, isRealRoot, inInitialUserNs, type Privilege } from './privilege.js';
