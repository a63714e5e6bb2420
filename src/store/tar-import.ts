/**
 * Extracts an (uncompressed) OCI tar layer into a private staging directory in the store's AUFS
 * on-disk format, and computes its DiffID (sha256 of the uncompressed tar).
 *
 * One entry goes through named steps, each its own defence (as node-tar splits its unpacker):
 *   entryPath      name cleaned: no NUL, no absolute path, no `..`; depth and entry count bounded
 *   replaceEntry   a later entry replaces an earlier one (what it held is forgotten everywhere)
 *   whiteout       `.wh.NAME` / `.wh..wh..opq` kept as empty AUFS files; other `.wh..wh.*` dropped
 *   hardLink       only to a non-directory extracted earlier from this archive, beneath the root
 *   content        dirs, files (O_EXCL|O_NOFOLLOW), symlinks, fifos and devices (native mknod;
 *                  devices only as root), parents resolved beneath the root with no symlink on the way
 *   metadata       owner, mode, xattrs, ns times of a non-directory right after its content
 *   directoryTimes directories' metadata at the very end, deepest first (children move mtimes)
 *
 * OCI whiteouts `.wh.NAME` and the opaque marker `.wh..wh..opq` are stored as the same-named empty
 * files (the AUFS format), other `.wh..wh.*` names (AUFS private state) are dropped. Ownership, modes,
 * times (PAX ns times when present), xattrs (PAX SCHILY.xattr.*), hard links, symlinks, fifos and
 * devices (as root) are kept. Defences: names with `..` or absolute, writes through symlinks, hard
 * links to anything not earlier in this archive, device nodes when not root, corrupt or truncated
 * archives: each is a one-line error. Nothing is followed: parents are lstat'ed, files opened with
 * O_NOFOLLOW|O_EXCL, metadata applied with lchown/lutimes after re-checking the entry's type.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { FsError, errnoCode, isCode } from '../errors/index.js';
import { cleanMemberName, resolveBeneath } from './safe-path.js';
import { storeErr } from './store-error.js';
import { OPQ, WH, WH_META, isPrivateXattr } from '../format/index.js';
import { fsetXattr, setXattr } from './xattr.js';
import { PaxSniffer } from './tar-format.js';
import * as native from '../sys/native.js';
import { S_IFBLK, S_IFCHR, S_IFIFO } from '../sys/constants.js';

// OCI's whiteout names are AUFS's: `.wh.NAME`, the opaque marker `.wh..wh..opq`, meta names `.wh..wh.*`.

type Kind = 'file' | 'dir' | 'symlink' | 'fifo' | 'chr' | 'blk';

/** Owner, mode, xattrs and times of one entry, as the archive gives them. */
interface Metadata {
  mode: number;
  uid: number;
  gid: number;
  /** [seconds, nanoseconds] */
  atime: [number, number];
  mtime: [number, number];
  xattrs: [string, Buffer][];
}

export interface ImportResult {
  /** `sha256:<hex>` of the uncompressed tar. */
  diffId: string;
  /** Bytes of regular file content (hard links counted once). */
  size: number;
  /** Number of tar entries. */
  entries: number;
}

export interface ImportLimits {
  /** Most entries in one archive (default 10 million). */
  maxEntries: number;
  /** Most path components of one name (default 1024, as node-tar's maxDepth). */
  maxDepth: number;
}

export interface ImportOptions {
  /** Allow device nodes and chown (default: running as root). */
  asRoot?: boolean;
  /** Called with the uncompressed bytes read so far. */
  onBytes?: (n: number) => void;
  limits?: Partial<ImportLimits>;
}

const DEFAULT_LIMITS: ImportLimits = { maxEntries: 10_000_000, maxDepth: 1024 };

/** A PAX time (`1700000000.123456789`) as [s, ns], exactly; undefined when absent or malformed. */
function paxTime(pax: Record<string, string> | null, key: string): [number, number] | undefined {
  const m = /^(-?\d+)(?:\.(\d+))?$/.exec(pax?.[key] ?? '');
  if (!m) return undefined;
  return [Number(m[1]), Number(((m[2] ?? '') + '000000000').slice(0, 9))];
}

function kindOf(type: tar.Header['type'] | null | undefined): Kind | 'link' | undefined {
  switch (type) {
    case 'file':
    case 'contiguous-file':
    case null:
    case undefined:
      return 'file';
    case 'directory':
      return 'dir';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'link';
    case 'fifo':
      return 'fifo';
    case 'character-device':
      return 'chr';
    case 'block-device':
      return 'blk';
    default:
      return undefined;
  }
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if (isCode(e, 'ENOENT')) return undefined;
    throw e;
  }
}

