/*
 * inotify for udba=notify (src/sys/inotify.ts): init, add a watch, remove a watch. Thin as the
 * rest of the addon: one syscall per function, a negative errno as the number returned on
 * failure. The events are read from the fd with a plain read(2) (node:fs) and parsed in TS.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <node_api.h>

static napi_value in_int(napi_env env, int64_t n) {
  napi_value v;
  napi_create_int64(env, n, &v);
  return v;
}

static int in_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < n) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return 0;
  }
  return 1;
}

static int in_i32(napi_env env, napi_value v, int32_t *out, const char *what) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return 0;
  }
  return 1;
}

/* inotifyInit() -> fd (IN_NONBLOCK | IN_CLOEXEC) or -errno */
static napi_value n_inotify_init(napi_env env, napi_callback_info info) {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  return in_int(env, fd < 0 ? -errno : fd);
}

/* inotifyAddWatch(fd, path, mask) -> watch descriptor or -errno */
static napi_value n_inotify_add_watch(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!in_args(env, info, 3, argv)) return NULL;
  int32_t fd;
  uint32_t mask;
  if (!in_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  if (napi_get_value_uint32(env, argv[2], &mask) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "mask must be a number");
    return NULL;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "path must be a string");
    return NULL;
  }
  char *path = malloc(len + 1);
  if (path == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[1], path, len + 1, &len);
  int wd = inotify_add_watch(fd, path, mask);
  int err = errno;
  free(path);
  return in_int(env, wd < 0 ? -err : wd);
}

/* inotifyRmWatch(fd, wd) -> 0 or -errno */
static napi_value n_inotify_rm_watch(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!in_args(env, info, 2, argv)) return NULL;
  int32_t fd, wd;
  if (!in_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  if (!in_i32(env, argv[1], &wd, "wd must be a number")) return NULL;
  int r = inotify_rm_watch(fd, wd);
  return in_int(env, r < 0 ? -errno : 0);
}

void register_inotify(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"inotifyInit", NULL, n_inotify_init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inotifyAddWatch", NULL, n_inotify_add_watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inotifyRmWatch", NULL, n_inotify_rm_watch, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}
