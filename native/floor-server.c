/*
 * floor-server: the least a FUSE server can do (issue 14's "kernel's own cost per request").
 * Single-threaded, blocking read(2)/write(2) on /dev/fuse, serving an in-memory tree loaded from
 * a flat dump (written by bench/floor-c-serve.ts). No syscalls per request besides the two on
 * /dev/fuse, so a workload's time over this mount is the kernel's cost per request plus the
 * least a userspace server adds. Protocol structs from the kernel uAPI header <linux/fuse.h>.
 *
 *   layerfs-floor-server [-f] DUMP MOUNTPOINT
 *
 * Mounts with mount(2) as layerfs does (fd=N,rootmode=40000,user_id=0,group_id=0,allow_other,
 * default_permissions), answers INIT with what layerfs negotiates where it matters for metadata
 * (READDIRPLUS + READDIRPLUS_AUTO, POSIX_ACL, max_write 1 MiB, 3600 s entry/attr timeouts),
 * then serves until the mount goes (read gives ENODEV) and exits 0. Without -f it forks once
 * mounted: the parent exits 0, the child (setsid, stdio on /dev/null) serves; with -f it prints
 * the requests it served per opcode on stderr at exit.
 *
 * Dump (little-endian): "LFCFLOOR", u32 count, then per entry (entry 0 is the root, each
 * parent before its children): u32 parent, mode, uid, gid, nlink, rdev; u64 size, ino;
 * i64 atime, u32 atime_ns, i64 mtime, u32 mtime_ns, i64 ctime, u32 ctime_ns; u16 namelen,
 * u16 linklen; name bytes; symlink target bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT 3600 /* layerfs's DEFAULT_CACHE_TIMEOUT (entry, attr, negative) */
#define MAX_WRITE (1u << 20)
#define PAGE 4096u

struct node {
  uint32_t parent, mode, uid, gid, nlink, rdev;
  uint64_t size, ino;
  int64_t at, mt, ct;
  uint32_t atn, mtn, ctn;
  char *name;
  uint16_t namelen;
  uint16_t linklen;
  char *link;
  uint32_t *kids;
  uint32_t nkids, capkids;
};

static struct node *nodes;
static uint32_t nnodes, capnodes;
static uint64_t next_ino;

/* (parent, name) -> node index + 1, open addressing */
static uint32_t *table;
static uint32_t tabmask;

static void die(const char *what) {
  fprintf(stderr, "floor-server: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) die("out of memory");
  return q;
}

static uint32_t hash(uint32_t parent, const char *name, size_t len) {
  uint32_t h = 2166136261u ^ parent;
  for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)name[i]) * 16777619u;
  return h;
}

static void table_put(uint32_t idx);

static void table_grow(void) {
  uint32_t *old = table;
  uint32_t oldsize = table ? tabmask + 1 : 0;
  uint32_t size = oldsize ? oldsize * 2 : 1024;
  table = calloc(size, sizeof *table);
  if (!table) die("out of memory");
  tabmask = size - 1;
  for (uint32_t i = 0; i < oldsize; i++)
    if (old[i]) table_put(old[i] - 1);
  free(old);
}

static void table_put(uint32_t idx) {
  struct node *n = &nodes[idx];
  uint32_t h = hash(n->parent, n->name, n->namelen) & tabmask;
  while (table[h]) h = (h + 1) & tabmask;
  table[h] = idx + 1;
}

static int64_t table_get(uint32_t parent, const char *name, size_t len) {
  uint32_t h = hash(parent, name, len) & tabmask;
  for (; table[h]; h = (h + 1) & tabmask) {
    struct node *n = &nodes[table[h] - 1];
    if (n->parent == parent && n->namelen == len && memcmp(n->name, name, len) == 0) return table[h] - 1;
  }
  return -1;
}

