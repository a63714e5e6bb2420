/*
 * io_uring for the FUSE-over-io_uring transport (src/fuse/uring-ring.ts). Thin: set up one ring
 * (128-byte SQEs, as FUSE's uring commands need), put SQEs on it (a FUSE uring command, a one-shot
 * poll), submit and wait, and copy the completions out. What the commands mean, which buffers
 * they carry and what to do with each completion is decided in TypeScript.
 *
 * Raw syscalls (io_uring_setup/io_uring_enter, mmap of the rings) rather than liburing: three
 * calls and two ring walks are all we need, and the addon then builds and runs without another
 * library on the host.
 *
 * A ring is a napi external (no global state: the addon is context-aware); its memory is unmapped
 * by uringClose or, at the latest, when the external is collected.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <linux/io_uring.h>
#include <node_api.h>
#include "napi-args.h"

/* The size of an SQE with IORING_SETUP_SQE128. */
#define SQE_BYTES 128
/* Where the command area of a URING_CMD SQE starts (the kernel's sqe->cmd). */
#define SQE_CMD_AT 48
/* One completion as handed to JS: user_data (low, high 32 bits), res, flags. */
#define CQE_OUT_BYTES 16

struct ring {
  int fd;
  unsigned sq_entries, cq_entries;
  void *sq_map, *cq_map;
  size_t sq_map_len, cq_map_len;
  uint8_t *sqes;
  size_t sqes_len;
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array, *sq_flags;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_cqe *cqes;
  /* SQEs written to the ring and not yet handed to the kernel. */
  unsigned pending;
};

static void ring_unmap(struct ring *r) {
  if (r->sqes != NULL && r->sqes != MAP_FAILED) munmap(r->sqes, r->sqes_len);
  if (r->cq_map != NULL && r->cq_map != MAP_FAILED && r->cq_map != r->sq_map) munmap(r->cq_map, r->cq_map_len);
  if (r->sq_map != NULL && r->sq_map != MAP_FAILED) munmap(r->sq_map, r->sq_map_len);
  if (r->fd >= 0) close(r->fd);
  r->sqes = NULL;
  r->sq_map = r->cq_map = NULL;
  r->fd = -1;
}

static void ring_finalize(napi_env env, void *data, void *hint) {
  struct ring *r = data;
  ring_unmap(r);
  free(r);
}

static int enter(int fd, unsigned submit, unsigned min_complete, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, fd, submit, min_complete, flags, NULL, 0);
}

static struct ring *get_ring(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    throw_type(env, "ring must be a ring from uringSetup");
    return NULL;
  }
  struct ring *r = data;
  if (r->fd < 0) {
    throw_type(env, "the ring is closed");
    return NULL;
  }
  return r;
}

static int get_u64(napi_env env, napi_value v, uint64_t *out, const char *what) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d < 0 || d > 9007199254740991.0) {
    throw_type(env, what);
    return 0;
  }
  *out = (uint64_t)d;
  return 1;
}

/* uringSetup(sqEntries, cqEntries) -> ring (an external) or -errno */
static napi_value n_setup(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t sq_want, cq_want;
  if (!get_i32(env, argv[0], &sq_want, "sqEntries must be a number") || !get_i32(env, argv[1], &cq_want, "cqEntries must be a number")) return NULL;
  if (sq_want < 1 || cq_want < sq_want) return throw_type(env, "sqEntries must be >= 1 and cqEntries >= sqEntries");
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
  p.cq_entries = (unsigned)cq_want;
  int fd = (int)syscall(__NR_io_uring_setup, (unsigned)sq_want, &p);
  if (fd < 0) return num64(env, -errno);
  struct ring *r = calloc(1, sizeof *r);
  if (r == NULL) {
    close(fd);
    return num64(env, -ENOMEM);
  }
  r->fd = fd;
  r->sq_entries = p.sq_entries;
  r->cq_entries = p.cq_entries;
  r->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && r->cq_map_len > r->sq_map_len) r->sq_map_len = r->cq_map_len;
  r->sq_map = mmap(NULL, r->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  int err = 0;
  if (r->sq_map == MAP_FAILED) err = errno;
  if (!err) {
    r->cq_map = single ? r->sq_map : mmap(NULL, r->cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (r->cq_map == MAP_FAILED) err = errno;
  }
  if (!err) {
    r->sqes_len = (size_t)p.sq_entries * SQE_BYTES;
    r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED) err = errno;
  }
  if (err) {
    ring_unmap(r);
    free(r);
    return num64(env, -err);
  }
  uint8_t *sq = r->sq_map, *cq = r->cq_map;
  r->sq_head = (unsigned *)(sq + p.sq_off.head);
  r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
  r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  r->sq_array = (unsigned *)(sq + p.sq_off.array);
  r->sq_flags = (unsigned *)(sq + p.sq_off.flags);
  r->cq_head = (unsigned *)(cq + p.cq_off.head);
  r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
  r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  napi_value ext;
  if (napi_create_external(env, r, ring_finalize, NULL, &ext) != napi_ok) {
    ring_unmap(r);
    free(r);
    return NULL;
  }
  return ext;
}

