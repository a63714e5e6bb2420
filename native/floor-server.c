/*
 * floor-c: the least a userspace FUSE server can do, for the bench (issue 14).
 *
 * Serves an in-memory copy of a tree read from a dump file (written by bench/floor-c-serve.ts
 * from the merged view of a union), single-threaded, one read(2) and one write(2) of /dev/fuse
 * per request (spinning briefly before it sleeps, as layerfs does), no allocation per request. Its times are the kernel's own cost per
 * request plus the smallest userspace share. It negotiates what layerfs negotiates where it
 * matters for the bench's rows (READDIRPLUS + _AUTO, POSIX_ACL, entry/attr timeouts, max_write).
 *
 *   layerfs-floor-server DUMP MOUNTPOINT [TIMEOUT_S]
 * mounts with mount(2) (root), returns (exit 0) once mounted and keeps serving in a child
 * process until the mount goes away (read gives ENODEV). The dump file is removed once read.
 * With FLOOR_C_COUNTS=FILE in the environment it appends "# MOUNTPOINT" and "opcode count" lines
 * there at exit (one block per mount, in the order the mounts end). FLOOR_C_XATTR_ENOSYS=1 makes
 * GETXATTR/LISTXATTR answer ENOSYS (the kernel then sends none: what their round trips cost).
 * FLOOR_C_SPIN_US (default 50, as layerfs): how long it re-reads after a reply before sleeping.
 *
 * Dump: records of 17 little-endian u64 (ino, parent record, mode, uid, gid, nlink, size, rdev,
 * atime, atimensec, mtime, mtimensec, ctime, ctimensec, name length, link length, branch), then
 * the name and the symlink target; record 0 is the root, every parent before its children.
 * `branch`: the index in LOWERS (below) of the topmost lower dir holding the entry.
 *
 * I/O mode: the least disk work a userspace union must do on two rows (issue 14), as kernel
 * overlayfs does it:
 *   layerfs-floor-server DUMP MOUNTPOINT TIMEOUT_S LOWER1:LOWER2:... [UPPER WORK]
 * (LOWERS topmost first, the order of the dump's branch indexes; UPPER must start empty: the
 * dump holds the lowers only). The server opens each dir once (O_PATH) and then:
 *  - LOOKUP: one fstatat(branch, relpath, AT_SYMLINK_NOFOLLOW) of the backing file (the upper
 *    copy once there is one); the reply's attributes are its own, the inode number the union's;
 *  - SETATTR of a regular file still in a lower dir, with UPPER given: a durable copy-up first
 *    (missing parent dirs made in UPPER with their mode and owner; O_TMPFILE in WORK, data by
 *    copy_file_range, owner, mode (already the new one for a chmod), times, fsync, linkat into
 *    UPPER), then the change; an entry in UPPER gets the change on disk. Errors reply -errno.
 * Everything else stays in memory as without I/O mode (reads give zeros, writes and creates
 * change the in-memory tree only; an entry changed that way is answered from memory from then
 * on); relpath is the names from the root, so lower dirs renamed by overlay redirects are not
 * followed.
 * Protocol structs: the kernel's uAPI header <linux/fuse.h>.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <limits.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_WRITE (1u << 20)
#define EXTRA_NODES 65536
#define FIELDS 17 /* u64 per dump record before its name and link target */
#define MAX_BRANCHES 512
#define MEM (-1) /* node.branch: answered from memory only (created, or changed in memory) */

struct node {
  uint64_t ino, size, rdev;
  uint64_t atime, mtime, ctime;
  uint32_t atimensec, mtimensec, ctimensec;
  uint32_t mode, uid, gid, nlink;
  uint32_t parent, first, last, next; /* record indexes; 0 = none (the root is nobody's child) */
  char *name, *link;
  uint32_t namelen;
  int32_t branch; /* I/O mode: index in brfd of the dir holding the backing file, or MEM */
};