/* A new node; index 0 (the root) has no parent entry. */
static uint32_t add_node(const struct node *src) {
  if (nnodes == capnodes) {
    capnodes = capnodes ? capnodes * 2 : 1024;
    nodes = xrealloc(nodes, capnodes * sizeof *nodes);
  }
  uint32_t idx = nnodes++;
  nodes[idx] = *src;
  if (src->ino >= next_ino) next_ino = src->ino + 1;
  if (idx == 0) return idx;
  if ((uint64_t)nnodes * 2 > (uint64_t)tabmask + 1) table_grow();
  table_put(idx);
  struct node *p = &nodes[src->parent];
  if (p->nkids == p->capkids) {
    p->capkids = p->capkids ? p->capkids * 2 : 4;
    p->kids = xrealloc(p->kids, p->capkids * sizeof *p->kids);
  }
  p->kids[p->nkids++] = idx;
  return idx;
}

static void load(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) die(path);
  char magic[8];
  uint32_t count;
  if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "LFCFLOOR", 8) != 0 || fread(&count, 4, 1, f) != 1) {
    fprintf(stderr, "floor-server: %s: not a floor dump\n", path);
    exit(1);
  }
  table_grow();
  for (uint32_t i = 0; i < count; i++) {
    uint8_t rec[6 * 4 + 2 * 8 + 3 * 12 + 2 * 2];
    if (fread(rec, 1, sizeof rec, f) != sizeof rec) goto short_read;
    struct node n = {0};
    const uint8_t *p = rec;
#define TAKE(field) (memcpy(&(field), p, sizeof(field)), p += sizeof(field))
    TAKE(n.parent); TAKE(n.mode); TAKE(n.uid); TAKE(n.gid); TAKE(n.nlink); TAKE(n.rdev);
    TAKE(n.size); TAKE(n.ino);
    TAKE(n.at); TAKE(n.atn); TAKE(n.mt); TAKE(n.mtn); TAKE(n.ct); TAKE(n.ctn);
    TAKE(n.namelen); TAKE(n.linklen);
#undef TAKE
    n.name = malloc(n.namelen + 1u);
    n.link = n.linklen ? malloc(n.linklen + 1u) : NULL;
    if (!n.name || (n.linklen && !n.link)) die("out of memory");
    if (fread(n.name, 1, n.namelen, f) != n.namelen) goto short_read;
    if (n.linklen && fread(n.link, 1, n.linklen, f) != n.linklen) goto short_read;
    if (i > 0 && (n.parent >= i || !S_ISDIR(nodes[n.parent].mode))) {
      fprintf(stderr, "floor-server: %s: entry %u: bad parent %u\n", path, i, n.parent);
      exit(1);
    }
    add_node(&n);
  }
  fclose(f);
  if (nnodes == 0 || !S_ISDIR(nodes[0].mode)) {
    fprintf(stderr, "floor-server: %s: no root directory\n", path);
    exit(1);
  }
  return;
short_read:
  fprintf(stderr, "floor-server: %s: truncated\n", path);
  exit(1);
}

/* ---- replies ---- */

static int fuse_fd;
/* FLOOR_C_XATTR_ENOSYS=1: GETXATTR/LISTXATTR answer ENOSYS, after which the kernel sends none (a measurement) */
static int xattr_enosys;
static char *inbuf;
static char outbuf[sizeof(struct fuse_out_header) + 2 * PAGE * 64];

static void send_reply(uint64_t unique, int error, const void *body, size_t len) {
  struct fuse_out_header *oh = (struct fuse_out_header *)outbuf;
  oh->unique = unique;
  oh->error = error;
  oh->len = (uint32_t)(sizeof *oh + (error ? 0 : len));
  if (!error && len && body != outbuf + sizeof *oh) memcpy(outbuf + sizeof *oh, body, len);
  if (write(fuse_fd, outbuf, oh->len) < 0 && errno != ENOENT) {
    /* ENOENT: the request was interrupted meanwhile; ENODEV: unmounted, the read loop ends */
    if (errno != ENODEV) perror("floor-server: write");
  }
}

static void fill_attr(struct fuse_attr *a, const struct node *n) {
  memset(a, 0, sizeof *a);
  a->ino = n->ino;
  a->size = n->size;
  a->blocks = (n->size + 511) / 512;
  a->atime = (uint64_t)n->at;
  a->mtime = (uint64_t)n->mt;
  a->ctime = (uint64_t)n->ct;
  a->atimensec = n->atn;
  a->mtimensec = n->mtn;
  a->ctimensec = n->ctn;
  a->mode = n->mode;
  a->nlink = n->nlink;
  a->uid = n->uid;
  a->gid = n->gid;
  a->rdev = n->rdev;
  a->blksize = PAGE;
}

