/**
 * sys: the only place that touches syscalls Node lacks. `native` is the addon
 * wrapper (xattrs, mknod, renameat2, utimensat, fallocate, SEEK_DATA/HOLE,
 * copy_file_range, FICLONE, ioctl, mount/umount2); all functions throw FsError.
 */
export * from './native.js';
export * as native from './native.js';
