/*
 * layerfs-supervisor: the parent of the resident daemon, holding every mount's /dev/fuse fd so a
 * daemon that dies does not take the mounts with it (docs: README "Surviving a daemon crash").
 *
 *   layerfs-supervisor SUPERVISOR_PIDFILE DAEMON_PIDFILE NODE DAEMON_MAIN
 *
 * It does nothing that can fail in a way that matters: it keeps a list of (mount id, fd, blob), and
 * starts daemons. Each daemon gets one end of a SOCK_SEQPACKET socketpair as its fd 3
 * ($LAYERFS_SUPERVISOR_FD=3). Messages, one datagram each:
 *   daemon -> supervisor
 *     "A" ID "\0" BLOB  + SCM_RIGHTS fd   a mount is live: hold its fd (BLOB: what the daemon needs
 *                                          to serve it again, opaque here)
 *     "D" ID                               the mount ended: close the fd
 *     "R"                                  restart (upgrade): the daemon exits 0 next; start a new one
 *   supervisor -> daemon (first thing a daemon reads; a standby daemon blocks on it)
 *     "A" ID "\0" BLOB  + fd               per held mount
 *     "G" COUNT "\t" REASON "\t" TIME      go: serve (restarts so far, why the last one, when)
 * When the serving daemon exits by a signal or a non-zero status (or 0 after "R") while mounts are
 * held, the standby daemon (already started, waiting on its socket: no Node start-up to pay) or a
 * new one gets them. The daemon exiting 0 with no mount held is the idle exit: the supervisor exits.
 * Its own session, the daemons in their own process groups: a signal to the daemon's group never
 * reaches it. Only libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "fd-pass.h"
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX (256 * 1024)
/*
 * The next standby daemon is started this long after a takeover (the new daemon resumes first).
 * 200 ms: recovery p50 ~13 ms, p95 ~16-18 ms in the kill loop (1,000 ms: ~190 / ~250 ms, as kills
 * 150-600 ms apart often found no standby); docs/performance.md "When the standby is started".
 */
#define STANDBY_DELAY_MS 200

struct mount {
  char *id;
  int fd;
  char *blob;
  size_t blob_len;
};

struct daemon {
  pid_t pid;
  int sock;
  int closed; /* its socket reached EOF */
  long long started_ms;
};

static struct mount *mounts;
static size_t nmounts, cap_mounts;
static struct daemon active = {0, -1, 1, 0}, standby = {0, -1, 1, 0};
static const char *sup_pidfile, *daemon_pidfile, *node_path, *daemon_main;
static int sigpipe_fds[2];
static int upgrade_asked;
static int stop_asked;
static pid_t dead_daemon; /* the last daemon that ended (its pid file is ours to remove) */ /* SIGTERM/INT/HUP: the daemon was told to stop; follow it, never restart */
static unsigned restarts;
static char last_reason[64] = "-";
static char last_time[32] = "-";
static long long standby_due; /* when to start a standby (ms), 0: none due */
static int early_crashes;
static unsigned char msgbuf[MSG_MAX];

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(line, sizeof line, "layerfs supervisor %d: ", (int)getpid());
  if (n < 0) n = 0;
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  ssize_t w = write(2, line, len);
  (void)w;
}

static void on_signal(int sig) {
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  ssize_t w = write(sigpipe_fds[1], &b, 1);
  (void)w;
  errno = saved;
}

/* Write PID into PATH atomically (tmp + rename). */
static void write_pidfile(const char *path, pid_t pid) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  char text[32];
  int n = snprintf(text, sizeof text, "%d\n", (int)pid);
  ssize_t w = write(fd, text, (size_t)n);
  (void)w;
  close(fd);
  if (rename(tmp, path) < 0) unlink(tmp);
}

static pid_t read_pid(const char *path) {
  char text[32] = {0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  return (pid_t)atoi(text);
}

/* Remove PATH if it still names PID. */
static void drop_pidfile(const char *path, pid_t pid) {
  if (read_pid(path) == pid) unlink(path);
}

/*
 * The supervisor's lock: its pid file, made whole under a temporary name and linked into place
 * (link(2) fails when the name exists), so that no other supervisor ever reads it empty (a lock
 * created first and written after was seen empty, taken for stale and removed: two supervisors
 * and two daemons, the pid file naming the one not serving). A stale one (dead pid) is replaced.
 */
static int take_lock(void) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.%d.tmp", sup_pidfile, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return 0;
  char text[32];
  int n = snprintf(text, sizeof text, "%d\n", (int)getpid());
  ssize_t w = write(fd, text, (size_t)n);
  close(fd);
  int taken = 0;
  for (int attempt = 0; w == n && attempt < 5; attempt++) {
    if (link(tmp, sup_pidfile) == 0) {
      taken = 1;
      break;
    }
    if (errno != EEXIST) break;
    pid_t holder = read_pid(sup_pidfile);
    if (holder > 0 && (kill(holder, 0) == 0 || errno == EPERM)) break;
    if (read_pid(sup_pidfile) == holder) unlink(sup_pidfile);
  }
  unlink(tmp);
  return taken;
}