static void fill_entry(struct fuse_entry_out *e, uint32_t idx) {
  memset(e, 0, sizeof *e);
  e->nodeid = idx + 1; /* FUSE_ROOT_ID is 1: index 0 */
  e->entry_valid = TIMEOUT;
  e->attr_valid = TIMEOUT;
  fill_attr(&e->attr, &nodes[idx]);
}

/* The node of a request's node id, or NULL. */
static struct node *node_of(uint64_t nodeid) {
  return nodeid >= 1 && nodeid <= nnodes ? &nodes[nodeid - 1] : NULL;
}

static void now(int64_t *s, uint32_t *ns) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  *s = t.tv_sec;
  *ns = (uint32_t)t.tv_nsec;
}

static void reply_attr(uint64_t unique, const struct node *n) {
  struct fuse_attr_out o;
  memset(&o, 0, sizeof o);
  o.attr_valid = TIMEOUT;
  fill_attr(&o.attr, n);
  send_reply(unique, 0, &o, sizeof o);
}

static void do_readdir(const struct fuse_in_header *ih, const struct fuse_read_in *ri, int plus) {
  struct node *d = node_of(ih->nodeid);
  if (!d || !S_ISDIR(d->mode)) return send_reply(ih->unique, -ENOTDIR, NULL, 0);
  uint32_t parent = ih->nodeid == 1 ? 0 : d->parent;
  char *body = outbuf + sizeof(struct fuse_out_header);
  size_t room = ri->size < sizeof outbuf - sizeof(struct fuse_out_header) ? ri->size : sizeof outbuf - sizeof(struct fuse_out_header);
  size_t used = 0;
  /* offsets: 1 ".", 2 "..", k+3 the k-th child */
  for (uint64_t off = ri->offset; off < (uint64_t)d->nkids + 2; off++) {
    const char *name;
    size_t len;
    uint32_t idx;
    if (off == 0) name = ".", len = 1, idx = (uint32_t)(ih->nodeid - 1);
    else if (off == 1) name = "..", len = 2, idx = parent;
    else idx = d->kids[off - 2], name = nodes[idx].name, len = nodes[idx].namelen;
    size_t head = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
    size_t rec = FUSE_DIRENT_ALIGN(head + len);
    if (used + rec > room) break;
    struct fuse_dirent *de;
    if (plus) {
      struct fuse_direntplus *dp = (struct fuse_direntplus *)(body + used);
      if (off < 2) memset(&dp->entry_out, 0, sizeof dp->entry_out); /* no node id for . and .. */
      else fill_entry(&dp->entry_out, idx);
      de = &dp->dirent;
    } else {
      de = (struct fuse_dirent *)(body + used);
    }
    de->ino = nodes[idx].ino;
    de->off = off + 1;
    de->namelen = (uint32_t)len;
    de->type = (nodes[idx].mode & S_IFMT) >> 12;
    memcpy(de->name, name, len);
    memset(de->name + len, 0, rec - head - len);
    used += rec;
  }
  send_reply(ih->unique, 0, body, used);
}

static void do_setattr(const struct fuse_in_header *ih, const struct fuse_setattr_in *si) {
  struct node *n = node_of(ih->nodeid);
  if (!n) return send_reply(ih->unique, -ENOENT, NULL, 0);
  if (si->valid & FATTR_MODE) n->mode = (n->mode & S_IFMT) | (si->mode & 07777);
  if (si->valid & FATTR_UID) n->uid = si->uid;
  if (si->valid & FATTR_GID) n->gid = si->gid;
  if (si->valid & FATTR_SIZE) {
    if (S_ISDIR(n->mode)) return send_reply(ih->unique, -EISDIR, NULL, 0);
    n->size = si->size;
  }
  if (si->valid & FATTR_ATIME_NOW) now(&n->at, &n->atn);
  else if (si->valid & FATTR_ATIME) n->at = (int64_t)si->atime, n->atn = si->atimensec;
  if (si->valid & FATTR_MTIME_NOW) now(&n->mt, &n->mtn);
  else if (si->valid & FATTR_MTIME) n->mt = (int64_t)si->mtime, n->mtn = si->mtimensec;
  if (si->valid & FATTR_CTIME) n->ct = (int64_t)si->ctime, n->ctn = si->ctimensec;
  else now(&n->ct, &n->ctn);
  reply_attr(ih->unique, n);
}

