/*
 * layerfs native addon: the few Linux syscalls node:fs lacks (xattrs, mknod,
 * renameat2, nanosecond utimensat, fallocate, SEEK_DATA/HOLE, copy_file_range,
 * FICLONE, ioctl, mount/umount2, socketpair and an SCM_RIGHTS receive (fusermount3), a spinning read and a plain write for /dev/fuse). Thin by design: every function does one
 * syscall and, on failure, returns the negative errno as a number (see `fail`);
 * src/sys/native.ts turns that into an FsError. Only bad argument types (and
 * out-of-memory) throw here.
 *
 * Context-aware (NAPI_MODULE_INIT) and free of global mutable state, so it
 * loads in any number of worker_threads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <limits.h>

#include <node_api.h>
#include "napi-args.h"
#include "fd-pass.h"
#include "xattr-read.h"

static int get_bool(napi_env env, napi_value v, bool *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_undefined || t == napi_null) {
    *out = false;
    return 1;
  }
  napi_value b;
  if (napi_coerce_to_bool(env, v, &b) != napi_ok) return 0;
  return napi_get_value_bool(env, b, out) == napi_ok;
}

static napi_value undef(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* ---- xattrs --------------------------------------------------------------- */

/* One target of an xattr call: a path (l* variants, no follow) or an fd (f* variants). */
typedef struct {
  char *path;
  int fd;
} xtarget;

static int get_target(napi_env env, napi_value v, int by_fd, xtarget *t) {
  t->path = NULL;
  t->fd = -1;
  if (by_fd) return get_i32(env, v, &t->fd, "fd must be a number");
  t->path = get_str(env, v, "path must be a string or Buffer without NUL bytes");
  return t->path != NULL;
}

struct xget {
  const xtarget *t;
  const char *name;
};

static ssize_t x_get(const void *ctx, void *buf, size_t size) {
  const struct xget *g = ctx;
  return g->t->path ? lgetxattr(g->t->path, g->name, buf, size) : fgetxattr(g->t->fd, g->name, buf, size);
}

static ssize_t x_list(const void *ctx, void *buf, size_t size) {
  const xtarget *t = ctx;
  return t->path ? llistxattr(t->path, buf, size) : flistxattr(t->fd, buf, size);
}

static napi_value do_getxattr(napi_env env, napi_callback_info info, int by_fd) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  xtarget t;
  if (!get_target(env, argv[0], by_fd, &t)) return NULL;
  char *name = get_str(env, argv[1], "name must be a string");
  if (name == NULL) {
    free(t.path);
    return NULL;
  }
  struct xget g = {&t, name};
  napi_value result = xattr_value(env, x_get, &g);
  free(name);
  free(t.path);
  return result;
}

static napi_value do_setxattr(napi_env env, napi_callback_info info, int by_fd) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  void *data;
  size_t len;
  int32_t flags;
  if (!get_buf(env, argv[2], &data, &len, "value must be a Buffer")) return NULL;
  if (!get_i32(env, argv[3], &flags, "flags must be a number")) return NULL;
  xtarget t;
  if (!get_target(env, argv[0], by_fd, &t)) return NULL;
  char *name = get_str(env, argv[1], "name must be a string");
  if (name == NULL) {
    free(t.path);
    return NULL;
  }
  int r = t.path ? lsetxattr(t.path, name, data, len, flags) : fsetxattr(t.fd, name, data, len, flags);
  int err = errno;
  free(name);
  free(t.path);
  if (r < 0) return fail(env, err);
  return undef(env);
}

static napi_value do_listxattr(napi_env env, napi_callback_info info, int by_fd) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  xtarget t;
  if (!get_target(env, argv[0], by_fd, &t)) return NULL;
  napi_value arr = xattr_names(env, x_list, &t);
  free(t.path);
  return arr;
}

static napi_value do_removexattr(napi_env env, napi_callback_info info, int by_fd) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  xtarget t;
  if (!get_target(env, argv[0], by_fd, &t)) return NULL;
  char *name = get_str(env, argv[1], "name must be a string");
  if (name == NULL) {
    free(t.path);
    return NULL;
  }
  int r = t.path ? lremovexattr(t.path, name) : fremovexattr(t.fd, name);
  int err = errno;
  free(name);
  free(t.path);
  if (r < 0) return fail(env, err);
  return undef(env);
}

