/**
 * A tiny in-memory filesystem behind the engine's contract, to test the FUSE transport alone
 * (ids, handles, replies, errors) without the union engine. Loaded by the session worker through
 * `unionModule`; its `openUnion` has the same signature as src/fuse/ops.ts's.
 */
import type { Attr, Ctx, DirEntry, SetAttr, StatFs, UnionOps } from '../../src/engine/types.js';
import { fsErr, isCode } from '../../src/errors/index.js';
import type { OpenedUnion } from '../../src/fuse/open-union.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

export class MemNode {
  data = Buffer.alloc(0);
  children = new Map<string, MemNode>();
  xattrs = new Map<string, Buffer>();
  target = '';
  nlink = 1;
  mtime = Date.now() / 1000;
  constructor(
    readonly ino: number,
    public mode: number,
    public uid: number,
    public gid: number,
  ) {}
}

export interface MemFile {
  readonly fd: number;
  readonly flags: number;
  node: MemNode;
}

export interface MemDir {
  readonly entries: readonly DirEntry[];
}

const dtOf = (mode: number): number => ((mode & S_IFMT) === S_IFDIR ? 4 : (mode & S_IFMT) === S_IFLNK ? 10 : 8);

export class MemUnion implements UnionOps<MemNode, MemFile, MemDir> {
  private nextIno = 2;
  readonly root = new MemNode(1, S_IFDIR | 0o755, 0, 0);
  forgotten = 0;