static struct daemon spawn_daemon(void) {
  struct daemon d = {0, -1, 1, 0};
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    logf_("socketpair: %s", strerror(errno));
    return d;
  }
  pid_t pid = fork();
  if (pid < 0) {
    logf_("fork: %s", strerror(errno));
    close(sv[0]);
    close(sv[1]);
    return d;
  }
  if (pid == 0) {
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(sv[1], 3) < 0) _exit(127);
    setenv("LAYERFS_SUPERVISOR_FD", "3", 1);
    char *argv[] = {(char *)node_path, (char *)daemon_main, NULL};
    execv(node_path, argv);
    _exit(127);
  }
  close(sv[1]);
  d.pid = pid;
  d.sock = sv[0];
  d.closed = 0;
  d.started_ms = now_ms();
  return d;
}

static int send_msg(int sock, const void *a, size_t alen, const void *b, size_t blen, int fd) {
  struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
  return fdpass_send(sock, iov, blen > 0 ? 2 : 1, fd) < 0 ? -1 : 0;
}

/* Give daemon `d` every held mount, then "go"; it serves from now on. */
static int activate(struct daemon *d) {
  for (size_t i = 0; i < nmounts; i++) {
    size_t idlen = strlen(mounts[i].id);
    unsigned char head[300];
    if (idlen + 2 > sizeof head) continue;
    head[0] = 'A';
    memcpy(head + 1, mounts[i].id, idlen + 1);
    if (send_msg(d->sock, head, idlen + 2, mounts[i].blob, mounts[i].blob_len, mounts[i].fd) < 0) return -1;
  }
  char go[160];
  int n = snprintf(go, sizeof go, "G%u\t%s\t%s", restarts, last_reason, last_time);
  if (send_msg(d->sock, go, (size_t)n, NULL, 0, -1) < 0) return -1;
  write_pidfile(daemon_pidfile, d->pid);
  d->started_ms = now_ms();
  return 0;
}

static void drop_mount(size_t i) {
  close(mounts[i].fd);
  free(mounts[i].id);
  free(mounts[i].blob);
  mounts[i] = mounts[--nmounts];
}

static void add_mount(const char *id, const unsigned char *blob, size_t blob_len, int fd) {
  for (size_t i = 0; i < nmounts; i++) {
    if (strcmp(mounts[i].id, id) == 0) {
      drop_mount(i);
      break;
    }
  }
  if (nmounts == cap_mounts) {
    size_t cap = cap_mounts ? cap_mounts * 2 : 8;
    struct mount *m = realloc(mounts, cap * sizeof *m);
    if (m == NULL) {
      close(fd);
      return;
    }
    mounts = m;
    cap_mounts = cap;
  }
  char *idc = strdup(id);
  char *b = malloc(blob_len ? blob_len : 1);
  if (idc == NULL || b == NULL) {
    free(idc);
    free(b);
    close(fd);
    return;
  }
  memcpy(b, blob, blob_len);
  mounts[nmounts++] = (struct mount){idc, fd, b, blob_len};
}

/* One message from the serving daemon; 0 when there was none (or it closed). */
static int read_active(void) {
  int fd;
  ssize_t n = fdpass_recv(active.sock, msgbuf, sizeof msgbuf - 1, MSG_DONTWAIT, &fd);
  if (n < 0 && errno == EAGAIN) return 0;
  if (n <= 0) {
    if (fd >= 0) close(fd);
    active.closed = 1; /* EOF: the daemon is gone or going; SIGCHLD says how */
    return 0;
  }
  msgbuf[n] = 0;
  if (msgbuf[0] == 'A') {
    size_t idlen = strnlen((char *)msgbuf + 1, (size_t)n - 1);
    if (fd < 0 || idlen + 1 >= (size_t)n) {
      if (fd >= 0) close(fd);
      logf_("malformed mount message");
      return 1;
    }
    add_mount((char *)msgbuf + 1, msgbuf + idlen + 2, (size_t)n - idlen - 2, fd);
    if (standby.pid == 0 && standby_due == 0) standby_due = now_ms() + STANDBY_DELAY_MS;
    return 1;
  }
  if (fd >= 0) close(fd);
  if (msgbuf[0] == 'D') {
    for (size_t i = 0; i < nmounts; i++) {
      if (strcmp(mounts[i].id, (char *)msgbuf + 1) == 0) {
        drop_mount(i);
        break;
      }
    }
  } else if (msgbuf[0] == 'R') {
    upgrade_asked = 1;
  }
  return 1;
}

static void close_daemon(struct daemon *d) {
  if (d->sock >= 0) close(d->sock);
  *d = (struct daemon){0, -1, 1, 0};
}

static void describe(int status, char *out, size_t len) {
  if (WIFSIGNALED(status)) {
    const char *name = sigabbrev_np(WTERMSIG(status));
    if (name) snprintf(out, len, "killed by SIG%s", name);
    else snprintf(out, len, "killed by signal %d", WTERMSIG(status));
  } else if (WIFEXITED(status)) {
    snprintf(out, len, "exit %d", WEXITSTATUS(status));
  } else {
    snprintf(out, len, "status %d", status);
  }
}