static napi_value n_lgetxattr(napi_env env, napi_callback_info info) { return do_getxattr(env, info, 0); }
static napi_value n_fgetxattr(napi_env env, napi_callback_info info) { return do_getxattr(env, info, 1); }
static napi_value n_lsetxattr(napi_env env, napi_callback_info info) { return do_setxattr(env, info, 0); }
static napi_value n_fsetxattr(napi_env env, napi_callback_info info) { return do_setxattr(env, info, 1); }
static napi_value n_llistxattr(napi_env env, napi_callback_info info) { return do_listxattr(env, info, 0); }
static napi_value n_flistxattr(napi_env env, napi_callback_info info) { return do_listxattr(env, info, 1); }
static napi_value n_lremovexattr(napi_env env, napi_callback_info info) { return do_removexattr(env, info, 0); }
static napi_value n_fremovexattr(napi_env env, napi_callback_info info) { return do_removexattr(env, info, 1); }

/* ---- nodes, names, times -------------------------------------------------- */

static napi_value n_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int64_t mode, dev;
  if (!get_i64(env, argv[1], &mode, "mode must be a number")) return NULL;
  if (!get_i64(env, argv[2], &dev, "dev must be a number")) return NULL;
  char *path = get_str(env, argv[0], "path must be a string or Buffer without NUL bytes");
  if (path == NULL) return NULL;
  int r = mknod(path, (mode_t)mode, (dev_t)dev);
  int err = errno;
  free(path);
  if (r < 0) return fail(env, err);
  return undef(env);
}

static napi_value n_renameat2(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int64_t flags;
  if (!get_i64(env, argv[2], &flags, "flags must be a number")) return NULL;
  char *from = get_str(env, argv[0], "oldPath must be a string or Buffer without NUL bytes");
  if (from == NULL) return NULL;
  char *to = get_str(env, argv[1], "newPath must be a string or Buffer without NUL bytes");
  if (to == NULL) {
    free(from);
    return NULL;
  }
  long r = syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, (unsigned int)flags);
  int err = errno;
  free(from);
  free(to);
  if (r < 0) return fail(env, err);
  return undef(env);
}

static int get_times(napi_env env, napi_value *argv, struct timespec ts[2]) {
  int64_t v[4];
  for (int i = 0; i < 4; i++)
    if (!get_i64(env, argv[i], &v[i], "times must be numbers")) return 0;
  ts[0].tv_sec = (time_t)v[0];
  ts[0].tv_nsec = (long)v[1];
  ts[1].tv_sec = (time_t)v[2];
  ts[1].tv_nsec = (long)v[3];
  return 1;
}

static napi_value n_utimensat(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args_opt(env, info, 5, 6, argv)) return NULL; /* noFollow optional */
  struct timespec ts[2];
  if (!get_times(env, argv + 1, ts)) return NULL;
  bool nofollow;
  if (!get_bool(env, argv[5], &nofollow)) return NULL;
  char *path = get_str(env, argv[0], "path must be a string or Buffer without NUL bytes");
  if (path == NULL) return NULL;
  int r = utimensat(AT_FDCWD, path, ts, nofollow ? AT_SYMLINK_NOFOLLOW : 0);
  int err = errno;
  free(path);
  if (r < 0) return fail(env, err);
  return undef(env);
}

static napi_value n_futimens(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int32_t fd;
  if (!get_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  struct timespec ts[2];
  if (!get_times(env, argv + 1, ts)) return NULL;
  if (futimens(fd, ts) < 0) return fail(env, errno);
  return undef(env);
}

/* ---- file data ------------------------------------------------------------ */

static napi_value n_fallocate(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  int32_t fd, mode;
  int64_t off, len;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i32(env, argv[1], &mode, "mode must be a number") ||
      !get_i64(env, argv[2], &off, "offset must be a number") || !get_i64(env, argv[3], &len, "length must be a number"))
    return NULL;
  if (fallocate(fd, mode, (off_t)off, (off_t)len) < 0) return fail(env, errno);
  return undef(env);
}