/** Step 1, path safety: the entry's clean relative name, within the depth and count limits. */
function entryPath(name: string, index: number, limits: ImportLimits): string {
  if (index >= limits.maxEntries) throw storeErr('EFBIG', `more than ${limits.maxEntries} entries in the archive`, 'import');
  const rel = cleanMemberName(name);
  if (rel !== '' && rel.split('/').length > limits.maxDepth) {
    throw storeErr('ENAMETOOLONG', `tar entry deeper than ${limits.maxDepth} directories`, 'import', rel.slice(0, 200));
  }
  return rel;
}

/** The metadata a header carries (PAX ids and ns times when present; private xattrs left out). */
function metadataOf(h: tar.Header, xattrs: [string, Buffer][]): Metadata {
  const pax = typeof h.pax === 'object' && h.pax !== null ? (h.pax as Record<string, string>) : null;
  const secs = h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0;
  const mtime = paxTime(pax, 'mtime') ?? [secs, 0];
  return {
    mode: (h.mode ?? 0o644) & 0o7777,
    uid: pax?.uid !== undefined ? Number(pax.uid) : (h.uid ?? 0),
    gid: pax?.gid !== undefined ? Number(pax.gid) : (h.gid ?? 0),
    mtime,
    atime: paxTime(pax, 'atime') ?? mtime,
    xattrs: xattrs.filter(([n]) => !isPrivateXattr(n, true)),
  };
}

/** The layer being extracted: its root, and what the steps know about what is in it so far. */
class Extraction {
  /** Directories checked or made beneath the root (so parents are lstat'ed once). */
  private readonly dirs = new Set<string>();
  /** Non-directories extracted so far: the only allowed hard link targets. */
  private readonly extracted = new Set<string>();
  /** Directories whose metadata waits for the end. */
  private readonly dirMeta = new Map<string, Metadata>();
  /** Sizes of the regular files' inodes (hard links once). */
  private readonly inodes = new Map<number, number>();

  constructor(
    readonly dest: string,
    readonly asRoot: boolean,
  ) {}

  /** `rel` beneath the root, parents made and checked (none may be a symlink or a non-directory). */
  private place(rel: string): string {
    return resolveBeneath(this.dest, rel, true, this.dirs);
  }

  /** Step 2: removes whatever an earlier entry put at `rel`; a directory stays when `keepDir`. */
  private replaceEntry(rel: string, abs: string, keepDir: boolean): boolean {
    const st = lstatOrUndefined(abs);
    if (!st) return false;
    if (st.isDirectory()) {
      if (keepDir) return true;
      fs.rmSync(abs, { recursive: true, force: true });
      const inside = (k: string): boolean => k === rel || k.startsWith(rel + '/');
      for (const k of [...this.dirMeta.keys()]) if (inside(k)) this.dirMeta.delete(k);
      for (const k of [...this.extracted]) if (inside(k)) this.extracted.delete(k);
      this.dirs.clear();
    } else {
      fs.unlinkSync(abs);
    }
    this.extracted.delete(rel);
    return false;
  }

  /** Step 3: a whiteout or opaque marker, stored as an empty file (no xattrs, whatever the archive says). */
  whiteout(rel: string, m: Metadata): Promise<void> {
    return this.file(rel, { ...m, xattrs: [] }, undefined);
  }

  /** Step 4: a hard link, only to a non-directory this archive extracted before. */
  hardLink(rel: string, linkname: string): void {
    const target = cleanMemberName(linkname);
    if (target === '' || !this.extracted.has(target)) {
      throw storeErr('EPERM', 'hard link to outside the layer', 'import', `${rel} -> ${linkname}`);
    }
    const tAbs = resolveBeneath(this.dest, target, false, this.dirs);
    const tst = lstatOrUndefined(tAbs);
    if (!tst || tst.isDirectory()) throw storeErr('EPERM', 'hard link to outside the layer', 'import', rel);
    if (target === rel) return;
    const abs = this.place(rel);
    this.replaceEntry(rel, abs, false);
    fs.linkSync(tAbs, abs);
    this.extracted.add(rel);
  }

  /** Step 5a: a directory (kept when it exists); its metadata waits for the end. */
  dir(rel: string, m: Metadata): void {
    const abs = this.place(rel);
    if (!this.replaceEntry(rel, abs, true)) fs.mkdirSync(abs, 0o700);
    this.dirs.add(rel);
    this.dirMeta.set(rel, m);
  }

  /** Step 5b: a regular file, created exclusively and never through a symlink, then its metadata. */
  async file(rel: string, m: Metadata, data: AsyncIterable<unknown> | undefined): Promise<void> {
    const abs = this.place(rel);
    this.replaceEntry(rel, abs, false);
    const fd = fs.openSync(abs, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      if (data) {
        for await (const chunk of data) {
          const b = chunk as Buffer;
          let off = 0;
          while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
        }
      }
      const st = fs.fstatSync(fd);
      this.inodes.set(st.ino, st.size);
      // step 6 through the fd: nothing can be swapped in between
      if (this.asRoot) fs.fchownSync(fd, m.uid, m.gid);
      fs.fchmodSync(fd, m.mode);
      for (const [name, value] of m.xattrs) fsetXattr(fd, name, value, abs);
      native.futimens(fd, m.atime[0], m.atime[1], m.mtime[0], m.mtime[1]);
    } finally {
      fs.closeSync(fd);
    }
    this.extracted.add(rel);
  }

