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
#include "napi-args.h"

/* inotifyInit() -> fd (IN_NONBLOCK | IN_CLOEXEC) or -errno */
static napi_value n_inotify_init(napi_env env, napi_callback_info info) {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  return num64(env, fd < 0 ? -errno : fd);
}

/* inotifyAddWatch(fd, path, mask) -> watch descriptor or -errno */
static napi_value n_inotify_add_watch(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int32_t fd;
  uint32_t mask;
  if (!get_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  if (napi_get_value_uint32(env, argv[2], &mask) != napi_ok) return throw_type(env, "mask must be a number");
  char *path = get_str(env, argv[1], "path must be a string");
  if (path == NULL) return NULL;
  int wd = inotify_add_watch(fd, path, mask);
  int err = errno;
  free(path);
  return num64(env, wd < 0 ? -err : wd);
}

/* inotifyRmWatch(fd, wd) -> 0 or -errno */
static napi_value n_inotify_rm_watch(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t fd, wd;
  if (!get_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  if (!get_i32(env, argv[1], &wd, "wd must be a number")) return NULL;
  int r = inotify_rm_watch(fd, wd);
  return num64(env, r < 0 ? -errno : 0);
}

void register_inotify(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"inotifyInit", NULL, n_inotify_init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inotifyAddWatch", NULL, n_inotify_add_watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inotifyRmWatch", NULL, n_inotify_rm_watch, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}