static void do_create(const struct fuse_in_header *ih, const struct fuse_create_in *ci, const char *name) {
  struct node *d = node_of(ih->nodeid);
  if (!d || !S_ISDIR(d->mode)) return send_reply(ih->unique, -ENOTDIR, NULL, 0);
  size_t len = strlen(name);
  if (len > 255) return send_reply(ih->unique, -ENAMETOOLONG, NULL, 0);
  if (table_get((uint32_t)(ih->nodeid - 1), name, len) >= 0) {
    if (ci->flags & O_EXCL) return send_reply(ih->unique, -EEXIST, NULL, 0);
  }
  struct node n = {0};
  n.parent = (uint32_t)(ih->nodeid - 1);
  n.mode = S_IFREG | (ci->mode & 07777 & ~ci->umask);
  n.uid = ih->uid;
  n.gid = ih->gid;
  n.nlink = 1;
  n.ino = next_ino;
  now(&n.at, &n.atn);
  n.mt = n.ct = n.at;
  n.mtn = n.ctn = n.atn;
  n.name = strndup(name, len);
  if (!n.name) die("out of memory");
  n.namelen = (uint16_t)len;
  int64_t old = table_get(n.parent, name, len);
  uint32_t idx;
  if (old >= 0) {
    idx = (uint32_t)old; /* O_CREAT without O_EXCL on an existing name: open it */
    free(n.name);
    if (ci->flags & O_TRUNC) nodes[idx].size = 0;
  } else {
    idx = add_node(&n);
    now(&nodes[n.parent].mt, &nodes[n.parent].mtn);
  }
  struct {
    struct fuse_entry_out e;
    struct fuse_open_out o;
  } r;
  fill_entry(&r.e, idx);
  memset(&r.o, 0, sizeof r.o);
  send_reply(ih->unique, 0, &r, sizeof r);
}

static void do_init(const struct fuse_in_header *ih, const struct fuse_init_in *ii) {
  struct fuse_init_out o;
  memset(&o, 0, sizeof o);
  o.major = FUSE_KERNEL_VERSION;
  o.minor = FUSE_KERNEL_MINOR_VERSION;
  if (ii->major != FUSE_KERNEL_VERSION) return send_reply(ih->unique, -EPROTO, NULL, 0);
  uint32_t want = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_PARALLEL_DIROPS | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO |
                  FUSE_MAX_PAGES | FUSE_ABORT_ERROR | FUSE_AUTO_INVAL_DATA | FUSE_CACHE_SYMLINKS | FUSE_POSIX_ACL | FUSE_DONT_MASK;
  o.flags = ii->flags & want;
  o.max_readahead = ii->max_readahead;
  o.max_background = 64;
  o.congestion_threshold = 48;
  o.max_write = MAX_WRITE;
  o.time_gran = 1;
  o.max_pages = (o.flags & FUSE_MAX_PAGES) ? MAX_WRITE / PAGE : 0;
  if (!(o.flags & FUSE_MAX_PAGES)) o.max_write = 32 * PAGE;
  send_reply(ih->unique, 0, &o, sizeof o);
}

/* requests served per opcode, printed at exit in the foreground (-f): what a workload asked */
static uint64_t counts[64];