  /** Step 5c: a symlink (its target is never followed here), a fifo or a device node (root only). */
  special(rel: string, kind: 'symlink' | 'fifo' | 'chr' | 'blk', m: Metadata, h: tar.Header): void {
    if ((kind === 'chr' || kind === 'blk') && !this.asRoot) throw storeErr('EPERM', 'device node in layer (needs root)', 'import', rel);
    const abs = this.place(rel);
    this.replaceEntry(rel, abs, false);
    if (kind === 'symlink') fs.symlinkSync(h.linkname ?? '', abs);
    else if (kind === 'fifo') native.mknod(abs, S_IFIFO | 0o600, 0);
    else native.mknod(abs, (kind === 'chr' ? S_IFCHR : S_IFBLK) | 0o600, native.makedev(h.devmajor ?? 0, h.devminor ?? 0));
    this.metadata(abs, kind, m);
    this.extracted.add(rel);
  }

  /** Step 6: owner, mode (not of symlinks), xattrs, ns times, by a path that was just made. */
  private metadata(abs: string, kind: Kind, m: Metadata): void {
    if (this.asRoot) fs.lchownSync(abs, m.uid, m.gid);
    if (kind !== 'symlink') fs.chmodSync(abs, m.mode);
    for (const [name, value] of m.xattrs) setXattr(abs, name, value);
    native.utimensat(abs, m.atime[0], m.atime[1], m.mtime[0], m.mtime[1], true);
  }

  /** Step 7: directories' metadata, deepest first, each re-resolved beneath the root and re-checked. */
  directoryTimes(): void {
    const order = [...this.dirMeta.keys()].sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? 1 : -1));
    for (const rel of order) {
      const abs = resolveBeneath(this.dest, rel, false, this.dirs);
      if (!lstatOrUndefined(abs)?.isDirectory()) continue;
      this.metadata(abs, 'dir', this.dirMeta.get(rel)!);
    }
  }

  get size(): number {
    let n = 0;
    for (const s of this.inodes.values()) n += s;
    return n;
  }
}

/** Extracts the tar `input` into the (empty, private) directory `dest`. */
export async function extractLayer(input: Readable, dest: string, opts: ImportOptions = {}): Promise<ImportResult> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const hash = createHash('sha256');
  const sniffer = new PaxSniffer(); // xattr values byte-exact (tar-stream gives PAX values as text)
  let bytes = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      sniffer.push(chunk);
      bytes += chunk.length;
      opts.onBytes?.(bytes);
      cb(null, chunk);
    },
  });
  const extract = tar.extract();
  input.on('error', (e) => hasher.destroy(e));
  hasher.on('error', (e) => extract.destroy(e));
  input.pipe(hasher).pipe(extract);

  const x = new Extraction(dest, opts.asRoot ?? process.getuid?.() === 0);
  let entries = 0;
  try {
    for await (const entry of extract) {
      const index = entries++;
      const entryXattrs = sniffer.xattrs.get(index) ?? [];
      sniffer.xattrs.delete(index);
      const h = entry.header;
      const rel = entryPath(h.name, index, limits);
      const kind = kindOf(h.type);
      if (kind === undefined) throw storeErr('EINVAL', `unsupported tar entry type ${String(h.type)}`, 'import', rel);
      const base = rel.slice(rel.lastIndexOf('/') + 1);
      const m = metadataOf(h, entryXattrs);
      if (rel === '' || (base.startsWith(WH_META) && base !== OPQ)) {
        entry.resume(); // the layer root itself (the branch dir), or AUFS private state: never part of a layer
      } else if (base.startsWith(WH)) {
        if (kind !== 'file' && kind !== 'link') throw storeErr('EINVAL', 'whiteout entry is not a regular file', 'import', rel);
        entry.resume(); // a whiteout is empty whatever the archive says
        await x.whiteout(rel, m);
      } else if (kind === 'link') {
        entry.resume();
        x.hardLink(rel, h.linkname ?? '');
      } else if (kind === 'dir') {
        entry.resume();
        x.dir(rel, m);
      } else if (kind === 'file') {
        await x.file(rel, m, entry);
      } else {
        entry.resume();
        x.special(rel, kind, m, h);
      }
    }
  } catch (e) {
    extract.destroy();
    input.destroy();
    if (e instanceof FsError) throw e;
    if (isCode(e, 'EEXIST', 'ENOTDIR', 'ELOOP', 'EISDIR')) throw storeErr('EINVAL', 'conflicting tar entries', 'import');
    if (errnoCode(e) !== undefined) throw e;
    throw storeErr('EINVAL', 'corrupt or truncated tar archive', 'import');
  }
  x.directoryTimes();
  return { diffId: `sha256:${hash.digest('hex')}`, size: x.size, entries };
}
