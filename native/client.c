/*
 * layerfs-client: the fast path of `layerfs` for a plain background mount, without starting Node.
 *
 *   layerfs-client NODE MAIN ARGS...     (bin/layerfs runs it so; ARGS are the user's arguments)
 *
 * It recognises exactly the forms src/cli/mount-fast.ts plainMount() takes: `mount [SOURCE] MNT -o
 * OPTS`, the mount(8)/mount.fuse3 helper form `SOURCE MNT -o OPTS` and the fuse-overlayfs form `-o
 * OPTS MNT`; sends the same one-line JSON request to the resident daemon's socket (the runtime dir
 * as src/fuse/runtime-dir.ts runDir() chooses it, the name as src/daemon/paths.ts), and prints the
 * reply's one line as the Node client does. Anything else (another command, an option it does not
 * know, a path that is not UTF-8, no daemon answering, any failure before the request is sent)
 * execs `NODE MAIN ARGS...`, which does it all (and starts the daemon). No other logic here.
 *
 * Each request carries a token (random hex). When the daemon takes the request and dies before
 * answering (the supervisor starts a new one), Node sends it again with the same token
 * ($LAYERFS_MOUNT_TOKEN): the new daemon answers a token it already mounted with that mount.
 *
 * LAYERFS_CLIENT_TRACE=1 prints the way taken on stderr (`layerfs-client: daemon` or
 * `layerfs-client: node (why)`).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE (1 << 20) /* src/daemon/protocol.ts MAX_LINE */
#define REPLY_TIMEOUT_MS 60000
#define REPLY_TIMEOUT_S "60"

static char **node_argv;
static int trace;

/* ---- small growable buffer ------------------------------------------------------------------ */

struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const void *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + n + 1 > cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      fputs("layerfs: out of memory\n", stderr);
      exit(1);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* ---- the Node way ----------------------------------------------------------------------------- */

static void to_node(const char *why) {
  if (trace) fprintf(stderr, "layerfs-client: node (%s)\n", why);
  execv(node_argv[0], node_argv);
  fprintf(stderr, "layerfs: cannot start %s: %s\n", node_argv[0], strerror(errno));
  exit(1);
}

/* ---- checks ----------------------------------------------------------------------------------- */

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF): what Node decodes to the same bytes. */
static int valid_utf8(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p;
    int n;
    unsigned min;
    if (c < 0x80) {
      p++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, min = 0x80, c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, min = 0x800, c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, min = 0x10000, c &= 0x07;
    } else {
      return 0;
    }
    for (int i = 1; i <= n; i++) {
      if ((p[i] & 0xc0) != 0x80) return 0;
      c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    p += n + 1;
  }
  return 1;
}

/* A `..` path component: path.join() in Node would fold it lexically, the kernel does not. */
static int has_dotdot(const char *s) {
  for (const char *p = s; (p = strstr(p, "..")) != NULL; p += 2) {
    if ((p == s || p[-1] == '/') && (p[2] == 0 || p[2] == '/')) return 1;
  }
  return 0;
}

/* ---- where the daemon listens (src/fuse/runtime-dir.ts runDir, src/daemon/paths.ts) -------- */

/* euid 0 of the initial user namespace (src/sys/privilege.ts). */
static int initial_user_ns(void) {
  FILE *f = fopen("/proc/self/uid_map", "r");
  if (!f) return 1;
  char text[4096];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  char *s = text;
  while (*s == ' ' || *s == '\t' || *s == '\n') s++;
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n')) *--e = 0;
  if (strchr(s, '\n')) return 0;
  char a[32], b[32], c[32];
  if (sscanf(s, "%31s %31s %31s", a, b, c) != 3) return 0;
  return strcmp(a, "0") == 0 && strcmp(b, "0") == 0 && strcmp(c, "4294967295") == 0;
}

