/*
 * Argument and result helpers shared by the addon's C files: static inline,
 * so each file gets its own copy of what it uses and the source stays in one place.
 */
#ifndef LAYERFS_NAPI_ARGS_H
#define LAYERFS_NAPI_ARGS_H
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>

/* Throws a JS Error carrying errno/syscall (out of memory only); returns NULL. */
static inline napi_value throw_errno(napi_env env, int err, const char *syscall_name) {
  char msg[256], text[128];
  /* GNU strerror_r: thread-safe (strerror is not, and workers call us concurrently) */
  snprintf(msg, sizeof msg, "%s, %s", strerror_r(err, text, sizeof text), syscall_name);
  napi_value m, e, n, s;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) != napi_ok) return NULL;
  if (napi_create_error(env, NULL, m, &e) != napi_ok) return NULL;
  napi_create_int32(env, -err, &n);
  napi_set_named_property(env, e, "errno", n);
  napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, e, "syscall", s);
  napi_throw(env, e);
  return NULL;
}

static inline napi_value throw_type(napi_env env, const char *what) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return NULL;
}

/* Collects up to `want` arguments; missing ones are `undefined`. */
static inline int get_args_opt(napi_env env, napi_callback_info info, size_t need, size_t cap, napi_value *argv) {
  size_t argc = cap; /* N-API fills argv[argc..cap) with undefined */
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < need) {
    throw_type(env, "missing arguments");
    return 0;
  }
  return 1;
}

static inline int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  return get_args_opt(env, info, want, want, argv);
}

/* A string or Buffer argument as a NUL-terminated heap copy; caller frees. NULL (and a pending exception) on error. */
static inline char *get_str(napi_env env, napi_value v, const char *what) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_string) {
    size_t len = 0;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
    char *s = malloc(len + 1);
    if (s == NULL) {
      throw_errno(env, ENOMEM, "malloc");
      return NULL;
    }
    napi_get_value_string_utf8(env, v, s, len + 1, &len);
    if (strlen(s) != len) { /* embedded NUL: refuse like node:fs */
      free(s);
      throw_type(env, what);
      return NULL;
    }
    return s;
  }
  bool isbuf = false;
  napi_is_buffer(env, v, &isbuf);
  if (isbuf) {
    void *data;
    size_t len;
    napi_get_buffer_info(env, v, &data, &len);
    if (memchr(data, 0, len) != NULL) {
      throw_type(env, what);
      return NULL;
    }
    char *s = malloc(len + 1);
    if (s == NULL) {
      throw_errno(env, ENOMEM, "malloc");
      return NULL;
    }
    memcpy(s, data, len);
    s[len] = 0;
    return s;
  }
  throw_type(env, what);
  return NULL;
}

static inline int get_i32(napi_env env, napi_value v, int32_t *out, const char *what) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_number) {
    throw_type(env, what);
    return 0;
  }
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static inline int get_i64(napi_env env, napi_value v, int64_t *out, const char *what) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_number) {
    throw_type(env, what);
    return 0;
  }
  return napi_get_value_int64(env, v, out) == napi_ok;
}

/* A Buffer argument's bytes (not copied). 0 (and a pending TypeError) when it is not a Buffer. */
static inline int get_buf(napi_env env, napi_value v, void **data, size_t *len, const char *what) {
  bool isbuf = false;
  if (napi_is_buffer(env, v, &isbuf) != napi_ok || !isbuf || napi_get_buffer_info(env, v, data, len) != napi_ok) {
    throw_type(env, what);
    return 0;
  }
  return 1;
}

/*
 * Syscall failures are not thrown from C: the function returns the negative errno as a number
 * and src/sys/native.ts throws one FsError. (Throwing here and rethrowing there cost two stack
 * captures; ENODATA from getxattr is hot.)
 */
static inline napi_value fail(napi_env env, int err) {
  napi_value v;
  napi_create_int32(env, -err, &v);
  return v;
}

static inline napi_value num64(napi_env env, int64_t n) {
  napi_value v;
  napi_create_int64(env, n, &v);
  return v;
}

#endif
