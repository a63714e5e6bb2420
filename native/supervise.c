/*
 * What the daemon needs to live under the supervisor (src/daemon/supervised.ts, native/supervisor.c)
 * and to keep its node journal (src/fuse/node-journal.ts). Thin: one syscall each, a negative errno
 * returned on failure.
 *   seqSend(sock, buf, len, fd)  one sendmsg(2) of buf[0..len) with `fd` as SCM_RIGHTS (fd < 0: none)
 *   seqRecv(sock, buf)           one blocking recvmsg(2) -> [bytes, fd or -1] (bytes 0: peer closed)
 *   mmapShared(fd, len)          mmap(MAP_SHARED) of a file as an ArrayBuffer (unmapped when collected):
 *                                stores reach the page cache at once and survive the process dying
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <node_api.h>
#include "napi-args.h"
#include "fd-pass.h"

static napi_value n_seq_send(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  int32_t sock, len, fd;
  void *data;
  size_t cap;
  if (!get_i32(env, argv[0], &sock, "sock must be a number")) return NULL;
  if (!get_buf(env, argv[1], &data, &cap, "buffer must be a Buffer")) return NULL;
  if (!get_i32(env, argv[2], &len, "len must be a number")) return NULL;
  if (!get_i32(env, argv[3], &fd, "fd must be a number")) return NULL;
  if (len < 0 || (size_t)len > cap) return throw_type(env, "len out of range");
  struct iovec iov = {.iov_base = data, .iov_len = (size_t)len};
  ssize_t n = fdpass_send(sock, &iov, 1, fd);
  return num64(env, n < 0 ? -errno : n);
}

static napi_value n_seq_recv(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t sock;
  void *data;
  size_t cap;
  if (!get_i32(env, argv[0], &sock, "sock must be a number")) return NULL;
  if (!get_buf(env, argv[1], &data, &cap, "buffer must be a Buffer")) return NULL;
  int got;
  ssize_t n = fdpass_recv(sock, data, cap, 0, &got);
  int64_t r = n < 0 ? -errno : n;
  napi_value arr;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, num64(env, r));
  napi_set_element(env, arr, 1, num64(env, got));
  return arr;
}

static void unmap(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

static napi_value n_mmap_shared(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t fd, len;
  if (!get_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  if (!get_i32(env, argv[1], &len, "len must be a number")) return NULL;
  if (len <= 0) return throw_type(env, "len must be positive");
  void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return num64(env, -errno);
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, (size_t)len, unmap, (void *)(uintptr_t)len, &ab) != napi_ok) {
    munmap(p, (size_t)len);
    return NULL;
  }
  return ab;
}

void register_supervise(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"seqSend", NULL, n_seq_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seqRecv", NULL, n_seq_recv, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mmapShared", NULL, n_mmap_shared, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}