static struct node *nodes;
static uint32_t count, capacity;
static uint32_t *hash; /* open addressing over (parent, name) -> record index + 1 */
static uint32_t hashmask;
static uint64_t timeout_s = 3600;
static int devfd = -1;
/* FLOOR_C_XATTR_ENOSYS=1: GETXATTR and LISTXATTR answer ENOSYS, after which the kernel sends none
 * (every xattr call on the mount then fails): a measurement of what the xattr round trips cost */
static int xattr_enosys;
/* I/O mode (LOWERS given): O_PATH fds of the lower dirs, then of UPPER; upper = its index (-1: none) */
static int io, brfd[MAX_BRANCHES + 1], nlowers, upper = -1, workfd = -1;

static void die(const char *what) {
  fprintf(stderr, "layerfs-floor-server: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint32_t hash_of(uint32_t parent, const char *name, size_t len) {
  uint32_t h = 2166136261u ^ parent;
  for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)name[i]) * 16777619u;
  return h;
}

static void hash_add(uint32_t i) {
  uint32_t h = hash_of(nodes[i].parent, nodes[i].name, nodes[i].namelen) & hashmask;
  while (hash[h]) h = (h + 1) & hashmask;
  hash[h] = i + 1;
}

static int64_t find(uint32_t parent, const char *name, size_t len) {
  uint32_t h = hash_of(parent, name, len) & hashmask;
  for (; hash[h]; h = (h + 1) & hashmask) {
    struct node *n = &nodes[hash[h] - 1];
    if (n->parent == parent && n->namelen == len && memcmp(n->name, name, len) == 0) return hash[h] - 1;
  }
  return -1;
}

static void link_child(uint32_t i) {
  struct node *p = &nodes[nodes[i].parent];
  if (p->last) nodes[p->last].next = i;
  else p->first = i;
  p->last = i;
}

static void load(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(path);
  struct stat st;
  if (fstat(fd, &st) != 0) die(path);
  char *buf = malloc(st.st_size + 1);
  if (!buf) die("malloc");
  for (off_t got = 0; got < st.st_size;) {
    ssize_t r = read(fd, buf + got, st.st_size - got);
    if (r <= 0) die(path);
    got += r;
  }
  close(fd);
  unlink(path);
  uint32_t n = 0;
  for (off_t o = 0; o + FIELDS * 8 <= st.st_size; n++) {
    uint64_t v[FIELDS];
    memcpy(v, buf + o, sizeof v);
    o += FIELDS * 8 + v[14] + v[15];
  }
  if (n == 0) {
    errno = EINVAL;
    die("empty dump");
  }
  capacity = n + EXTRA_NODES;
  nodes = calloc(capacity, sizeof *nodes);
  uint32_t hsize = 1;
  while (hsize < 2 * capacity) hsize <<= 1;
  hash = calloc(hsize, sizeof *hash);
  hashmask = hsize - 1;
  if (!nodes || !hash) die("calloc");
  off_t o = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t v[FIELDS];
    memcpy(v, buf + o, sizeof v);
    o += FIELDS * 8;
    struct node *x = &nodes[i];
    x->ino = v[0];
    x->parent = (uint32_t)v[1];
    x->mode = (uint32_t)v[2];
    x->uid = (uint32_t)v[3];
    x->gid = (uint32_t)v[4];
    x->nlink = (uint32_t)v[5];
    x->size = v[6];
    x->rdev = v[7];
    x->atime = v[8];
    x->atimensec = (uint32_t)v[9];
    x->mtime = v[10];
    x->mtimensec = (uint32_t)v[11];
    x->ctime = v[12];
    x->ctimensec = (uint32_t)v[13];
    x->namelen = (uint32_t)v[14];
    x->branch = (int32_t)v[16];
    if (io && (x->branch < 0 || x->branch >= nlowers)) {
      errno = EINVAL;
      die("dump: branch index beyond the lower dirs given");
    }
    x->name = buf + o; /* the buffer is kept: names and targets point into it */
    o += v[14];
    if (S_ISLNK(x->mode)) {
      x->link = strndup(buf + o, v[15]);
      if (!x->link) die("strndup");
    }
    o += v[15];
    if (i > 0) {
      if (x->parent >= i) {
        errno = EINVAL;
        die("dump: parent after child");
      }
      link_child(i);
      hash_add(i);
    }
  }
  count = n;
}