  private dir(n: MemNode): MemNode {
    if ((n.mode & S_IFMT) !== S_IFDIR) throw fsErr('ENOTDIR');
    return n;
  }
  private add(parent: MemNode, name: string, mode: number, ctx: Ctx): MemNode {
    const d = this.dir(parent);
    if (name.startsWith('.wh.')) throw fsErr('EINVAL');
    if (d.children.has(name)) throw fsErr('EEXIST');
    const n = new MemNode(this.nextIno++, mode, ctx.uid, ctx.gid);
    if ((mode & S_IFMT) === S_IFDIR) n.nlink = 2;
    d.children.set(name, n);
    return n;
  }
  lookup(parent: MemNode, name: string): MemNode {
    if (name === '__crash_the_worker__') process.exit(3); // transport test: the serving thread dies
    const n = this.dir(parent).children.get(name);
    if (!n) throw fsErr('ENOENT');
    return n;
  }
  lookupAttr(parent: MemNode, name: string): { node: MemNode; attr: Attr } | null {
    let n: MemNode;
    try {
      n = this.lookup(parent, name); // through lookup: a subclass's faults apply here too
    } catch (e) {
      if (isCode(e, 'ENOENT')) return null;
      throw e;
    }
    return { node: n, attr: this.getattr(n) };
  }
  forget(): void {
    this.forgotten++;
  }
  getattr(n: MemNode): Attr {
    const s = Math.floor(n.mtime);
    const ns = Math.floor((n.mtime - s) * 1e9);
    return {
      ino: n.ino, mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid, rdev: 0, size: (n.mode & S_IFMT) === S_IFLNK ? n.target.length : n.data.length,
      blocks: Math.ceil(n.data.length / 512), blksize: 4096, atimeSec: s, atimeNsec: ns, mtimeSec: s, mtimeNsec: ns, ctimeSec: s, ctimeNsec: ns,
    };
  }
  setattr(n: MemNode, set: SetAttr): Attr {
    if (set.mode !== undefined) n.mode = (n.mode & S_IFMT) | (set.mode & 0o7777);
    if (set.uid !== undefined) n.uid = set.uid;
    if (set.gid !== undefined) n.gid = set.gid;
    if (set.size !== undefined) {
      const b = Buffer.alloc(set.size);
      n.data.copy(b, 0, 0, Math.min(set.size, n.data.length));
      n.data = b;
    }
    if (set.mtime !== undefined && set.mtime !== 'omit') n.mtime = set.mtime === 'now' ? Date.now() / 1000 : set.mtime.sec + set.mtime.nsec / 1e9;
    return this.getattr(n);
  }
  readlink(n: MemNode): string {
    if ((n.mode & S_IFMT) !== S_IFLNK) throw fsErr('EINVAL');
    return n.target;
  }
  mknod(p: MemNode, name: string, mode: number, _rdev: number, ctx: Ctx): MemNode {
    return this.add(p, name, mode, ctx);
  }
  mkdir(p: MemNode, name: string, mode: number, ctx: Ctx): MemNode {
    return this.add(p, name, S_IFDIR | (mode & 0o7777), ctx);
  }
  symlink(p: MemNode, name: string, target: string, ctx: Ctx): MemNode {
    const n = this.add(p, name, S_IFLNK | 0o777, ctx);
    n.target = target;
    return n;
  }
  link(n: MemNode, np: MemNode, name: string): MemNode {
    const d = this.dir(np);
    if (d.children.has(name)) throw fsErr('EEXIST');
    d.children.set(name, n);
    n.nlink++;
    return n;
  }
  unlink(p: MemNode, name: string): void {
    const n = this.lookup(p, name);
    if ((n.mode & S_IFMT) === S_IFDIR) throw fsErr('EISDIR');
    p.children.delete(name);
    n.nlink--;
  }
  rmdir(p: MemNode, name: string): void {
    const n = this.lookup(p, name);
    if ((n.mode & S_IFMT) !== S_IFDIR) throw fsErr('ENOTDIR');
    if (n.children.size > 0) throw fsErr('ENOTEMPTY');
    p.children.delete(name);
  }
  rename(p: MemNode, name: string, np: MemNode, newName: string, flags: number): void {
    const n = this.lookup(p, name);
    if (flags & 1 && this.dir(np).children.has(newName)) throw fsErr('EEXIST');
    p.children.delete(name);
    this.dir(np).children.set(newName, n);
  }
  open(n: MemNode, flags: number): MemFile {
    return { fd: -1, flags, node: n };
  }
  create(p: MemNode, name: string, mode: number, flags: number, ctx: Ctx): { node: MemNode; fh: MemFile } {
    const node = this.add(p, name, S_IFREG | (mode & 0o7777), ctx);
    return { node, fh: { fd: -1, flags, node } };
  }
  read(f: MemFile, buf: Buffer, off: number, len: number, pos: number): number {
    return f.node.data.copy(buf, off, pos, Math.min(f.node.data.length, pos + len));
  }
  write(f: MemFile, buf: Buffer, off: number, len: number, pos: number): number {
    const n = f.node;
    if (pos + len > n.data.length) {
      const b = Buffer.alloc(pos + len);
      n.data.copy(b);
      n.data = b;
    }
    buf.copy(n.data, pos, off, off + len);
    n.mtime = Date.now() / 1000;
    return len;
  }
  flush(): void {}
  fsync(): void {}
  release(): void {}
  fallocate(f: MemFile, _mode: number, offset: number, length: number): void {
    if (offset + length > f.node.data.length) this.setattr(f.node, { size: offset + length });
  }
  lseek(f: MemFile, offset: number, whence: number): number {
    if (whence === 3) return offset < f.node.data.length ? offset : (() => { throw fsErr('ENXIO'); })();
    if (whence === 4) return f.node.data.length;
    throw fsErr('EINVAL');
  }
  opendir(n: MemNode): MemDir {
    const entries = [...this.dir(n).children].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, c]) => ({ name, type: dtOf(c.mode), ino: c.ino }));
    return { entries: [{ name: '.', type: 4, ino: n.ino }, { name: '..', type: 4, ino: n.ino }, ...entries] };
  }
  releasedir(): void {}
  statfs(): StatFs {
    return { bsize: 4096, frsize: 4096, blocks: 1000, bfree: 500, bavail: 500, files: 100, ffree: 50, namelen: 255 };
  }
  access(): void {}
  getxattr(n: MemNode, name: string): Buffer {
    const v = n.xattrs.get(name);
    if (!v) throw fsErr('ENODATA');
    return v;
  }
  setxattr(n: MemNode, name: string, value: Buffer, flags: number): void {
    if (flags === 1 && n.xattrs.has(name)) throw fsErr('EEXIST');
    if (flags === 2 && !n.xattrs.has(name)) throw fsErr('ENODATA');
    n.xattrs.set(name, value);
  }
  listxattr(n: MemNode): string[] {
    return [...n.xattrs.keys()];
  }
  removexattr(n: MemNode, name: string): void {
    if (!n.xattrs.delete(name)) throw fsErr('ENODATA');
  }
  xattrNames(): readonly string[] | null {
    return null; // no listing: the transport asks getxattr
  }
  setInvalidator(): void {
    /* attributes never change as a side effect here */
  }
  close(): void {}
}

export function openUnion(options: string, _cwd: string): OpenedUnion {
  if (options.includes('fail')) throw fsErr('EINVAL', 'mount');
  const union = new MemUnion();
  return { union, branches: [{ path: '/mem', perm: 'rw' }], xiPath: '/mem/.xino', close: () => union.close() };
}
