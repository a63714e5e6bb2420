/*
 * Passing one fd over a unix socket (SCM_RIGHTS), for the addon (fusermount's fd, the daemon's
 * side of the supervisor link) and for the supervisor executable: plain C, libc only, static
 * inline so each user gets its own copy and the logic stays in one place.
 */
#ifndef LAYERFS_FD_PASS_H
#define LAYERFS_FD_PASS_H
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* One sendmsg(2) of iov[0..iovcnt) with `fd` attached (fd < 0: none), retried on EINTR. Bytes
 * sent, or -1 with errno. */
static inline ssize_t fdpass_send(int sock, struct iovec *iov, int iovcnt, int fd) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  memset(&ctl, 0, sizeof ctl);
  msg.msg_iov = iov;
  msg.msg_iovlen = (size_t)iovcnt;
  if (fd >= 0) {
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n;
}

/* One recvmsg(2) of up to `cap` bytes into `data` (MSG_CMSG_CLOEXEC | `flags`), retried on
 * EINTR. *fd is the first fd the message carried (-1: none); any others are closed. Bytes
 * received (0: the peer closed), or -1 with errno (*fd then -1). */
static inline ssize_t fdpass_recv(int sock, void *data, size_t cap, int flags, int *fd) {
  struct iovec iov = {.iov_base = data, .iov_len = cap};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * 4)];
  } ctl;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  *fd = -1;
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
  while (n < 0 && errno == EINTR);
  if (n < 0) return n;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *fds = (int *)CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) {
      if (*fd < 0) *fd = fds[i];
      else close(fds[i]);
    }
  }
  return n;
}

#endif