static void run_dir(struct buf *dir) {
  const char *env = getenv("LAYERFS_RUN_DIR");
  if (env && *env) {
    puts_(dir, env);
    return;
  }
  uid_t uid = geteuid();
  if (uid == 0 && initial_user_ns()) {
    puts_(dir, "/run/layerfs");
    return;
  }
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  if (xdg && xdg[0] == '/') {
    puts_(dir, xdg);
    puts_(dir, "/layerfs");
    return;
  }
  char user_run[64];
  snprintf(user_run, sizeof user_run, "/run/user/%u", (unsigned)uid);
  struct stat st;
  if (stat(user_run, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid) {
    puts_(dir, user_run);
    puts_(dir, "/layerfs");
    return;
  }
  char tmp[64];
  snprintf(tmp, sizeof tmp, "/tmp/layerfs-%u", (unsigned)uid);
  puts_(dir, tmp);
}

/* ---- JSON ------------------------------------------------------------------------------------- */

static void json_string(struct buf *b, const char *s) {
  put(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[8];
    switch (*p) {
      case '"': puts_(b, "\\\""); break;
      case '\\': puts_(b, "\\\\"); break;
      case '\n': puts_(b, "\\n"); break;
      case '\r': puts_(b, "\\r"); break;
      case '\t': puts_(b, "\\t"); break;
      case '\b': puts_(b, "\\b"); break;
      case '\f': puts_(b, "\\f"); break;
      default:
        if (*p < 0x20) {
          snprintf(esc, sizeof esc, "\\u%04x", *p);
          puts_(b, esc);
        } else {
          put(b, p, 1); /* valid UTF-8, checked before */
        }
    }
  }
  put(b, "\"", 1);
}

/* A reply parser for what protocol.ts Reply holds: any JSON is skipped, strings are decoded. */
struct reader {
  const char *p, *end;
};

static void ws(struct reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static void put_utf8(struct buf *b, unsigned c) {
  unsigned char u[4];
  size_t n;
  if (c < 0x80) u[0] = (unsigned char)c, n = 1;
  else if (c < 0x800) u[0] = (unsigned char)(0xc0 | (c >> 6)), u[1] = (unsigned char)(0x80 | (c & 0x3f)), n = 2;
  else if (c < 0x10000) u[0] = (unsigned char)(0xe0 | (c >> 12)), u[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f)), u[2] = (unsigned char)(0x80 | (c & 0x3f)), n = 3;
  else u[0] = (unsigned char)(0xf0 | (c >> 18)), u[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f)), u[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f)), u[3] = (unsigned char)(0x80 | (c & 0x3f)), n = 4;
  put(b, u, n);
}