static napi_value n_lseek(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int32_t fd, whence;
  int64_t off;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i64(env, argv[1], &off, "offset must be a number") ||
      !get_i32(env, argv[2], &whence, "whence must be a number"))
    return NULL;
  off_t r = lseek(fd, (off_t)off, whence);
  if (r < 0) return fail(env, errno);
  return num64(env, (int64_t)r);
}

/* Offsets < 0 mean "use and advance the fd's file position" (NULL offset pointer). */
static napi_value n_copy_file_range(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int32_t fd_in, fd_out;
  int64_t off_in, off_out, len;
  if (!get_i32(env, argv[0], &fd_in, "fdIn must be a number") || !get_i64(env, argv[1], &off_in, "offIn must be a number") ||
      !get_i32(env, argv[2], &fd_out, "fdOut must be a number") ||
      !get_i64(env, argv[3], &off_out, "offOut must be a number") || !get_i64(env, argv[4], &len, "length must be a number"))
    return NULL;
  if (len < 0) return fail(env, EINVAL);
  loff_t oi = (loff_t)off_in, oo = (loff_t)off_out;
  ssize_t r = copy_file_range(fd_in, off_in < 0 ? NULL : &oi, fd_out, off_out < 0 ? NULL : &oo, (size_t)len, 0);
  if (r < 0) return fail(env, errno);
  return num64(env, (int64_t)r);
}

static napi_value n_ficlone(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t dst, src;
  if (!get_i32(env, argv[0], &dst, "destFd must be a number") || !get_i32(env, argv[1], &src, "srcFd must be a number"))
    return NULL;
  if (ioctl(dst, FICLONE, src) < 0) return fail(env, errno);
  return undef(env);
}

/* ioctl(fd, request, arg): a Buffer arg is passed as a pointer (in/out); a number is passed as an integer. */
static napi_value n_ioctl(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int32_t fd;
  int64_t req;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i64(env, argv[1], &req, "request must be a number"))
    return NULL;
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  int r;
  if (t == napi_number) {
    int64_t a;
    napi_get_value_int64(env, argv[2], &a);
    r = ioctl(fd, (unsigned long)(uint32_t)req, (unsigned long)a);
  } else if (t == napi_undefined || t == napi_null) {
    r = ioctl(fd, (unsigned long)(uint32_t)req, 0UL);
  } else {
    void *data;
    size_t len;
    if (!get_buf(env, argv[2], &data, &len, "arg must be a Buffer or a number")) return NULL;
    r = ioctl(fd, (unsigned long)(uint32_t)req, data);
  }
  if (r < 0) return fail(env, errno);
  return num64(env, r);
}

/* ---- mounts --------------------------------------------------------------- */

/* Empty source/fstype/data strings are passed as NULL (as bind mounts and remounts want). */
static napi_value n_mount(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int64_t flags;
  if (!get_i64(env, argv[3], &flags, "flags must be a number")) return NULL;
  char *s[4] = {NULL, NULL, NULL, NULL};
  const int idx[4] = {0, 1, 2, 4};
  for (int i = 0; i < 4; i++) {
    s[i] = get_str(env, argv[idx[i]], "mount arguments must be strings");
    if (s[i] == NULL) {
      for (int j = 0; j < i; j++) free(s[j]);
      return NULL;
    }
  }
  int r = mount(s[0][0] ? s[0] : NULL, s[1], s[2][0] ? s[2] : NULL, (unsigned long)flags, s[3][0] ? s[3] : NULL);
  int err = errno;
  for (int i = 0; i < 4; i++) free(s[i]);
  if (r < 0) return fail(env, err);
  return undef(env);
}

static napi_value n_umount2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t flags;
  if (!get_i32(env, argv[1], &flags, "flags must be a number")) return NULL;
  char *target = get_str(env, argv[0], "target must be a string or Buffer without NUL bytes");
  if (target == NULL) return NULL;
  int r = umount2(target, flags);
  int err = errno;
  free(target);
  if (r < 0) return fail(env, err);
  return undef(env);
}

/* ---- fd passing (fusermount3) --------------------------------------------- */

/*
 * socketpair(): socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC) -> [fd0, fd1], or a negative errno.
 * Both ends are close-on-exec; a child gets one through its stdio (which dup2s it, clearing that).
 */