/* ---- replies ---- */

static void reply(uint64_t unique, int error, const void *data, size_t len) {
  struct fuse_out_header h = {.len = (uint32_t)(sizeof h + (error ? 0 : len)), .error = error, .unique = unique};
  struct iovec iov[2] = {{&h, sizeof h}, {(void *)data, error ? 0 : len}};
  if (writev(devfd, iov, error || len == 0 ? 1 : 2) < 0 && errno != ENOENT) die("write /dev/fuse");
}

static void fill_attr(struct fuse_attr *a, uint32_t i) {
  const struct node *n = &nodes[i];
  memset(a, 0, sizeof *a);
  a->ino = n->ino;
  a->size = n->size;
  a->blocks = (n->size + 511) / 512;
  a->atime = n->atime;
  a->mtime = n->mtime;
  a->ctime = n->ctime;
  a->atimensec = n->atimensec;
  a->mtimensec = n->mtimensec;
  a->ctimensec = n->ctimensec;
  a->mode = n->mode;
  a->nlink = n->nlink;
  a->uid = n->uid;
  a->gid = n->gid;
  a->rdev = (uint32_t)n->rdev;
  a->blksize = 4096;
}

static void fill_entry(struct fuse_entry_out *e, uint32_t i) {
  memset(e, 0, sizeof *e);
  e->nodeid = i + 1;
  e->generation = 1;
  e->entry_valid = timeout_s;
  e->attr_valid = timeout_s;
  fill_attr(&e->attr, i);
}

/* node id -> record index; -1 when unknown */
static int64_t idx(uint64_t nodeid) {
  return nodeid >= 1 && nodeid <= count ? (int64_t)(nodeid - 1) : -1;
}

static void now(uint64_t *s, uint32_t *ns) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  *s = (uint64_t)t.tv_sec;
  *ns = (uint32_t)t.tv_nsec;
}

static char out[MAX_WRITE + 4096];

/* READDIR / READDIRPLUS: offset k = k entries done ('.', '..', then the children in order). */
static void readdir_reply(uint64_t unique, uint32_t dir, const struct fuse_read_in *in, int plus) {
  size_t used = 0, max = in->size < sizeof out ? in->size : sizeof out;
  uint64_t k = 0;
  uint32_t c = nodes[dir].first;
  for (; k < in->offset; k++) /* skip what earlier calls returned */
    if (k >= 2) {
      if (!c) break;
      c = nodes[c].next;
    }
  for (;;) {
    uint32_t i;
    const char *name;
    size_t len;
    if (k == 0) i = dir, name = ".", len = 1;
    else if (k == 1) i = nodes[dir].parent, name = "..", len = 2;
    else if (c) i = c, name = nodes[c].name, len = nodes[c].namelen;
    else break;
    size_t base = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
    size_t rec = plus ? FUSE_DIRENTPLUS_SIZE(&(struct fuse_direntplus){.dirent.namelen = (uint32_t)len}) : FUSE_DIRENT_SIZE(&(struct fuse_dirent){.namelen = (uint32_t)len});
    if (used + rec > max) break;
    char *p = out + used;
    memset(p, 0, rec);
    struct fuse_dirent *d;
    if (plus) {
      struct fuse_direntplus *dp = (struct fuse_direntplus *)p;
      /* '.' and '..' carry no entry: the kernel takes no reference for them */
      if (k >= 2) fill_entry(&dp->entry_out, i);
      d = &dp->dirent;
    } else d = (struct fuse_dirent *)p;
    d->ino = nodes[i].ino;
    d->off = k + 1;
    d->namelen = (uint32_t)len;
    d->type = (nodes[i].mode & S_IFMT) >> 12;
    memcpy(p + base, name, len);
    used += rec;
    if (k >= 2) c = nodes[c].next;
    k++;
  }
  reply(unique, 0, out, used);
}

/* ---- I/O mode: the backing files ---- */

static char relbuf[PATH_MAX];