/* A JSON string at r->p into out (when not NULL); a lone surrogate becomes U+FFFD as Node writes it. */
static int parse_string(struct reader *r, struct buf *out) {
  if (r->p >= r->end || *r->p != '"') return 0;
  r->p++;
  while (r->p < r->end) {
    unsigned char c = (unsigned char)*r->p++;
    if (c == '"') return 1;
    if (c < 0x20) return 0;
    if (c != '\\') {
      if (out) put(out, &c, 1);
      continue;
    }
    if (r->p >= r->end) return 0;
    char e = *r->p++;
    const char *simple = NULL;
    switch (e) {
      case '"': simple = "\""; break;
      case '\\': simple = "\\"; break;
      case '/': simple = "/"; break;
      case 'b': simple = "\b"; break;
      case 'f': simple = "\f"; break;
      case 'n': simple = "\n"; break;
      case 'r': simple = "\r"; break;
      case 't': simple = "\t"; break;
      case 'u': break;
      default: return 0;
    }
    if (simple) {
      if (out) puts_(out, simple);
      continue;
    }
    unsigned u;
    if (r->end - r->p < 4 || !hex4(r->p, &u)) return 0;
    r->p += 4;
    if (u >= 0xd800 && u <= 0xdbff && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u') {
      unsigned lo;
      if (hex4(r->p + 2, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
        r->p += 6;
        u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
      }
    }
    if (u >= 0xd800 && u <= 0xdfff) u = 0xfffd;
    if (out) put_utf8(out, u);
  }
  return 0;
}

static int skip_value(struct reader *r, int depth);

static int skip_container(struct reader *r, int depth, char close, int keyed) {
  r->p++;
  ws(r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    return 1;
  }
  for (;;) {
    ws(r);
    if (keyed) {
      if (!parse_string(r, NULL)) return 0;
      ws(r);
      if (r->p >= r->end || *r->p != ':') return 0;
      r->p++;
    }
    if (!skip_value(r, depth + 1)) return 0;
    ws(r);
    if (r->p >= r->end) return 0;
    if (*r->p == ',') {
      r->p++;
      continue;
    }
    if (*r->p == close) {
      r->p++;
      return 1;
    }
    return 0;
  }
}

static int skip_value(struct reader *r, int depth) {
  ws(r);
  if (r->p >= r->end || depth > 64) return 0;
  char c = *r->p;
  if (c == '"') return parse_string(r, NULL);
  if (c == '{') return skip_container(r, depth, '}', 1);
  if (c == '[') return skip_container(r, depth, ']', 0);
  static const char *const words[] = {"true", "false", "null"};
  for (size_t i = 0; i < 3; i++) {
    size_t n = strlen(words[i]);
    if ((size_t)(r->end - r->p) >= n && memcmp(r->p, words[i], n) == 0) {
      r->p += n;
      return 1;
    }
  }
  const char *start = r->p;
  while (r->p < r->end && strchr("+-0123456789.eE", *r->p)) r->p++;
  return r->p > start;
}

/* The reply's ok (1/0), warning and message. -1: not a reply object. */
static int parse_reply(const char *line, size_t len, struct buf *warning, struct buf *message, int *has_message) {
  struct reader r = {line, line + len};
  int ok = -1;
  ws(&r);
  if (r.p >= r.end || *r.p != '{') return -1;
  r.p++;
  ws(&r);
  if (r.p < r.end && *r.p == '}') return -1;
  for (;;) {
    ws(&r);
    struct buf key = {0};
    if (!parse_string(&r, &key)) return free(key.p), -1;
    ws(&r);
    if (r.p >= r.end || *r.p != ':') return free(key.p), -1;
    r.p++;
    ws(&r);
    const char *k = key.p ? key.p : "";
    if (strcmp(k, "ok") == 0 && (size_t)(r.end - r.p) >= 4 && memcmp(r.p, "true", 4) == 0) ok = 1, r.p += 4;
    else if (strcmp(k, "ok") == 0 && (size_t)(r.end - r.p) >= 5 && memcmp(r.p, "false", 5) == 0) ok = 0, r.p += 5;
    else if (strcmp(k, "ok") == 0) return free(key.p), -1;
    else if (strcmp(k, "warning") == 0 && r.p < r.end && *r.p == '"') {
      warning->len = 0;
      if (!parse_string(&r, warning)) return free(key.p), -1;
    } else if (strcmp(k, "message") == 0 && r.p < r.end && *r.p == '"') {
      message->len = 0;
      if (!parse_string(&r, message)) return free(key.p), -1;
      *has_message = 1;
    } else if (!skip_value(&r, 0)) return free(key.p), -1;
    free(key.p);
    ws(&r);
    if (r.p >= r.end) return -1;
    if (*r.p == ',') {
      r.p++;
      continue;
    }
    if (*r.p != '}') return -1;
    r.p++;
    ws(&r);
    return r.p == r.end ? ok : -1;
  }
}

/* ---- the exchange ----------------------------------------------------------------------------- */

static const char *mountpoint_arg;

/* The Node client's error line: `layerfs: mount MNT: WHAT WHAT2`; status 1. */
static int fail(const char *what, const char *what2) {
  struct buf b = {0};
  puts_(&b, "layerfs: mount ");
  puts_(&b, mountpoint_arg);
  puts_(&b, ": ");
  puts_(&b, what);
  puts_(&b, what2);
  puts_(&b, "\n");
  ssize_t w = write(2, b.p, b.len);
  (void)w;
  return 1;
}

static const char *errno_code(int e) {
  switch (e) {
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return "EIO";
  }
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fputs("usage: layerfs-client NODE MAIN [ARGS...] (run by bin/layerfs)\n", stderr);
    return 2;
  }
  const char *t = getenv("LAYERFS_CLIENT_TRACE");
  trace = t && *t && strcmp(t, "0") != 0;
  node_argv = argv + 1;
  const char *no = getenv("LAYERFS_NO_CLIENT");
  if (no && *no && strcmp(no, "0") != 0) to_node("LAYERFS_NO_CLIENT");

  /* plainMount(): -o/--options values joined by ',', every other dash word leaves */
  int n = argc - 3;
  char **args = argv + 3;
  const char *pos[3];
  int npos = 0, nopts = 0;
  struct buf opts = {0};
  for (int i = 0; i < n; i++) {
    const char *a = args[i];
    const char *v = NULL;
    if (strcmp(a, "-o") == 0 || strcmp(a, "--options") == 0) {
      if (i + 1 >= n) to_node("-o without a value");
      v = args[++i];
    } else if (strncmp(a, "--options=", 10) == 0) {
      v = a + 10;
    } else if (strncmp(a, "-o", 2) == 0 && a[2]) {
      v = a + 2;
    } else if (a[0] == '-') {
      to_node("an option the client does not take");
    } else {
      if (npos == 3) to_node("too many arguments");
      pos[npos++] = a;
      continue;
    }
    if (nopts++) put(&opts, ",", 1);
    puts_(&opts, v);
  }
  int first = 0;
  if (npos > 0 && strcmp(pos[0], "mount") == 0) first = 1;
  else if (npos > 0 && (strcmp(pos[0], "tree") == 0 || strcmp(pos[0], "diff") == 0 || strcmp(pos[0], "umount") == 0 || strcmp(pos[0], "unmount") == 0 ||
                        strcmp(pos[0], "info") == 0 || strcmp(pos[0], "layer") == 0 || strcmp(pos[0], "container") == 0 || strcmp(pos[0], "image") == 0 ||
                        strcmp(pos[0], "docker-plugin") == 0 || strcmp(pos[0], "containerd-snapshotter") == 0 || strcmp(pos[0], "help") == 0))
    to_node("another command");
  else if (nopts == 0) to_node("no -o");
  int nargs = npos - first;
  if (nargs < 1 || nargs > 2) to_node("not one mount point");
  /* joined.trim() === '': only whitespace (non-ASCII bytes may be Unicode spaces: Node decides) */
  int blank = 1;
  for (const unsigned char *p = (const unsigned char *)(opts.p ? opts.p : ""); *p; p++)
    if (*p < 0x80 && !strchr(" \t\n\v\f\r", *p)) blank = 0;
  if (blank) to_node("empty options");
  const char *source = nargs == 2 ? pos[first] : NULL;
  mountpoint_arg = pos[first + nargs - 1];

  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) to_node("no cwd");
  if (!valid_utf8(opts.p) || !valid_utf8(mountpoint_arg) || (source && !valid_utf8(source)) || !valid_utf8(cwd)) to_node("not UTF-8");

  struct buf sock = {0};
  run_dir(&sock);
  struct stat ns;
  char name[64];
  snprintf(name, sizeof name, "/daemon-%llu.sock", stat("/proc/self/ns/mnt", &ns) == 0 ? (unsigned long long)ns.st_ino : 0ULL);
  puts_(&sock, name);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (has_dotdot(sock.p) || !valid_utf8(sock.p) || sock.len >= sizeof addr.sun_path) to_node("runtime dir the client does not take");
  memcpy(addr.sun_path, sock.p, sock.len + 1);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) to_node("socket");
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) to_node(errno == ENOENT || errno == ECONNREFUSED ? "no daemon" : "cannot connect");

  /* the request, as runPlainMount sends it */
  unsigned char rnd[16];
  char token[sizeof rnd * 2 + 1];
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) to_node("no random token");
  for (size_t i = 0; i < sizeof rnd; i++) snprintf(token + 2 * i, 3, "%02x", rnd[i]);
  struct buf req = {0};
  puts_(&req, "{\"op\":\"mount\",\"options\":");
  json_string(&req, opts.p);
  puts_(&req, ",\"mountpoint\":");
  json_string(&req, mountpoint_arg);
  puts_(&req, ",\"cwd\":");
  json_string(&req, cwd);
  if (source) {
    puts_(&req, ",\"source\":");
    json_string(&req, source);
  }
  puts_(&req, ",\"token\":\"");
  puts_(&req, token);
  puts_(&req, "\"}\n");
  if (req.len > MAX_LINE) to_node("request too long");
  for (size_t off = 0; off < req.len;) {
    ssize_t w = send(fd, req.p + off, req.len - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    /* nothing acted on yet (the daemon waits for the whole line): Node may try again */
    if (w <= 0) to_node("cannot send");
    off += (size_t)w;
  }
  if (trace) fprintf(stderr, "layerfs-client: daemon\n");

  /* one reply line */
  struct buf line = {0};
  long long deadline = now_ms() + REPLY_TIMEOUT_MS;
  char chunk[4096];
  char *nl = NULL;
  while (!nl) {
    long long left = deadline - now_ms();
    if (left <= 0) return fail("the layerfs daemon did not answer in " REPLY_TIMEOUT_S " s", "");
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, (int)left);
    if (pr < 0 && errno == EINTR) continue;
    if (pr == 0) continue;
    ssize_t got = read(fd, chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if ((got < 0 && errno == ECONNRESET) || (got == 0 && line.len == 0)) {
      /* the daemon died under the request: Node waits for the next one and sends it again */
      if (setenv("LAYERFS_MOUNT_TOKEN", token, 1) != 0) return fail("cannot reach the layerfs daemon: read ", errno_code(errno));
      to_node("the daemon died before answering");
    }
    if (got < 0) return fail("cannot reach the layerfs daemon: read ", errno_code(errno));
    if (got == 0) return fail("the layerfs daemon closed the connection without answering", "");
    size_t before = line.len;
    put(&line, chunk, (size_t)got);
    nl = memchr(line.p + before, '\n', (size_t)got);
    if (!nl && line.len > MAX_LINE) return fail("the layerfs daemon sent an overlong reply", "");
  }
  close(fd);

  struct buf warning = {0}, message = {0};
  int has_message = 0;
  int ok = parse_reply(line.p, (size_t)(nl - line.p), &warning, &message, &has_message);
  if (ok < 0) return fail("the layerfs daemon sent a malformed reply", "");
  if (ok == 1) {
    if (warning.len > 0) {
      put(&warning, "\n", 1);
      ssize_t w = write(2, warning.p, warning.len);
      (void)w;
    }
    return 0;
  }
  return fail(!has_message ? "undefined" : message.p ? message.p : "", "");
}