static void print_counts(void) {
  static const struct { uint32_t op; const char *name; } names[] = {
      {FUSE_LOOKUP, "LOOKUP"}, {FUSE_FORGET, "FORGET"}, {FUSE_BATCH_FORGET, "BATCH_FORGET"}, {FUSE_GETATTR, "GETATTR"},
      {FUSE_SETATTR, "SETATTR"}, {FUSE_READLINK, "READLINK"}, {FUSE_OPEN, "OPEN"}, {FUSE_READ, "READ"},
      {FUSE_WRITE, "WRITE"}, {FUSE_CREATE, "CREATE"}, {FUSE_RELEASE, "RELEASE"}, {FUSE_FLUSH, "FLUSH"},
      {FUSE_OPENDIR, "OPENDIR"}, {FUSE_READDIR, "READDIR"}, {FUSE_READDIRPLUS, "READDIRPLUS"},
      {FUSE_RELEASEDIR, "RELEASEDIR"}, {FUSE_GETXATTR, "GETXATTR"}, {FUSE_LISTXATTR, "LISTXATTR"},
      {FUSE_ACCESS, "ACCESS"}, {FUSE_STATFS, "STATFS"}};
  uint64_t total = 0, known = 0;
  for (size_t i = 0; i < 64; i++) total += counts[i];
  fprintf(stderr, "floor-server: %llu requests:", (unsigned long long)total);
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (counts[names[i].op]) {
      fprintf(stderr, " %s=%llu", names[i].name, (unsigned long long)counts[names[i].op]);
      known += counts[names[i].op];
    }
  fprintf(stderr, " other=%llu\n", (unsigned long long)(total - known));
}