static napi_value n_socketpair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return fail(env, errno);
  napi_value arr, a, b;
  napi_create_array_with_length(env, 2, &arr);
  napi_create_int32(env, sv[0], &a);
  napi_create_int32(env, sv[1], &b);
  napi_set_element(env, arr, 0, a);
  napi_set_element(env, arr, 1, b);
  return arr;
}

/*
 * recvFd(sockfd): one recvmsg(2) of up to one byte with room for one SCM_RIGHTS fd (received
 * close-on-exec). Returns the fd; -ENODATA when the message carried no fd (or the peer closed
 * without sending: EOF); a negative errno on failure. Extra fds, if any, are closed.
 */
static napi_value n_recv_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t sock;
  if (!get_i32(env, argv[0], &sock, "fd must be a number")) return NULL;
  char byte;
  int got;
  if (fdpass_recv(sock, &byte, 1, 0, &got) < 0) return fail(env, errno);
  if (got < 0) return fail(env, ENODATA);
  napi_value v;
  napi_create_int32(env, got, &v);
  return v;
}

/* ---- lstat into numbers ------------------------------------------------------ */

/*
 * lstatInto(path, out: Float64Array(16)): lstat(2) without a Stats object (the hot path of
 * LOOKUP/GETATTR allocates nothing). out = [dev, ino, mode, nlink, uid, gid, rdev, size,
 * blksize, blocks, atime_sec, atime_nsec, mtime_sec, mtime_nsec, ctime_sec, ctime_nsec].
 * Returns 0 or a negative errno.
 */
static void fill_stat(double *o, const struct stat *sp) {
  const struct stat st = *sp;
  o[0] = (double)st.st_dev;
  o[1] = (double)st.st_ino;
  o[2] = st.st_mode;
  o[3] = (double)st.st_nlink;
  o[4] = st.st_uid;
  o[5] = st.st_gid;
  o[6] = (double)st.st_rdev;
  o[7] = (double)st.st_size;
  o[8] = (double)st.st_blksize;
  o[9] = (double)st.st_blocks;
  o[10] = (double)st.st_atim.tv_sec;
  o[11] = (double)st.st_atim.tv_nsec;
  o[12] = (double)st.st_mtim.tv_sec;
  o[13] = (double)st.st_mtim.tv_nsec;
  o[14] = (double)st.st_ctim.tv_sec;
  o[15] = (double)st.st_ctim.tv_nsec;
}

static napi_value n_lstat_into(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  napi_typedarray_type tt;
  size_t n = 0;
  void *data = NULL;
  if (!is_ta || napi_get_typedarray_info(env, argv[1], &tt, &n, &data, NULL, NULL) != napi_ok || tt != napi_float64_array || n < 16)
    return throw_type(env, "out must be a Float64Array of 16");
  char *path = get_str(env, argv[0], "path must be a string or Buffer without NUL bytes");
  if (path == NULL) return NULL;
  struct stat st;
  int r = lstat(path, &st);
  int err = errno;
  free(path);
  if (r < 0) return fail(env, err);
  fill_stat(data, &st);
  napi_value z;
  napi_create_int32(env, 0, &z);
  return z;
}

/* ---- /dev/fuse I/O ----------------------------------------------------------- */

/* setNonBlocking(fd, on): sets or clears O_NONBLOCK (fcntl F_SETFL). */
static napi_value n_set_non_blocking(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t fd;
  bool on;
  if (!get_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  if (napi_get_value_bool(env, argv[1], &on) != napi_ok) return throw_type(env, "on must be a boolean");
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return fail(env, errno);
  int want = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (want != fl && fcntl(fd, F_SETFL, want) < 0) return fail(env, errno);
  return undef(env);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * readSpin(fd, buf, spinUs, wait): one read(2) into buf from an O_NONBLOCK fd. While it
 * fails EAGAIN, retries for up to spinUs microseconds (from the call); then, when wait
 * is true, waits in poll(2) without a timeout and reads again, else returns -EAGAIN
 * (the spin found nothing). Returns the byte count or a negative errno. The spin catches
 * the next request of a client that asks back to back without a sleep and wake-up.
 */
static napi_value n_read_spin(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  int32_t fd, spin_us;
  void *data;
  size_t len;
  bool wait;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_buf(env, argv[1], &data, &len, "buf must be a Buffer") ||
      !get_i32(env, argv[2], &spin_us, "spinUs must be a number"))
    return NULL;
  if (napi_get_value_bool(env, argv[3], &wait) != napi_ok) return throw_type(env, "wait must be a boolean");
  int64_t deadline = spin_us > 0 ? now_ns() + (int64_t)spin_us * 1000 : 0;
  int spinning = spin_us > 0;
  for (;;) {
    ssize_t n = read(fd, data, len);
    if (n >= 0) return num64(env, n);
    if (errno != EAGAIN) return fail(env, errno);
    if (spinning && now_ns() < deadline) continue;
    if (!wait) return fail(env, EAGAIN);
    spinning = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) return fail(env, errno);
  }
}

