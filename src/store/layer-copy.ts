/**
 * Copies layer directories into a new layer's (private, empty) diff dir without a tar in between:
 * file data by reflink / copy_file_range (branch/copy-data.ts, the copy-up's own copy), then owner,
 * mode, xattrs and nanosecond times, directories' metadata after their children.
 *
 * The layers are merged top-down, as the union shows them: the first layer holding a name wins; a
 * whiteout (`.wh.NAME` file, or overlay's char 0/0 device) hides NAME in the layers below; an opaque
 * dir (`.wh..wh..opq`, or `trusted.overlay.opaque=y`; at the root only the marker counts) hides the
 * layers below it. Two modes:
 *  - `keepWhiteouts` (commit: one layer): whiteouts and opaque markers are written in the store's
 *    format (AUFS files), as importing the layer's OCI export would write them: `.wh.NAME` with the
 *    whiteout's own mode and owner, overlay whiteouts and opaque markers as 0644 root-owned files.
 *  - otherwise (squash: a whole chain into a base layer): whiteouts are applied and dropped.
 * Private state is left out: `.wh..wh.*` names (except the opaque marker) and private xattrs.
 * Hard links stay hard links (by source inode); sockets are not copied (a tar cannot hold them).
 */
import * as fs from 'node:fs';
import { Branch, fdops, joinRel, nsParts } from '../branch/index.js';
import { isOpaque } from '../engine/whiteout.js';
import { OPQ, WH, WH_META, isOverlayWhiteout, isPrivateXattr, whiteoutTarget } from '../format/index.js';
import { storeErr } from './store-error.js';
import { deviceNumbers, entryHeader, whiteoutBlocks } from './tar-export.js';
import { END_OF_ARCHIVE, headerBlocks, padding, type EntryType, type TarHeader } from './tar-format.js';
import { O_CREAT, O_DIRECTORY, O_EXCL, O_RDONLY, O_WRONLY, S_IFIFO, S_IFMT } from '../sys/constants.js';

export interface CopyLayersOptions {
  /** Write whiteouts and opaque markers (a commit); else apply them (a squash). */
  keepWhiteouts: boolean;
  /** chown to the sources' owners and allow device nodes (default: running as root). */
  asRoot?: boolean;
  /** Called with the file bytes copied so far. */
  onBytes?: (n: number) => void;
  /**
   * Receives the new tree's OCI export (tar-export.ts's format, byte for byte) as it is built:
   * each entry's header from the new entry's own metadata, file data as it is copied. Hashing it
   * gives the DiffID without reading the data a second time.
   */
  tar?: (chunk: Buffer) => void;
}

export interface CopyLayersResult {
  /** Bytes of regular file content (hard links counted once). */
  size: number;
  /** Entries written (whiteouts and markers included). */
  entries: number;
}

/** One entry the merge chose: where it comes from, and for a directory the lower layers merged into it. */
interface Chosen {
  layer: Branch;
  st: fs.BigIntStats;
  /** For a directory: every layer holding it as a directory, top first, up to the first opaque one. */
  dirs: Branch[];
  /** No lower layer can merge into this directory any more (a non-directory or opaque dir came between). */
  closed: boolean;
  /** A whiteout kept as `.wh.NAME` (its source entry and whether it is an AUFS file with its own mode). */
  whiteout?: { own: boolean };
}

/** Merges `layers` (directories, topmost first) into `dest` (an empty directory). */
export function copyLayers(layers: readonly string[], dest: string, opts: CopyLayersOptions): CopyLayersResult {
  const srcs = layers.map((d, i) => new Branch(d, 'ro', [], i));
  const dst = new Branch(dest, 'rw', [], 0);
  try {
    const c = new LayerCopy(dst, opts);
    // at the root only the AUFS marker makes a layer opaque (as the export reads it)
    const top = srcs.findIndex((b) => b.lstat(OPQ) !== null);
    c.dir('', top < 0 ? srcs : srcs.slice(0, top + 1), top === 0);
    c.emit(END_OF_ARCHIVE);
    return { size: c.size, entries: c.entries };
  } finally {
    for (const b of srcs) b.close();
    dst.close();
  }
}

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

class LayerCopy {
  size = 0;
  entries = 0;
  private copied = 0;
  /** `dev:ino` of a source with more links -> where its first name went. */
  private readonly links = new Map<string, string>();
  private readonly asRoot: boolean;
  /** Small pieces of the tar stream waiting to be passed on together. */
  private pending: Buffer[] = [];
  private pendingSize = 0;

  constructor(
    private readonly dst: Branch,
    private readonly opts: CopyLayersOptions,
  ) {
    this.asRoot = opts.asRoot ?? process.getuid?.() === 0;
  }