static void finish(int code) {
  if (dead_daemon > 0) drop_pidfile(daemon_pidfile, dead_daemon);
  if (standby.pid > 0) kill(standby.pid, SIGTERM);
  drop_pidfile(sup_pidfile, getpid());
  exit(code);
}

/* The serving daemon ended with `status`: hand the mounts to another one, or exit when idle. */
static void active_ended(int status) {
  pid_t dead = active.pid;
  while (!active.closed && read_active()) {
    /* what it said before it ended counts */
  }
  char reason[64];
  describe(status, reason, sizeof reason);
  int upgrade = upgrade_asked && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  long long lived = now_ms() - active.started_ms;
  close_daemon(&active);
  upgrade_asked = 0;
  /* the pid file keeps naming the dead daemon until the next one is written over it (no moment
     without one); removed only when no daemon follows */
  dead_daemon = dead;
  if (stop_asked) finish(0);
  if (nmounts == 0 && !upgrade) {
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) logf_("daemon %d ended (%s) with no mount: exiting", (int)dead, reason);
    finish(0);
  }
  if (upgrade) snprintf(reason, sizeof reason, "upgrade");
  /* a daemon that crashes by itself right after taking over, again and again, would never serve */
  int self_inflicted = !upgrade && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  early_crashes = self_inflicted && lived < 2000 ? early_crashes + 1 : 0;
  if (early_crashes >= 5) {
    logf_("daemon %d ended (%s) %d times in a row right after start: giving up, the mounts will fail", (int)dead, reason, early_crashes);
    finish(1);
  }
  restarts++;
  snprintf(last_reason, sizeof last_reason, "%s", reason);
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(last_time, sizeof last_time, "%Y-%m-%dT%H:%M:%SZ", &tm);
  /* an upgrade needs the new build: the standby runs the old one */
  if (upgrade && standby.pid > 0) {
    kill(standby.pid, SIGKILL);
    close_daemon(&standby);
  }
  struct daemon next = standby.pid > 0 && !standby.closed ? standby : spawn_daemon();
  if (next.pid == standby.pid) standby = (struct daemon){0, -1, 1, 0};
  if (next.pid <= 0 || activate(&next) < 0) {
    logf_("cannot start a daemon to take over (%s): the mounts will fail", strerror(errno));
    if (next.pid > 0) kill(next.pid, SIGKILL);
    finish(1);
  }
  active = next;
  logf_("daemon %d ended (%s): daemon %d serves %zu mount%s", (int)dead, reason, (int)active.pid, nmounts, nmounts == 1 ? "" : "s");
  standby_due = now_ms() + STANDBY_DELAY_MS;
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == active.pid) active_ended(status);
    else if (pid == standby.pid) {
      char reason[64];
      describe(status, reason, sizeof reason);
      if (!stop_asked) logf_("standby daemon %d ended (%s)", (int)pid, reason);
      close_daemon(&standby);
      if (nmounts > 0) standby_due = now_ms() + STANDBY_DELAY_MS;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: layerfs-supervisor SUPERVISOR_PIDFILE DAEMON_PIDFILE NODE DAEMON_MAIN\n");
    return 2;
  }
  sup_pidfile = argv[1];
  daemon_pidfile = argv[2];
  node_path = argv[3];
  daemon_main = argv[4];
  setsid();
  if (!take_lock()) return 0; /* another supervisor serves this runtime dir and namespace */
  if (chdir("/") < 0) { /* keep the cwd */
  }
  if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0) finish(1);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  active = spawn_daemon();
  if (active.pid <= 0 || activate(&active) < 0) finish(1);
  for (;;) {
    struct pollfd p[3] = {{sigpipe_fds[0], POLLIN, 0}, {active.closed ? -1 : active.sock, POLLIN, 0}, {standby.closed ? -1 : standby.sock, POLLIN, 0}};
    int timeout = -1;
    if (standby_due > 0) {
      long long left = standby_due - now_ms();
      timeout = left < 0 ? 0 : (int)left;
    }
    int n = poll(p, 3, timeout);
    if (n < 0 && errno != EINTR) finish(1);
    if (n > 0 && p[0].revents) {
      unsigned char sigs[64];
      ssize_t got = read(sigpipe_fds[0], sigs, sizeof sigs);
      for (ssize_t i = 0; i < got; i++) {
        /* stop: the daemon unmounts everything and exits 0; we follow */
        if (sigs[i] != SIGCHLD) {
          stop_asked = 1;
          if (active.pid > 0) kill(active.pid, SIGTERM);
        }
      }
    }
    if (n > 0 && p[1].revents) {
      /* drain what the daemon said before anything ends it */
      read_active();
    }
    if (n > 0 && p[2].revents) {
      standby.closed = 1; /* a standby says nothing: EOF means it is dying */
    }
    reap();
    if (standby_due > 0 && now_ms() >= standby_due) {
      standby_due = 0;
      if (standby.pid == 0 && nmounts > 0) standby = spawn_daemon();
    }
  }
}