/*
 * pollIn(fds, count, spinUs): poll(2) over `count` struct pollfd laid out in the Buffer `fds`
 * (8 bytes each: int fd, short events, short revents; the caller fills fd and events). For up
 * to spinUs microseconds it polls without sleeping, then waits without a timeout. Returns the
 * number of entries with revents set (read them from the buffer) or a negative errno. Lets one
 * thread serve several /dev/fuse fds (and a wake-up eventfd).
 */
static napi_value n_poll_in(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  void *data;
  size_t len;
  int32_t count, spin_us;
  if (!get_buf(env, argv[0], &data, &len, "fds must be a Buffer") || !get_i32(env, argv[1], &count, "count must be a number") ||
      !get_i32(env, argv[2], &spin_us, "spinUs must be a number"))
    return NULL;
  if (count < 0 || (size_t)count * sizeof(struct pollfd) > len) return throw_type(env, "count out of range");
  struct pollfd *p = (struct pollfd *)data;
  int64_t deadline = spin_us > 0 ? now_ns() + (int64_t)spin_us * 1000 : 0;
  for (;;) {
    int spinning = spin_us > 0 && now_ns() < deadline;
    int r = poll(p, (nfds_t)count, spinning ? 0 : -1);
    if (r > 0) return num64(env, r);
    if (r < 0 && errno != EINTR) return fail(env, errno);
  }
}

/* eventfd(): a non-blocking, close-on-exec eventfd(2) (wakes a thread waiting in pollIn). */
static napi_value n_eventfd(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return fail(env, errno);
  return num64(env, fd);
}

/* write(fd, buf, len): the byte count or a negative errno (no exception on ENOENT). */
static napi_value n_write(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int32_t fd;
  int64_t want;
  void *data;
  size_t len;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_buf(env, argv[1], &data, &len, "buf must be a Buffer") ||
      !get_i64(env, argv[2], &want, "length must be a number"))
    return NULL;
  if (want < 0 || (uint64_t)want > len) return throw_type(env, "length out of range");
  ssize_t n = write(fd, data, (size_t)want);
  if (n < 0) return fail(env, errno);
  return num64(env, n);
}

/* ---- writeback ------------------------------------------------------------ */

/*
 * syncFileRange(fd, offset, nbytes, flags): sync_file_range(2). Used to start writeback of a
 * copy-up's data while the copy goes on (SYNC_FILE_RANGE_WRITE = 2), so the fsync before the
 * rename into place waits for less. Not a durability guarantee by itself (fsync is). Returns
 * undefined or a negative errno.
 */
static napi_value n_sync_file_range(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  int32_t fd, flags;
  int64_t off, len;
  if (!get_i32(env, argv[0], &fd, "fd must be a number") || !get_i64(env, argv[1], &off, "offset must be a number") ||
      !get_i64(env, argv[2], &len, "nbytes must be a number") || !get_i32(env, argv[3], &flags, "flags must be a number"))
    return NULL;
  if (sync_file_range(fd, (off_t)off, (off_t)len, (unsigned int)flags) < 0) return fail(env, errno);
  return undef(env);
}

/* syncfs(fd): commit the filesystem holding fd (one journal commit for many files). */
static napi_value n_syncfs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t fd;
  if (!get_i32(env, argv[0], &fd, "fd must be a number")) return NULL;
  if (syncfs(fd) < 0) return fail(env, errno);
  return undef(env);
}