/* Record i's path below every branch root ("." for the root), in relbuf; NULL when too long. */
static const char *relpath(uint32_t i) {
  char *p = relbuf + sizeof relbuf - 1;
  *p = 0;
  if (i == 0) return ".";
  for (; i != 0; i = nodes[i].parent) {
    const struct node *n = &nodes[i];
    size_t need = n->namelen + (*p ? 1 : 0);
    if ((size_t)(p - relbuf) < need) return NULL;
    if (*p) *--p = '/';
    p -= n->namelen;
    memcpy(p, n->name, n->namelen);
  }
  return p;
}

/* The backing file's attributes into the node (its type and the union's inode number stay). */
static int from_stat(struct node *n, const struct stat *st) {
  if ((st->st_mode & S_IFMT) != (n->mode & S_IFMT)) return -ESTALE; /* replaced behind our back */
  n->mode = st->st_mode;
  n->uid = st->st_uid;
  n->gid = st->st_gid;
  if (!S_ISDIR(n->mode)) n->nlink = (uint32_t)st->st_nlink; /* a merged dir keeps the union's count */
  n->size = (uint64_t)st->st_size;
  n->rdev = st->st_rdev;
  n->atime = (uint64_t)st->st_atim.tv_sec, n->atimensec = (uint32_t)st->st_atim.tv_nsec;
  n->mtime = (uint64_t)st->st_mtim.tv_sec, n->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
  n->ctime = (uint64_t)st->st_ctim.tv_sec, n->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
  return 0;
}

