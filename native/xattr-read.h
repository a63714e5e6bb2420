/*
 * Reading an xattr value or name list whose size is not known in advance, for every flavour of the
 * call (l*, f*, *at): one loop, used by layerfs.c and meta-at.c.
 */
#ifndef LAYERFS_XATTR_READ_H
#define LAYERFS_XATTR_READ_H
#include "napi-args.h"

/* One read: `buf` NULL asks the size, as getxattr(2)/listxattr(2) do. -1 with errno on failure. */
typedef ssize_t (*xattr_read_fn)(const void *ctx, void *buf, size_t size);

/*
 * Reads into `small`, or into a heap buffer when the answer does not fit (the size is asked and the
 * read tried again; it can change in between, so up to 10 reads). Returns the length with *out
 * the buffer holding it (free it when it is not `small`), or -errno (*out then `small`).
 */
static inline ssize_t xattr_read(xattr_read_fn rd, const void *ctx, char *small, size_t small_cap, char **out) {
  char *buf = small;
  size_t cap = small_cap;
  ssize_t n;
  int err;
  for (int tries = 0;; tries++) {
    n = rd(ctx, buf, cap);
    if (n >= 0) {
      *out = buf;
      return n;
    }
    err = errno;
    if (err != ERANGE || tries > 8) break;
    ssize_t need = rd(ctx, NULL, 0); /* larger than the buffer (or it grew): ask its size */
    if (need < 0) {
      err = errno;
      break;
    }
    char *more = malloc((size_t)need + 1);
    if (more == NULL) {
      err = ENOMEM;
      break;
    }
    if (buf != small) free(buf);
    buf = more;
    cap = (size_t)need + 1;
  }
  if (buf != small) free(buf);
  *out = small;
  return -err;
}

/* A value as a Buffer, or the negative errno (fail). */
static inline napi_value xattr_value(napi_env env, xattr_read_fn rd, const void *ctx) {
  char small[256], *buf;
  ssize_t n = xattr_read(rd, ctx, small, sizeof small, &buf);
  if (n < 0) return fail(env, (int)-n);
  napi_value result = NULL;
  napi_create_buffer_copy(env, (size_t)n, buf, NULL, &result);
  if (buf != small) free(buf);
  return result;
}

/* A NUL-separated name list as an array of strings (empty names left out), or the negative errno. */
static inline napi_value xattr_names(napi_env env, xattr_read_fn rd, const void *ctx) {
  char small[1024], *buf;
  ssize_t n = xattr_read(rd, ctx, small, sizeof small, &buf);
  if (n < 0) return fail(env, (int)-n);
  napi_value arr;
  napi_create_array(env, &arr);
  uint32_t i = 0;
  for (ssize_t p = 0; p < n;) {
    size_t l = strnlen(buf + p, (size_t)(n - p));
    if (l > 0) {
      napi_value s;
      napi_create_string_utf8(env, buf + p, l, &s);
      napi_set_element(env, arr, i++, s);
    }
    p += (ssize_t)l + 1;
  }
  if (buf != small) free(buf);
  return arr;
}

#endif