/* ---- calls relative to a directory fd (branches held by fd) ------------------ */

/*
 * A branch is held as an O_PATH directory fd opened before the mount goes live; every access
 * resolves beneath it (src/branch/branch.ts), never through an absolute path that could lead into
 * the union's own mount. These are the *at forms of the calls above; each returns undefined (or
 * its value) or a negative errno, as everywhere in this file.
 */

/* openat2(dirfd, path, flags, mode, resolve): a new fd or a negative errno. O_CLOEXEC is added;
 * mode is passed only with O_CREAT/O_TMPFILE (openat2 refuses it otherwise). */
static napi_value n_openat2(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int32_t dirfd;
  int64_t flags, mode, resolve;
  if (!get_i32(env, argv[0], &dirfd, "dirfd must be a number") || !get_i64(env, argv[2], &flags, "flags must be a number") ||
      !get_i64(env, argv[3], &mode, "mode must be a number") || !get_i64(env, argv[4], &resolve, "resolve must be a number"))
    return NULL;
  char *path = get_str(env, argv[1], "path must be a string or Buffer without NUL bytes");
  if (path == NULL) return NULL;
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)flags | O_CLOEXEC;
  how.mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? (uint64_t)mode : 0;
  how.resolve = (uint64_t)resolve;
  long r;
  do r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  while (r < 0 && errno == EAGAIN && (resolve & RESOLVE_CACHED) == 0); /* a rename raced: retry */
  int err = errno;
  free(path);
  if (r < 0) return fail(env, err);
  return num64(env, r);
}

/* fstatatInto(dirfd, path, out, flags): fstatat(2) into a Float64Array(16) as lstatInto. */
static napi_value n_fstatat_into(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  int32_t dirfd, flags;
  if (!get_i32(env, argv[0], &dirfd, "dirfd must be a number") || !get_i32(env, argv[3], &flags, "flags must be a number")) return NULL;
  bool is_ta = false;
  napi_is_typedarray(env, argv[2], &is_ta);
  napi_typedarray_type tt;
  size_t n = 0;
  void *data = NULL;
  if (!is_ta || napi_get_typedarray_info(env, argv[2], &tt, &n, &data, NULL, NULL) != napi_ok || tt != napi_float64_array || n < 16)
    return throw_type(env, "out must be a Float64Array of 16");
  char *path = get_str(env, argv[1], "path must be a string or Buffer without NUL bytes");
  if (path == NULL) return NULL;
  struct stat st;
  int r = fstatat(dirfd, path, &st, flags);
  int err = errno;
  free(path);
  if (r < 0) return fail(env, err);
  fill_stat(data, &st);
  napi_value z;
  napi_create_int32(env, 0, &z);
  return z;
}

/* The (dirfd, path) pair at argv[i], argv[i+1]; path is a heap copy (NULL and an exception on error). */
static char *get_at(napi_env env, napi_value *argv, int i, int32_t *dirfd) {
  if (!get_i32(env, argv[i], dirfd, "dirfd must be a number")) return NULL;
  return get_str(env, argv[i + 1], "path must be a string or Buffer without NUL bytes");
}

static napi_value done(napi_env env, int r, int err, char *a, char *b) {
  free(a);
  free(b);
  if (r < 0) return fail(env, err);
  return undef(env);
}

/* mkdirat(dirfd, path, mode) */
static napi_value n_mkdirat(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int64_t mode;
  if (!get_i64(env, argv[2], &mode, "mode must be a number")) return NULL;
  int32_t fd;
  char *p = get_at(env, argv, 0, &fd);
  if (p == NULL) return NULL;
  int r = mkdirat(fd, p, (mode_t)mode);
  return done(env, r, errno, p, NULL);
}

/* unlinkat(dirfd, path, flags) (AT_REMOVEDIR = 0x200 for rmdir) */
static napi_value n_unlinkat(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int32_t flags;
  if (!get_i32(env, argv[2], &flags, "flags must be a number")) return NULL;
  int32_t fd;
  char *p = get_at(env, argv, 0, &fd);
  if (p == NULL) return NULL;
  int r = unlinkat(fd, p, flags);
  return done(env, r, errno, p, NULL);
}