/* Hand the written SQEs to the kernel (no waiting); 0 or -errno. */
static int submit_pending(struct ring *r) {
  while (r->pending > 0) {
    int n = enter(r->fd, r->pending, 0, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EBUSY;
    r->pending -= (unsigned)n;
  }
  return 0;
}

/* A zeroed SQE at the tail (submitting first when the ring is full), or NULL with *err set. */
static uint8_t *next_sqe(struct ring *r, int *err) {
  unsigned tail = *r->sq_tail;
  unsigned head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
  if (tail - head >= r->sq_entries) {
    int e = submit_pending(r);
    if (e < 0) {
      *err = e;
      return NULL;
    }
    head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
    if (tail - head >= r->sq_entries) {
      *err = -EBUSY;
      return NULL;
    }
  }
  unsigned idx = tail & *r->sq_mask;
  uint8_t *sqe = r->sqes + (size_t)idx * SQE_BYTES;
  memset(sqe, 0, SQE_BYTES);
  r->sq_array[idx] = idx;
  return sqe;
}

static void push_sqe(struct ring *r) {
  __atomic_store_n(r->sq_tail, *r->sq_tail + 1, __ATOMIC_RELEASE);
  r->pending++;
}

/*
 * uringCmd(ring, fd, cmdOp, userData, iov, cmd) -> 0 or -errno: an IORING_OP_URING_CMD on `fd`.
 * `iov`: null, or a Buffer holding a struct iovec array (sqe->addr = its address, sqe->len = its
 * count); it must stay alive until the kernel has read it (the caller keeps it). `cmd`: up to 80
 * bytes copied into the SQE's command area.
 */
static napi_value n_cmd(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  struct ring *r = get_ring(env, argv[0]);
  if (r == NULL) return NULL;
  int32_t fd, op;
  uint64_t user_data;
  if (!get_i32(env, argv[1], &fd, "fd must be a number") || !get_i32(env, argv[2], &op, "cmdOp must be a number") ||
      !get_u64(env, argv[3], &user_data, "userData must be a whole number"))
    return NULL;
  napi_valuetype t;
  void *iov = NULL, *cmd = NULL;
  size_t iov_len = 0, cmd_len = 0;
  if (napi_typeof(env, argv[4], &t) != napi_ok) return NULL;
  if (t != napi_null && t != napi_undefined && !get_buf(env, argv[4], &iov, &iov_len, "iov must be a Buffer or null")) return NULL;
  if (!get_buf(env, argv[5], &cmd, &cmd_len, "cmd must be a Buffer")) return NULL;
  if (cmd_len > SQE_BYTES - SQE_CMD_AT) return throw_type(env, "cmd is longer than the SQE's command area (80 bytes)");
  int err = 0;
  uint8_t *sqe = next_sqe(r, &err);
  if (sqe == NULL) return num64(env, err);
  struct io_uring_sqe *s = (struct io_uring_sqe *)sqe;
  s->opcode = IORING_OP_URING_CMD;
  s->fd = fd;
  s->cmd_op = (uint32_t)op;
  if (iov != NULL) {
    s->addr = (uint64_t)(uintptr_t)iov;
    s->len = (uint32_t)(iov_len / sizeof(struct iovec));
  }
  s->user_data = user_data;
  memcpy(sqe + SQE_CMD_AT, cmd, cmd_len);
  push_sqe(r);
  return num64(env, 0);
}

/* uringPollIn(ring, fd, userData) -> 0 or -errno: a one-shot POLL_ADD for POLLIN. */
static napi_value n_poll_in(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  struct ring *r = get_ring(env, argv[0]);
  if (r == NULL) return NULL;
  int32_t fd;
  uint64_t user_data;
  if (!get_i32(env, argv[1], &fd, "fd must be a number") || !get_u64(env, argv[2], &user_data, "userData must be a whole number")) return NULL;
  int err = 0;
  uint8_t *sqe = next_sqe(r, &err);
  if (sqe == NULL) return num64(env, err);
  struct io_uring_sqe *s = (struct io_uring_sqe *)sqe;
  s->opcode = IORING_OP_POLL_ADD;
  s->fd = fd;
  s->poll32_events = POLLIN;
  s->user_data = user_data;
  push_sqe(r);
  return num64(env, 0);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static unsigned cq_ready(struct ring *r) {
  return __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE) - *r->cq_head;
}

/*
 * uringEnter(ring, wait, spinUs, out) -> completions copied into `out` (16 bytes each: user_data
 * low and high 32 bits, res, flags; as many as fit) or -errno. Submits what was queued; with
 * `wait`, and no completion there yet, first polls the ring for spinUs microseconds (entering the
 * kernel without waiting, which runs the task work that posts completions), then
 * sleeps in io_uring_enter until one arrives. Without spinning, submitting and waiting are one
 * system call.
 */
static napi_value n_enter(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  struct ring *r = get_ring(env, argv[0]);
  if (r == NULL) return NULL;
  bool wait;
  int32_t spin_us;
  void *out;
  size_t out_len;
  if (napi_get_value_bool(env, argv[1], &wait) != napi_ok) return throw_type(env, "wait must be a boolean");
  if (!get_i32(env, argv[2], &spin_us, "spinUs must be a number") || !get_buf(env, argv[3], &out, &out_len, "out must be a Buffer")) return NULL;
  unsigned cap = (unsigned)(out_len / CQE_OUT_BYTES);
  if (cap == 0) return throw_type(env, "out holds no completion");
  int e;
  if (wait && cq_ready(r) == 0 && spin_us <= 0) {
    /* submit and wait in one call */
    for (;;) {
      int n = enter(r->fd, r->pending, 1, IORING_ENTER_GETEVENTS);
      if (n >= 0) {
        r->pending -= (unsigned)n > r->pending ? r->pending : (unsigned)n;
        if (r->pending == 0 || cq_ready(r) > 0) break;
        continue;
      }
      if (errno == EINTR) {
        if (cq_ready(r) > 0) break;
        continue;
      }
      if (errno == EBUSY || errno == EAGAIN) {
        if (cq_ready(r) > 0) break;
      }
      return num64(env, -errno);
    }
  } else {
    e = submit_pending(r);
    if (e < 0 && cq_ready(r) == 0) return num64(env, e);
    if (wait && cq_ready(r) == 0) {
      int64_t deadline = now_ns() + (int64_t)spin_us * 1000;
      /* each turn enters the kernel (GETEVENTS, no wait): that runs the task work that posts a
         delivered request at once, where a pure memory spin would wait for the kernel's IPI */
      while (cq_ready(r) == 0 && now_ns() < deadline) enter(r->fd, 0, 0, IORING_ENTER_GETEVENTS);
      while (cq_ready(r) == 0) {
        int n = enter(r->fd, 0, 1, IORING_ENTER_GETEVENTS);
        if (n < 0 && errno != EINTR) return num64(env, -errno);
      }
    }
  }
  unsigned head = *r->cq_head;
  unsigned ready = cq_ready(r);
  unsigned n = ready < cap ? ready : cap;
  uint32_t *o = out;
  for (unsigned i = 0; i < n; i++) {
    struct io_uring_cqe *c = &r->cqes[(head + i) & *r->cq_mask];
    o[i * 4] = (uint32_t)c->user_data;
    o[i * 4 + 1] = (uint32_t)(c->user_data >> 32);
    o[i * 4 + 2] = (uint32_t)c->res;
    o[i * 4 + 3] = c->flags;
  }
  __atomic_store_n(r->cq_head, head + n, __ATOMIC_RELEASE);
  return num64(env, n);
}

/* uringClose(ring): unmap and close (the commands in flight are cancelled by the kernel). */
static napi_value n_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  void *data = NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) return throw_type(env, "ring must be a ring from uringSetup");
  ring_unmap((struct ring *)data);
  return NULL;
}

/* uringIovec(iov, index, buf): store buf's address and length as iovec `index` of the Buffer `iov`. */
static napi_value n_iovec(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  void *iov, *buf;
  size_t iov_len, buf_len;
  int32_t index;
  if (!get_buf(env, argv[0], &iov, &iov_len, "iov must be a Buffer") || !get_i32(env, argv[1], &index, "index must be a number") ||
      !get_buf(env, argv[2], &buf, &buf_len, "buf must be a Buffer"))
    return NULL;
  if (index < 0 || (size_t)(index + 1) * sizeof(struct iovec) > iov_len) return throw_type(env, "index out of range");
  struct iovec *v = (struct iovec *)iov + index;
  v->iov_base = buf;
  v->iov_len = buf_len;
  return NULL;
}

void register_uring(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"uringSetup", NULL, n_setup, NULL, NULL, NULL, napi_enumerable, NULL},
      {"uringCmd", NULL, n_cmd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"uringPollIn", NULL, n_poll_in, NULL, NULL, NULL, napi_enumerable, NULL},
      {"uringEnter", NULL, n_enter, NULL, NULL, NULL, napi_enumerable, NULL},
      {"uringClose", NULL, n_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"uringIovec", NULL, n_iovec, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}