/* LOOKUP's disk work: one fstatat of the backing file; 0 or -errno. */
static int stat_backing(uint32_t i) {
  struct node *n = &nodes[i];
  if (n->branch == MEM) return 0;
  const char *rel = relpath(i);
  if (!rel) return -ENAMETOOLONG;
  struct stat st;
  if (fstatat(brfd[n->branch], rel, &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  return from_stat(n, &st);
}

/* The dirs above record i made in the upper where missing, top-down, with their mode and owner. */
static int copy_up_parents(uint32_t i) {
  uint32_t chain[PATH_MAX / 2];
  size_t k = 0;
  for (uint32_t p = nodes[i].parent; p != 0 && nodes[p].branch != upper; p = nodes[p].parent) {
    if (k == sizeof chain / sizeof *chain) return -ENAMETOOLONG;
    chain[k++] = p;
  }
  while (k > 0) {
    struct node *d = &nodes[chain[--k]];
    const char *rel = relpath(chain[k]);
    if (!rel) return -ENAMETOOLONG;
    if (mkdirat(brfd[upper], rel, d->mode & 07777) != 0) {
      if (errno != EEXIST) return -errno;
    } else if (fchownat(brfd[upper], rel, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) != 0 ||
               ((d->mode & 07000) && fchmodat(brfd[upper], rel, d->mode & 07777, 0) != 0))
      return -errno;
    d->branch = upper;
  }
  return 0;
}

/* Contents of src into dst: copy_file_range, or read and write where it cannot (another filesystem). */
static int copy_data(int src, int dst, off_t size) {
  off_t done = 0;
  while (done < size) {
    ssize_t r = copy_file_range(src, NULL, dst, NULL, (size_t)(size - done), 0);
    if (r < 0 && done == 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) break;
    if (r < 0) return -errno;
    if (r == 0) return 0; /* it shrank meanwhile */
    done += r;
  }
  if (done >= size) return 0;
  for (;;) {
    ssize_t r = read(src, out, sizeof out);
    if (r <= 0) return r < 0 ? -errno : 0;
    for (ssize_t w = 0; w < r;) {
      ssize_t x = write(dst, out + w, (size_t)(r - w));
      if (x < 0) return -errno;
      w += x;
    }
  }
}

/*
 * Copy-up of lower regular file i as kernel overlayfs does it: an O_TMPFILE in the work dir with
 * the data, owner, mode (the new one when `in` is a chmod), times, fsync'ed, then linked into the
 * upper: a crash leaves either nothing or the whole file. The node is served from the upper after.
 */
static int copy_up(uint32_t i, const struct fuse_setattr_in *in) {
  struct node *n = &nodes[i];
  int r = copy_up_parents(i);
  if (r) return r;
  const char *rel = relpath(i);
  if (!rel) return -ENAMETOOLONG;
  int src = openat(brfd[n->branch], rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), tmp = -1;
  if (src < 0) return -errno;
  struct stat st;
  mode_t mode = 0;
  if (fstat(src, &st) != 0 || (tmp = openat(workfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600)) < 0) r = -errno;
  else if (!S_ISREG(st.st_mode)) r = -ESTALE;
  else r = copy_data(src, tmp, st.st_size);
  if (!r) {
    mode = in->valid & FATTR_MODE ? in->mode & 07777 : st.st_mode & 07777;
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    /* owner before mode: fchown drops set-id bits */
    if (fchown(tmp, st.st_uid, st.st_gid) != 0 || fchmod(tmp, mode) != 0 || futimens(tmp, times) != 0 || fsync(tmp) != 0 ||
        linkat(tmp, "", brfd[upper], rel, AT_EMPTY_PATH) != 0)
      r = -errno;
  }
  close(src);
  if (tmp >= 0) close(tmp);
  if (r) return r;
  from_stat(n, &st);
  n->mode = S_IFREG | mode;
  n->nlink = 1;
  n->branch = upper;
  return 0;
}

/* The change of `in` on the upper file of record i (its mode already when mode_done). */
static int change_upper(uint32_t i, const struct fuse_setattr_in *in, int mode_done) {
  const char *rel = relpath(i);
  int up = brfd[upper];
  uint32_t v = in->valid;
  if (!rel) return -ENAMETOOLONG;
  if ((v & FATTR_MODE) && !mode_done && fchmodat(up, rel, in->mode & 07777, 0) != 0) return -errno;
  if ((v & (FATTR_UID | FATTR_GID)) &&
      fchownat(up, rel, v & FATTR_UID ? in->uid : (uid_t)-1, v & FATTR_GID ? in->gid : (gid_t)-1, AT_SYMLINK_NOFOLLOW) != 0)
    return -errno;
  if (v & FATTR_SIZE) {
    int fd = openat(up, rel, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    int r = fd < 0 || ftruncate(fd, (off_t)in->size) != 0 ? -errno : 0;
    if (fd >= 0) close(fd);
    if (r) return r;
  }
  if (v & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
    struct timespec t[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    if (v & FATTR_ATIME_NOW) t[0].tv_nsec = UTIME_NOW;
    else if (v & FATTR_ATIME) t[0] = (struct timespec){(time_t)in->atime, in->atimensec};
    if (v & FATTR_MTIME_NOW) t[1].tv_nsec = UTIME_NOW;
    else if (v & FATTR_MTIME) t[1] = (struct timespec){(time_t)in->mtime, in->mtimensec};
    if (utimensat(up, rel, t, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  }
  return 0;
}

/* I/O mode's share of SETATTR: copy-up and the change on disk, or the node left to memory. */
static int setattr_io(uint32_t i, const struct fuse_setattr_in *in) {
  struct node *n = &nodes[i];
  if (n->branch == MEM) return 0;
  if (upper >= 0 && n->branch == upper) return change_upper(i, in, 0);
  if (upper < 0 || !S_ISREG(n->mode)) { /* no copy-up: changed in memory, answered from there */
    n->branch = MEM;
    return 0;
  }
  int r = copy_up(i, in);
  return r ? r : change_upper(i, in, 1);
}

static void setattr(uint64_t unique, uint32_t i, const struct fuse_setattr_in *in) {
  struct node *n = &nodes[i];
  int r = io ? setattr_io(i, in) : 0;
  if (r) return reply(unique, r, NULL, 0);
  if (in->valid & FATTR_MODE) n->mode = (n->mode & S_IFMT) | (in->mode & 07777);
  if (in->valid & FATTR_UID) n->uid = in->uid;
  if (in->valid & FATTR_GID) n->gid = in->gid;
  if (in->valid & FATTR_SIZE) n->size = in->size;
  if (in->valid & FATTR_ATIME_NOW) now(&n->atime, &n->atimensec);
  else if (in->valid & FATTR_ATIME) n->atime = in->atime, n->atimensec = in->atimensec;
  if (in->valid & FATTR_MTIME_NOW) now(&n->mtime, &n->mtimensec);
  else if (in->valid & FATTR_MTIME) n->mtime = in->mtime, n->mtimensec = in->mtimensec;
  now(&n->ctime, &n->ctimensec);
  struct fuse_attr_out a = {.attr_valid = timeout_s};
  fill_attr(&a.attr, i);
  reply(unique, 0, &a, sizeof a);
}

static void create(uint64_t unique, uint32_t dir, const struct fuse_create_in *in, const char *name, const struct fuse_in_header *h) {
  size_t len = strlen(name);
  if (find(dir, name, len) >= 0) return reply(unique, -EEXIST, NULL, 0);
  if (count == capacity) return reply(unique, -ENOSPC, NULL, 0);
  uint32_t i = count++;
  struct node *n = &nodes[i];
  memset(n, 0, sizeof *n);
  n->name = strndup(name, len);
  if (!n->name) die("strndup");
  n->namelen = (uint32_t)len;
  n->parent = dir;
  n->ino = 0x100000000ull + i;
  n->mode = S_IFREG | (in->mode & 07777 & ~in->umask);
  n->uid = h->uid;
  n->gid = h->gid;
  n->nlink = 1;
  n->branch = MEM;
  now(&n->mtime, &n->mtimensec);
  n->atime = n->ctime = n->mtime;
  n->atimensec = n->ctimensec = n->mtimensec;
  link_child(i);
  hash_add(i);
  struct {
    struct fuse_entry_out e;
    struct fuse_open_out o;
  } r;
  fill_entry(&r.e, i);
  memset(&r.o, 0, sizeof r.o);
  reply(unique, 0, &r, sizeof r);
}

static void init(uint64_t unique, const struct fuse_init_in *in) {
  struct fuse_init_out o;
  memset(&o, 0, sizeof o);
  o.major = FUSE_KERNEL_VERSION;
  o.minor = in->minor < FUSE_KERNEL_MINOR_VERSION ? in->minor : FUSE_KERNEL_MINOR_VERSION;
  if (in->major != FUSE_KERNEL_VERSION) { /* the kernel asks again with our major */
    reply(unique, 0, &o, 8);
    return;
  }
  o.max_readahead = in->max_readahead;
  uint32_t want = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_PARALLEL_DIROPS | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO |
                  FUSE_MAX_PAGES | FUSE_ABORT_ERROR | FUSE_AUTO_INVAL_DATA | FUSE_CACHE_SYMLINKS | FUSE_POSIX_ACL |
                  FUSE_DONT_MASK;
  o.flags = in->flags & want;
  o.max_background = 64;
  o.congestion_threshold = 48;
  o.max_write = MAX_WRITE;
  o.time_gran = 1;
  o.max_pages = MAX_WRITE / 4096;
  reply(unique, 0, &o, sizeof o);
}

static char in[MAX_WRITE + 8192];
static uint64_t counts[64]; /* requests per opcode, written at exit to $FLOOR_C_COUNTS if set */

static void write_counts(const char *mnt) {
  const char *path = getenv("FLOOR_C_COUNTS");
  FILE *f = path ? fopen(path, "a") : NULL;
  if (!f) return;
  fprintf(f, "# %s\n", mnt);
  for (int op = 0; op < 64; op++)
    if (counts[op]) fprintf(f, "%d %llu\n", op, (unsigned long long)counts[op]);
  fclose(f);
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/*
 * The next request: read without blocking, re-read for up to `spin_ns` after a reply (a client
 * asking back to back is served without a wake-up, as layerfs's serving thread does: its
 * default 50 us), then wait in poll(2). Without the spin an idle machine's wake-up latency, not
 * the request, is what the floor measures.
 */
static ssize_t next_request(uint64_t spin_ns) {
  uint64_t until = spin_ns ? now_ns() + spin_ns : 0;
  for (;;) {
    ssize_t r = read(devfd, in, sizeof in);
    if (r >= 0 || errno != EAGAIN) return r;
    if (until && now_ns() < until) continue;
    until = 0;
    struct pollfd p = {.fd = devfd, .events = POLLIN};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) return -1;
  }
}

static void serve(void) {
  const char *spin = getenv("FLOOR_C_SPIN_US");
  uint64_t spin_ns = (spin ? strtoull(spin, NULL, 10) : 50) * 1000u;
  fcntl(devfd, F_SETFL, fcntl(devfd, F_GETFL) | O_NONBLOCK);
  for (;;) {
    ssize_t r = next_request(spin_ns);
    if (r < 0) {
      if (errno == ENOENT || errno == EINTR) continue;
      if (errno == ENODEV) return; /* unmounted */
      die("read /dev/fuse");
    }
    if ((size_t)r < sizeof(struct fuse_in_header)) continue;
    const struct fuse_in_header *h = (const struct fuse_in_header *)in;
    const char *arg = in + sizeof *h;
    uint64_t u = h->unique;
    int64_t n = idx(h->nodeid);
    counts[h->opcode & 63]++;
    switch (h->opcode) {
    case FUSE_INIT:
      init(u, (const struct fuse_init_in *)arg);
      continue;
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
    case FUSE_INTERRUPT:
      continue; /* never answered; nodes live as long as the server */
    case FUSE_DESTROY:
      reply(u, 0, NULL, 0);
      return;
    case FUSE_STATFS: {
      struct fuse_statfs_out s;
      memset(&s, 0, sizeof s);
      s.st.blocks = 1u << 24;
      s.st.bfree = s.st.bavail = 1u << 23;
      s.st.files = capacity;
      s.st.ffree = capacity - count;
      s.st.bsize = s.st.frsize = 4096;
      s.st.namelen = 255;
      reply(u, 0, &s, sizeof s);
      continue;
    }
    }
    if (n < 0) {
      reply(u, -ENOENT, NULL, 0);
      continue;
    }
    uint32_t i = (uint32_t)n;
    switch (h->opcode) {
    case FUSE_LOOKUP: {
      int64_t c = find(i, arg, strlen(arg));
      struct fuse_entry_out e;
      int r = c >= 0 && io ? stat_backing((uint32_t)c) : 0;
      if (r) {
        reply(u, r, NULL, 0);
        break;
      }
      if (c < 0) { /* a negative entry the kernel may cache as long as a positive one */
        memset(&e, 0, sizeof e);
        e.entry_valid = timeout_s;
      } else fill_entry(&e, (uint32_t)c);
      reply(u, 0, &e, sizeof e);
      break;
    }
    case FUSE_GETATTR: {
      struct fuse_attr_out a = {.attr_valid = timeout_s};
      fill_attr(&a.attr, i);
      reply(u, 0, &a, sizeof a);
      break;
    }
    case FUSE_SETATTR:
      setattr(u, i, (const struct fuse_setattr_in *)arg);
      break;
    case FUSE_READLINK:
      if (!S_ISLNK(nodes[i].mode)) reply(u, -EINVAL, NULL, 0);
      else reply(u, 0, nodes[i].link, strlen(nodes[i].link));
      break;
    case FUSE_OPENDIR:
    case FUSE_OPEN: {
      int dir = S_ISDIR(nodes[i].mode);
      if (dir != (h->opcode == FUSE_OPENDIR)) {
        reply(u, dir ? -EISDIR : -ENOTDIR, NULL, 0);
        break;
      }
      struct fuse_open_out o;
      memset(&o, 0, sizeof o);
      /* as layerfs: listings kept by the kernel (the readdir cache), no FLUSH for files */
      o.open_flags = dir ? FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE : FOPEN_KEEP_CACHE | FOPEN_NOFLUSH;
      reply(u, 0, &o, sizeof o);
      break;
    }
    case FUSE_READDIR:
    case FUSE_READDIRPLUS:
      readdir_reply(u, i, (const struct fuse_read_in *)arg, h->opcode == FUSE_READDIRPLUS);
      break;
    case FUSE_READ: {
      const struct fuse_read_in *rd = (const struct fuse_read_in *)arg;
      uint64_t size = nodes[i].size, len = 0;
      if (rd->offset < size) len = size - rd->offset < rd->size ? size - rd->offset : rd->size;
      if (len > sizeof out) len = sizeof out;
      memset(out, 0, len); /* contents: zeros of the right size */
      reply(u, 0, out, len);
      break;
    }
    case FUSE_WRITE: {
      const struct fuse_write_in *w = (const struct fuse_write_in *)arg;
      if (w->offset + w->size > nodes[i].size) nodes[i].size = w->offset + w->size;
      nodes[i].branch = MEM; /* contents and size now in memory only */
      now(&nodes[i].mtime, &nodes[i].mtimensec);
      struct fuse_write_out o = {.size = w->size};
      reply(u, 0, &o, sizeof o);
      break;
    }
    case FUSE_CREATE: {
      const struct fuse_create_in *c = (const struct fuse_create_in *)arg;
      if (!S_ISDIR(nodes[i].mode)) reply(u, -ENOTDIR, NULL, 0);
      else create(u, i, c, arg + sizeof *c, h);
      break;
    }
    case FUSE_GETXATTR:
      reply(u, xattr_enosys ? -ENOSYS : -ENODATA, NULL, 0);
      break;
    case FUSE_LISTXATTR: {
      struct fuse_getxattr_out x = {.size = 0};
      const struct fuse_getxattr_in *g = (const struct fuse_getxattr_in *)arg;
      if (xattr_enosys) reply(u, -ENOSYS, NULL, 0);
      else if (g->size == 0) reply(u, 0, &x, sizeof x);
      else reply(u, 0, NULL, 0);
      break;
    }
    case FUSE_ACCESS:
    case FUSE_FLUSH:
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR:
    case FUSE_FSYNC:
    case FUSE_FSYNCDIR:
      reply(u, 0, NULL, 0);
      break;
    default:
      reply(u, -ENOSYS, NULL, 0);
    }
  }
}

static int open_dir(const char *path) {
  int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) die(path);
  return fd;
}

/* I/O mode on: the lower dirs (colon-separated, topmost first), and the upper and work dirs or NULL. */
static void open_branches(const char *list, const char *up, const char *work) {
  char *lowers = strdup(list); /* split in a copy: the command line stays readable in /proc */
  if (!lowers) die("strdup");
  for (char *save = NULL, *l = strtok_r(lowers, ":", &save); l; l = strtok_r(NULL, ":", &save)) {
    if (nlowers == MAX_BRANCHES) {
      errno = E2BIG;
      die("lower dirs");
    }
    brfd[nlowers++] = open_dir(l);
  }
  if (up) {
    upper = nlowers;
    brfd[upper] = open_dir(up);
    workfd = open_dir(work);
  }
  io = 1;
  umask(0); /* modes are set as given */
}

int main(int argc, char **argv) {
  if (argc < 3 || argc == 6 || argc > 7) {
    fprintf(stderr, "usage: layerfs-floor-server DUMP MOUNTPOINT [TIMEOUT_S [LOWER1:LOWER2:... [UPPER WORK]]]\n");
    return 2;
  }
  if (argc >= 4) timeout_s = strtoull(argv[3], NULL, 10);
  if (argc >= 5) open_branches(argv[4], argc == 7 ? argv[5] : NULL, argc == 7 ? argv[6] : NULL);
  const char *enosys = getenv("FLOOR_C_XATTR_ENOSYS");
  xattr_enosys = enosys != NULL && strcmp(enosys, "1") == 0;
  load(argv[1]);
  devfd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (devfd < 0) die("/dev/fuse");
  char data[256];
  snprintf(data, sizeof data, "fd=%d,rootmode=%o,user_id=0,group_id=0,allow_other,default_permissions", devfd,
           nodes[0].mode);
  if (mount("floor-c", argv[2], "fuse.floor-c", 0, data) != 0) die(argv[2]);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid > 0) return 0; /* mounted: the server goes on in the child */
  setsid();
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    close(null);
  }
  serve();
  write_counts(argv[2]);
  return 0;
}
