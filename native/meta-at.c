/*
 * Metadata reads relative to a directory fd, for the branch's hottest read paths (lookups,
 * listings, `ls -l`'s xattr questions): thin syscalls, every decision in TypeScript.
 *
 *   getxattrAt(dirfd, path, name)  getxattrat(2) (Linux 6.13), never following the last name ('': the
 *                                  directory itself):
 *                                  a Buffer, or a negative errno (-ENOSYS: the kernel lacks it)
 *   listxattrAt(dirfd, path)       listxattrat(2) likewise: an array of names, or a negative errno
 *   listDirAt(dirfd, path, resolve) openat2(dirfd, path, O_RDONLY|O_DIRECTORY|O_NOFOLLOW, resolve)
 *                                  then getdents64 on that fd: [names, Uint8Array of d_type], `.`
 *                                  and `..` left out, in directory order; or a negative errno
 *
 * Without these, a branch asked the same through `/proc/self/fd/N/<rel>` (a magic-link walk and
 * a path string per call) and listed a directory by reopening it through /proc for libuv's
 * scandir (which also sorts and mallocs each entry).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "napi-args.h"
#include "xattr-read.h"

#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif

/* struct xattr_args of linux/xattr.h (6.13), defined here: the installed headers may be older. */
struct lfs_xattr_args {
  uint64_t value;
  uint32_t size;
  uint32_t flags;
};

/* '' is the directory itself, named "." (AT_EMPTY_PATH would take the fd as a file, which an
 * O_PATH fd is not: EBADF); the last name is never followed. */
static const char *at_path(const char *path) {
  return path[0] == 0 ? "." : path;
}

struct xat {
  int dirfd;
  const char *path;
  const char *name;
};

static ssize_t x_getat(const void *ctx, void *buf, size_t size) {
  const struct xat *x = ctx;
  struct lfs_xattr_args a;
  memset(&a, 0, sizeof a);
  a.value = (uint64_t)(uintptr_t)buf;
  a.size = (uint32_t)size;
  return syscall(SYS_getxattrat, x->dirfd, at_path(x->path), AT_SYMLINK_NOFOLLOW, x->name, &a, sizeof a);
}

static ssize_t x_listat(const void *ctx, void *buf, size_t size) {
  const struct xat *x = ctx;
  return syscall(SYS_listxattrat, x->dirfd, at_path(x->path), AT_SYMLINK_NOFOLLOW, buf, size);
}

static napi_value n_getxattr_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int32_t dirfd;
  if (!get_i32(env, argv[0], &dirfd, "dirfd must be a number")) return NULL;
  char *path = get_str(env, argv[1], "path must be a string or Buffer without NUL bytes");
  if (path == NULL) return NULL;
  char *name = get_str(env, argv[2], "name must be a string");
  if (name == NULL) {
    free(path);
    return NULL;
  }
  struct xat x = {dirfd, path, name};
  napi_value result = xattr_value(env, x_getat, &x);
  free(name);
  free(path);
  return result;
}

static napi_value n_listxattr_at(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t dirfd;
  if (!get_i32(env, argv[0], &dirfd, "dirfd must be a number")) return NULL;
  char *path = get_str(env, argv[1], "path must be a string or Buffer without NUL bytes");
  if (path == NULL) return NULL;
  struct xat x = {dirfd, path, NULL};
  napi_value arr = xattr_names(env, x_listat, &x);
  free(path);
  return arr;
}

struct lfs_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

static napi_value n_list_dir_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int32_t dirfd;
  int64_t resolve;
  if (!get_i32(env, argv[0], &dirfd, "dirfd must be a number")) return NULL;
  if (!get_i64(env, argv[2], &resolve, "resolve must be a number")) return NULL;
  char *path = get_str(env, argv[1], "path must be a string or Buffer without NUL bytes");
  if (path == NULL) return NULL;
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = (uint64_t)resolve;
  long fd;
  do fd = syscall(SYS_openat2, dirfd, path[0] == 0 ? "." : path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN && (resolve & RESOLVE_CACHED) == 0); /* a rename raced: retry */
  int err = errno;
  free(path);
  if (fd < 0) return fail(env, err);

  size_t cap = 32768;
  char *buf = malloc(cap);
  size_t tcap = 256, count = 0;
  unsigned char *types = malloc(tcap);
  napi_value names;
  napi_create_array(env, &names);
  if (buf == NULL || types == NULL) {
    err = ENOMEM;
    goto out;
  }
  for (;;) {
    long n = syscall(SYS_getdents64, (int)fd, buf, cap);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      goto out;
    }
    if (n == 0) break;
    for (long p = 0; p < n;) {
      struct lfs_dirent64 *d = (struct lfs_dirent64 *)(buf + p);
      p += d->d_reclen;
      const char *nm = d->d_name;
      if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) continue;
      if (count == tcap) {
        unsigned char *more = realloc(types, tcap * 2);
        if (more == NULL) {
          err = ENOMEM;
          goto out;
        }
        types = more;
        tcap *= 2;
      }
      napi_value s;
      napi_create_string_utf8(env, nm, strlen(nm), &s);
      napi_set_element(env, names, (uint32_t)count, s);
      types[count++] = d->d_type;
    }
  }
  err = 0;
out:
  close((int)fd);
  free(buf);
  if (err != 0) {
    free(types);
    return fail(env, err);
  }
  napi_value ab, ta, pair;
  void *data = NULL;
  napi_create_arraybuffer(env, count, &data, &ab);
  if (count > 0) memcpy(data, types, count);
  free(types);
  napi_create_typedarray(env, napi_uint8_array, count, ab, 0, &ta);
  napi_create_array_with_length(env, 2, &pair);
  napi_set_element(env, pair, 0, names);
  napi_set_element(env, pair, 1, ta);
  return pair;
}

void register_meta_at(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"getxattrAt", NULL, n_getxattr_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listxattrAt", NULL, n_listxattr_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listDirAt", NULL, n_list_dir_at, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}