/* symlinkat(target, dirfd, path) */
static napi_value n_symlinkat(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  char *target = get_str(env, argv[0], "target must be a string or Buffer without NUL bytes");
  if (target == NULL) return NULL;
  int32_t fd;
  char *p = get_at(env, argv, 1, &fd);
  if (p == NULL) {
    free(target);
    return NULL;
  }
  int r = symlinkat(target, fd, p);
  return done(env, r, errno, p, target);
}

/* linkat(olddirfd, oldpath, newdirfd, newpath, flags) */
static napi_value n_linkat(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int32_t flags, ofd, nfd;
  if (!get_i32(env, argv[4], &flags, "flags must be a number")) return NULL;
  char *o = get_at(env, argv, 0, &ofd);
  if (o == NULL) return NULL;
  char *n = get_at(env, argv, 2, &nfd);
  if (n == NULL) {
    free(o);
    return NULL;
  }
  int r = linkat(ofd, o, nfd, n, flags);
  return done(env, r, errno, o, n);
}

/* renameat2At(olddirfd, oldpath, newdirfd, newpath, flags) */
static napi_value n_renameat2_at(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int32_t ofd, nfd;
  int64_t flags;
  if (!get_i64(env, argv[4], &flags, "flags must be a number")) return NULL;
  char *o = get_at(env, argv, 0, &ofd);
  if (o == NULL) return NULL;
  char *n = get_at(env, argv, 2, &nfd);
  if (n == NULL) {
    free(o);
    return NULL;
  }
  long r = syscall(SYS_renameat2, ofd, o, nfd, n, (unsigned int)flags);
  return done(env, (int)r, errno, o, n);
}

/* mknodat(dirfd, path, mode, dev) */
static napi_value n_mknodat(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  int64_t mode, dev;
  if (!get_i64(env, argv[2], &mode, "mode must be a number") || !get_i64(env, argv[3], &dev, "dev must be a number")) return NULL;
  int32_t fd;
  char *p = get_at(env, argv, 0, &fd);
  if (p == NULL) return NULL;
  int r = mknodat(fd, p, (mode_t)mode, (dev_t)dev);
  return done(env, r, errno, p, NULL);
}

/* readlinkat(dirfd, path): the target as a string (UTF-8, as node:fs) or a negative errno. */
static napi_value n_readlinkat(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t fd;
  char *p = get_at(env, argv, 0, &fd);
  if (p == NULL) return NULL;
  char *buf = malloc(PATH_MAX + 1);
  if (buf == NULL) {
    free(p);
    return fail(env, ENOMEM);
  }
  ssize_t n = readlinkat(fd, p, buf, PATH_MAX + 1);
  int err = errno;
  free(p);
  napi_value v;
  if (n < 0) v = fail(env, err);
  else if (n > PATH_MAX) v = fail(env, ENAMETOOLONG);
  else napi_create_string_utf8(env, buf, (size_t)n, &v);
  free(buf);
  return v;
}

/* fchmodat(dirfd, path, mode, flags): with AT_SYMLINK_NOFOLLOW, fchmodat2 (Linux 6.6) or glibc's
 * O_PATH fallback; a symlink then answers EOPNOTSUPP. */
static napi_value n_fchmodat(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  int64_t mode;
  int32_t flags;
  if (!get_i64(env, argv[2], &mode, "mode must be a number") || !get_i32(env, argv[3], &flags, "flags must be a number")) return NULL;
  int32_t fd;
  char *p = get_at(env, argv, 0, &fd);
  if (p == NULL) return NULL;
  int r = -1;
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
  if (flags != 0) {
    r = (int)syscall(SYS_fchmodat2, fd, p, (mode_t)mode, flags);
    if (r < 0 && errno == ENOSYS) r = fchmodat(fd, p, (mode_t)mode, flags);
  } else {
    r = fchmodat(fd, p, (mode_t)mode, 0);
  }
  return done(env, r, errno, p, NULL);
}