static void serve(void) {
  size_t insize = MAX_WRITE + PAGE * 4;
  inbuf = malloc(insize);
  if (!inbuf) die("out of memory");
  for (;;) {
    ssize_t got = read(fuse_fd, inbuf, insize);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;
      if (errno == ENODEV) return; /* unmounted */
      die("read /dev/fuse");
    }
    if ((size_t)got < sizeof(struct fuse_in_header)) continue;
    const struct fuse_in_header *ih = (const struct fuse_in_header *)inbuf;
    const void *arg = inbuf + sizeof *ih;
    struct node *n;
    counts[ih->opcode & 63]++;
    switch (ih->opcode) {
      case FUSE_INIT:
        do_init(ih, arg);
        break;
      case FUSE_DESTROY:
        send_reply(ih->unique, 0, NULL, 0);
        break;
      case FUSE_FORGET:
      case FUSE_BATCH_FORGET:
      case FUSE_INTERRUPT:
        break; /* no reply; nodes live as long as the server */
      case FUSE_LOOKUP: {
        const char *name = arg;
        int64_t idx = table_get((uint32_t)(ih->nodeid - 1), name, strlen(name));
        struct fuse_entry_out e;
        if (idx < 0) {
          memset(&e, 0, sizeof e); /* negative entry, cached as layerfs's */
          e.entry_valid = TIMEOUT;
        } else {
          fill_entry(&e, (uint32_t)idx);
        }
        send_reply(ih->unique, 0, &e, sizeof e);
        break;
      }
      case FUSE_GETATTR:
        if (!(n = node_of(ih->nodeid))) send_reply(ih->unique, -ENOENT, NULL, 0);
        else reply_attr(ih->unique, n);
        break;
      case FUSE_SETATTR:
        do_setattr(ih, arg);
        break;
      case FUSE_READLINK:
        if (!(n = node_of(ih->nodeid)) || !S_ISLNK(n->mode)) send_reply(ih->unique, -EINVAL, NULL, 0);
        else send_reply(ih->unique, 0, n->link, n->linklen);
        break;
      case FUSE_OPENDIR:
      case FUSE_OPEN: {
        struct fuse_open_out o;
        memset(&o, 0, sizeof o);
        o.open_flags = FOPEN_KEEP_CACHE | (ih->opcode == FUSE_OPENDIR ? FOPEN_CACHE_DIR : 0);
        if (!(n = node_of(ih->nodeid))) send_reply(ih->unique, -ENOENT, NULL, 0);
        else if (ih->opcode == FUSE_OPEN && S_ISDIR(n->mode)) send_reply(ih->unique, -EISDIR, NULL, 0);
        else {
          const struct fuse_open_in *oi = arg;
          if (ih->opcode == FUSE_OPEN && (oi->flags & O_TRUNC)) n->size = 0;
          send_reply(ih->unique, 0, &o, sizeof o);
        }
        break;
      }
      case FUSE_READDIR:
      case FUSE_READDIRPLUS:
        do_readdir(ih, arg, ih->opcode == FUSE_READDIRPLUS);
        break;
      case FUSE_READ: {
        const struct fuse_read_in *ri = arg;
        n = node_of(ih->nodeid);
        uint64_t len = 0;
        if (n && ri->offset < n->size) len = n->size - ri->offset < ri->size ? n->size - ri->offset : ri->size;
        /* zeros: the reply is written from outbuf, so read in pieces no larger than it */
        size_t cap = sizeof outbuf - sizeof(struct fuse_out_header);
        if (len > cap) len = cap;
        memset(outbuf + sizeof(struct fuse_out_header), 0, len);
        send_reply(ih->unique, 0, outbuf + sizeof(struct fuse_out_header), len);
        break;
      }
      case FUSE_WRITE: {
        const struct fuse_write_in *wi = arg;
        if (!(n = node_of(ih->nodeid))) {
          send_reply(ih->unique, -ENOENT, NULL, 0);
          break;
        }
        if (wi->offset + wi->size > n->size) n->size = wi->offset + wi->size;
        now(&n->mt, &n->mtn);
        n->ct = n->mt, n->ctn = n->mtn;
        struct fuse_write_out wo = {.size = wi->size};
        send_reply(ih->unique, 0, &wo, sizeof wo);
        break;
      }
      case FUSE_CREATE: {
        const struct fuse_create_in *ci = arg;
        do_create(ih, ci, (const char *)(ci + 1));
        break;
      }
      case FUSE_RELEASE:
      case FUSE_RELEASEDIR:
      case FUSE_FLUSH:
      case FUSE_FSYNC:
      case FUSE_FSYNCDIR:
      case FUSE_ACCESS:
        send_reply(ih->unique, 0, NULL, 0);
        break;
      case FUSE_GETXATTR:
        send_reply(ih->unique, xattr_enosys ? -ENOSYS : -ENODATA, NULL, 0);
        break;
      case FUSE_LISTXATTR: {
        if (xattr_enosys) {
          send_reply(ih->unique, -ENOSYS, NULL, 0);
          break;
        }
        const struct fuse_getxattr_in *gi = arg;
        struct fuse_getxattr_out go;
        memset(&go, 0, sizeof go);
        if (gi->size == 0) send_reply(ih->unique, 0, &go, sizeof go);
        else send_reply(ih->unique, 0, NULL, 0);
        break;
      }
      case FUSE_STATFS: {
        struct fuse_statfs_out so;
        memset(&so, 0, sizeof so);
        so.st.blocks = 1u << 20;
        so.st.bfree = so.st.bavail = 1u << 19;
        so.st.files = nnodes + (1u << 20);
        so.st.ffree = 1u << 20;
        so.st.bsize = so.st.frsize = PAGE;
        so.st.namelen = 255;
        send_reply(ih->unique, 0, &so, sizeof so);
        break;
      }
      default:
        send_reply(ih->unique, -ENOSYS, NULL, 0);
    }
  }
}

int main(int argc, char **argv) {
  int foreground = argc > 1 && strcmp(argv[1], "-f") == 0;
  if (argc != 3 + foreground) {
    fprintf(stderr, "usage: layerfs-floor-server [-f] DUMP MOUNTPOINT\n");
    return 2;
  }
  const char *dump = argv[1 + foreground], *mnt = argv[2 + foreground];
  load(dump);
  xattr_enosys = getenv("FLOOR_C_XATTR_ENOSYS") != NULL && strcmp(getenv("FLOOR_C_XATTR_ENOSYS"), "1") == 0;
  fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fuse_fd < 0) die("/dev/fuse");
  char data[128];
  snprintf(data, sizeof data, "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", fuse_fd);
  if (mount("floor-c", mnt, "fuse.floor-c", MS_NOSUID | MS_NODEV, data) != 0) die(mnt);
  if (!foreground) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid > 0) _exit(0);
    setsid();
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) {
      dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
      if (nul > 2) close(nul);
    }
  }
  serve();
  if (foreground) print_counts();
  return 0;
}
