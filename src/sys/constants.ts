/**
 * File type bits of st_mode (S_IF*), as <sys/stat.h> defines them on Linux. The one copy: engine,
 * api, store and the on-disk format read them from here.
 */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;