/* fchownat(dirfd, path, uid, gid, flags) */
static napi_value n_fchownat(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int64_t uid, gid;
  int32_t flags;
  if (!get_i64(env, argv[2], &uid, "uid must be a number") || !get_i64(env, argv[3], &gid, "gid must be a number") ||
      !get_i32(env, argv[4], &flags, "flags must be a number"))
    return NULL;
  int32_t fd;
  char *p = get_at(env, argv, 0, &fd);
  if (p == NULL) return NULL;
  int r = fchownat(fd, p, (uid_t)uid, (gid_t)gid, flags);
  return done(env, r, errno, p, NULL);
}

/* utimensatAt(dirfd, path, aSec, aNsec, mSec, mNsec, flags) */
static napi_value n_utimensat_at(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) return NULL;
  struct timespec ts[2];
  if (!get_times(env, argv + 2, ts)) return NULL;
  int32_t flags;
  if (!get_i32(env, argv[6], &flags, "flags must be a number")) return NULL;
  int32_t fd;
  char *p = get_at(env, argv, 0, &fd);
  if (p == NULL) return NULL;
  int r = utimensat(fd, p, ts, flags);
  return done(env, r, errno, p, NULL);
}

/* ---- module --------------------------------------------------------------- */

void register_inotify(napi_env env, napi_value exports);
void register_supervise(napi_env env, napi_value exports);
void register_meta_at(napi_env env, napi_value exports);
void register_uring(napi_env env, napi_value exports);

static void set_int(napi_env env, napi_value exports, const char *name, int64_t v) {
  napi_set_named_property(env, exports, name, num64(env, v));
}

NAPI_MODULE_INIT() {
  napi_property_descriptor fns[] = {
      {"lgetxattr", NULL, n_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lsetxattr", NULL, n_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"llistxattr", NULL, n_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lremovexattr", NULL, n_lremovexattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fgetxattr", NULL, n_fgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fsetxattr", NULL, n_fsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flistxattr", NULL, n_flistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fremovexattr", NULL, n_fremovexattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mknod", NULL, n_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"renameat2", NULL, n_renameat2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"utimensat", NULL, n_utimensat, NULL, NULL, NULL, napi_enumerable, NULL},
      {"futimens", NULL, n_futimens, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fallocate", NULL, n_fallocate, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lseek", NULL, n_lseek, NULL, NULL, NULL, napi_enumerable, NULL},
      {"copyFileRange", NULL, n_copy_file_range, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ficlone", NULL, n_ficlone, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ioctl", NULL, n_ioctl, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mount", NULL, n_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount2", NULL, n_umount2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketpair", NULL, n_socketpair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvFd", NULL, n_recv_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lstatInto", NULL, n_lstat_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setNonBlocking", NULL, n_set_non_blocking, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readSpin", NULL, n_read_spin, NULL, NULL, NULL, napi_enumerable, NULL},
      {"write", NULL, n_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollIn", NULL, n_poll_in, NULL, NULL, NULL, napi_enumerable, NULL},
      {"eventfd", NULL, n_eventfd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"syncFileRange", NULL, n_sync_file_range, NULL, NULL, NULL, napi_enumerable, NULL},
      {"syncfs", NULL, n_syncfs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openat2", NULL, n_openat2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fstatatInto", NULL, n_fstatat_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mkdirat", NULL, n_mkdirat, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unlinkat", NULL, n_unlinkat, NULL, NULL, NULL, napi_enumerable, NULL},
      {"symlinkat", NULL, n_symlinkat, NULL, NULL, NULL, napi_enumerable, NULL},
      {"linkat", NULL, n_linkat, NULL, NULL, NULL, napi_enumerable, NULL},
      {"renameat2At", NULL, n_renameat2_at, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mknodat", NULL, n_mknodat, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readlinkat", NULL, n_readlinkat, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fchmodat", NULL, n_fchmodat, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fchownat", NULL, n_fchownat, NULL, NULL, NULL, napi_enumerable, NULL},
      {"utimensatAt", NULL, n_utimensat_at, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) != napi_ok) return NULL;
  set_int(env, exports, "UTIME_NOW", UTIME_NOW);
  set_int(env, exports, "UTIME_OMIT", UTIME_OMIT);
  set_int(env, exports, "FICLONE", FICLONE);
  register_inotify(env, exports);
  register_supervise(env, exports);
  register_meta_at(env, exports);
  register_uring(env, exports);
  return exports;
}