  emit(b: Buffer): void {
    if (!this.opts.tar) return;
    if (b.length >= 1 << 16) {
      this.flush();
      this.opts.tar(b);
      return;
    }
    this.pending.push(b);
    this.pendingSize += b.length;
    if (this.pendingSize >= 1 << 16 || b === END_OF_ARCHIVE) this.flush();
  }

  private flush(): void {
    if (this.pendingSize === 0) return;
    this.opts.tar!(this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingSize));
    this.pending = [];
    this.pendingSize = 0;
  }

  /** What the merge shows in directory `rel` of `layers` (top first): entries and kept whiteouts. */
  private merge(rel: string, layers: readonly Branch[]): Map<string, Chosen> {
    const keep = this.opts.keepWhiteouts;
    const chosen = new Map<string, Chosen>();
    const hidden = new Set<string>();
    layers.forEach((layer, i) => {
      const whiteouts: string[] = [];
      for (const name of layer.readdirNames(rel)) {
        if (name.startsWith(WH_META)) continue; // the opaque marker (handled by the caller) or private state
        const childRel = joinRel(rel, name);
        const st = layer.lstatBig(childRel);
        if (!st) continue;
        const target = whiteoutTarget(name);
        if (target !== undefined || isOverlayWhiteout({ mode: Number(st.mode), rdev: Number(st.rdev) })) {
          if (target !== undefined && !st.isFile()) continue; // not a whiteout file: dropped, as the export does
          whiteouts.push(target ?? name);
          if (keep && i === 0) chosen.set(WH + (target ?? name), { layer, st, dirs: [], closed: true, whiteout: { own: target !== undefined } });
          continue;
        }
        if (hidden.has(name)) continue;
        const prev = chosen.get(name);
        const isDir = st.isDirectory();
        if (!prev) {
          chosen.set(name, { layer, st, dirs: isDir ? [layer] : [], closed: !isDir || isOpaque(layer, childRel) });
        } else if (!prev.closed) {
          if (!isDir) prev.closed = true;
          else {
            prev.dirs.push(layer);
            if (isOpaque(layer, childRel)) prev.closed = true;
          }
        }
      }
      for (const w of whiteouts) hidden.add(w);
    });
    return chosen;
  }

  /**
   * Fills directory `rel` (already made in dst) from `layers` (each holds `rel` as a directory),
   * children in the export's order (bytewise sorted names, a directory's subtree right after it).
   * `opaque`: the top layer's dir is opaque (write the marker, when keeping whiteouts).
   */
  dir(rel: string, layers: readonly Branch[], opaque: boolean): void {
    if (opaque && this.opts.keepWhiteouts) this.marker(rel, layers[0]!);
    const chosen = this.merge(rel, layers);
    for (const name of [...chosen.keys()].sort(byBytes)) {
      const ch = chosen.get(name)!;
      const childRel = joinRel(rel, name);
      if (ch.whiteout) this.whiteout(childRel, ch.st, ch.whiteout.own);
      else if (ch.st.isDirectory()) this.subdir(childRel, ch);
      else this.nondir(childRel, ch.layer, ch.st);
    }
  }

  /** A directory: made with its metadata, its header, its children, then its times again. */
  private subdir(rel: string, ch: Chosen): void {
    this.dst.mkdir(rel, 0o700);
    this.entries++;
    this.metadata(rel, ch.layer, ch.st);
    this.emit(headerBlocks(entryHeader(this.dst.hostPath(rel), `${rel}/`, this.dst.lstatBig(rel)!, 'dir')));
    this.dir(rel, ch.dirs, isOpaque(ch.layer, rel));
    this.dst.setTimes(rel, ch.st); // creating the children moved them
  }

  /** A file, symlink, fifo or device (content, then metadata), or a hard link to an earlier one. */
  private nondir(rel: string, layer: Branch, st: fs.BigIntStats): void {
    if (st.isSocket()) return; // a tar cannot hold it
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        this.dst.link(first, rel);
        this.entries++;
        this.emit(headerBlocks(entryHeader(this.dst.hostPath(rel), rel, this.dst.lstatBig(rel)!, 'link', { linkname: first })));
        return;
      }
      this.links.set(key, rel);
    }
    this.entries++;
    if (st.isFile()) {
      this.file(rel, layer, st);
      return;
    }
    let type: EntryType;
    let extra: Partial<TarHeader> = {};
    if (st.isSymbolicLink()) {
      const target = layer.readlink(rel);
      this.dst.symlink(target, rel);
      type = 'symlink';
      extra = { linkname: target };
    } else if (st.isFIFO()) {
      this.dst.mknod(rel, S_IFIFO | 0o600, 0);
      type = 'fifo';
    } else {
      if (!this.asRoot) throw storeErr('EPERM', 'device node in layer (needs root)', 'commit', rel);
      this.dst.mknod(rel, (Number(st.mode) & S_IFMT) | 0o600, Number(st.rdev));
      type = st.isCharacterDevice() ? 'chr' : 'blk';
      extra = deviceNumbers(Number(st.rdev));
    }
    this.metadata(rel, layer, st);
    this.emit(headerBlocks(entryHeader(this.dst.hostPath(rel), rel, this.dst.lstatBig(rel)!, type, extra)));
  }

  /**
   * A regular file: made with its metadata and times, its header (from the new file), then its data
   * by reflink or read/write, each chunk passed into the tar stream too; its times set again last.
   */
  private file(rel: string, layer: Branch, st: fs.BigIntStats): void {
    const size = Number(st.size);
    const sfd = layer.open(rel, O_RDONLY);
    try {
      const dfd = this.dst.open(rel, O_WRONLY | O_CREAT | O_EXCL, 0o600);
      try {
        if (this.asRoot) fdops.fchown(dfd, Number(st.uid), Number(st.gid));
        fdops.fchmod(dfd, Number(st.mode) & 0o7777);
        for (const [name, value] of xattrsOf(layer, rel)) fdops.fsetxattr(dfd, name, value, 0);
        const [as, an] = nsParts(st.atimeNs);
        const [ms, mn] = nsParts(st.mtimeNs);
        fdops.futimens(dfd, as, an, ms, mn);
        this.emit(headerBlocks(entryHeader(this.dst.hostPath(rel), rel, fdops.fstatBig(dfd), 'file', { size })));
        const tar = this.opts.tar;
        fdops.copyData(sfd, dfd, size, {
          caps: this.dst.copyCaps(Number(st.dev)),
          sparse: st.blocks * 512n < st.size,
          ...(tar ? { tap: (chunk: Buffer) => this.emit(Buffer.from(chunk)) } : {}),
        });
        if (fdops.fstat(dfd).size !== size) throw storeErr('EIO', 'file changed size while it was copied', 'commit', rel);
        fdops.futimens(dfd, as, an, ms, mn); // the data moved mtime
      } finally {
        fdops.close(dfd);
      }
    } finally {
      fdops.close(sfd);
    }
    this.emit(padding(size));
    this.size += size;
    this.copied += size;
    this.opts.onBytes?.(this.copied);
  }

  /** Owner, mode (not of symlinks), xattrs, times: in this order (chown clears set-id bits and caps). */
  private metadata(rel: string, layer: Branch, st: fs.BigIntStats): void {
    if (this.asRoot) this.dst.lchown(rel, Number(st.uid), Number(st.gid));
    if (!st.isSymbolicLink()) this.dst.chmod(rel, Number(st.mode) & 0o7777);
    for (const [name, value] of xattrsOf(layer, rel)) this.dst.setxattr(rel, name, value, 0);
    this.dst.setTimes(rel, st);
  }

  /** `.wh.NAME` in the store's format: an AUFS whiteout keeps its mode and owner, an overlay one is 0644 root. */
  private whiteout(rel: string, st: fs.BigIntStats, own: boolean): void {
    this.empty(rel, own ? Number(st.mode) & 0o7777 : 0o644, own ? Number(st.uid) : 0, own ? Number(st.gid) : 0, st, true);
  }

  /** The opaque marker, 0644 root, with the marker's times (AUFS form) or the directory's (overlay form). */
  private marker(dirRel: string, layer: Branch): void {
    const st = layer.lstatBig(joinRel(dirRel, OPQ)) ?? layer.lstatBig(dirRel)!;
    this.empty(joinRel(dirRel, OPQ), 0o644, 0, 0, st, false);
  }

  /**
   * An empty file (whiteout or marker) and its header as the export writes it (no xattrs; `own`:
   * the file's mode and owner, else 0644 root as for opaque markers).
   */
  private empty(rel: string, mode: number, uid: number, gid: number, times: fs.BigIntStats, own: boolean): void {
    this.dst.createEmpty(rel, 0o600);
    if (this.asRoot) this.dst.lchown(rel, uid, gid);
    this.dst.chmod(rel, mode);
    this.dst.setTimes(rel, times);
    this.entries++;
    this.emit(whiteoutBlocks(rel, this.dst.lstatBig(rel)!, own));
  }
}

/** The xattrs a layer carries (private ones left out), sorted by name. */
function xattrsOf(layer: Branch, rel: string): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  for (const name of (layer.tryListxattr(rel) ?? []).filter((n) => !isPrivateXattr(n, true)).sort(byBytes)) {
    const v = layer.tryGetxattr(rel, name);
    if (v !== undefined) out.push([name, v]);
  }
  return out;
}

/** Makes a copied tree durable before it is renamed into place: one syncfs of its filesystem. */
export function syncTree(dir: string): void {
  const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    fdops.copySys.syncfs(fd);
  } finally {
    fdops.close(fd);
  }
}
