/**
 * Extracts an (uncompressed) OCI tar layer into a private staging directory in the store's AUFS
 * on-disk format, and computes its DiffID (sha256 of the uncompressed tar).
 *
 * OCI whiteouts `.wh.NAME` and the opaque marker `.wh..wh..opq` are stored as the same-named empty
 * files (the AUFS format), other `.wh..wh.*` names (AUFS private state) are dropped. Ownership, modes,
 * times (PAX ns times when present), xattrs (PAX SCHILY.xattr.*), hard links, symlinks, fifos and
 * devices (as root) are kept. Defences: names with `..` or absolute, writes through symlinks, hard
 * links to anything not earlier in this archive, device nodes when not root, corrupt or truncated
 * archives: each is a one-line error. Nothing is followed: parents are lstat'ed, files opened with
 * O_NOFOLLOW|O_EXCL, metadata applied with lchown/lutimes after re-checking the entry's type.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { FsError, errnoCode, isCode } from '../errors/index.js';
import { cleanMemberName, resolveBeneath } from './safe-path.js';
import { storeErr } from './store-error.js';
import { OPQ, WH, WH_META, isPrivateXattr } from '../format/index.js';
import { setXattr } from './xattr.js';
import { PaxSniffer } from './tar-format.js';

// OCI's whiteout names are AUFS's: `.wh.NAME`, the opaque marker `.wh..wh..opq`, meta names `.wh..wh.*`.

type Kind = 'file' | 'dir' | 'symlink' | 'fifo' | 'chr' | 'blk';

interface Pending {
  kind: Kind;
  mode: number;
  uid: number;
  gid: number;
  atime: number;
  mtime: number;
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

export interface ImportOptions {
  /** Allow device nodes and chown (default: running as root). */
  asRoot?: boolean;
  /** Called with the uncompressed bytes read so far. */
  onBytes?: (n: number) => void;
  /**
   * Apply the layer onto `dest` instead of storing it: whiteouts remove what they name, an opaque
   * marker empties its directory (used to flatten a chain; the archive must list a directory's
   * opaque marker before its children, as our export does).
   */
  apply?: boolean;
}


function paxTime(pax: Record<string, string> | null | undefined, key: string): number | undefined {
  const v = pax?.[key];
  if (v === undefined || !/^-?\d+(\.\d+)?$/.test(v)) return undefined;
  const [s, frac = ''] = v.split('.');
  const sec = Number(s);
  const ns = Number((frac + '000000000').slice(0, 9));
  // a double cannot hold every ns; never let rounding carry into the next second
  const t = sec + ns / 1e9;
  return Math.floor(t) > sec ? sec + 0.999999 : t;
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

function matches(st: fs.Stats, kind: Kind): boolean {
  switch (kind) {
    case 'file':
      return st.isFile();
    case 'dir':
      return st.isDirectory();
    case 'symlink':
      return st.isSymbolicLink();
    case 'fifo':
      return st.isFIFO();
    case 'chr':
      return st.isCharacterDevice();
    case 'blk':
      return st.isBlockDevice();
  }
}

function run(cmd: string, args: string[], what: string): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw storeErr('EIO', `cannot create ${what}: ${(r.stderr || String(r.error ?? '')).trim().split('\n')[0]}`, 'import');
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

/** Extracts the tar `input` into the (empty, private) directory `dest`. */
export async function extractLayer(input: Readable, dest: string, opts: ImportOptions = {}): Promise<ImportResult> {
  const asRoot = opts.asRoot ?? process.getuid?.() === 0;
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

  const pending = new Map<string, Pending>();
  const files = new Set<string>(); // non-directories extracted so far (hard link targets)
  const inodes = new Map<string, number>();
  let knownDirs = new Set<string>();
  let entries = 0;

  /** Removes whatever is at `rel` (this archive replaces it). */
  function clear(rel: string, abs: string, keepDir: boolean): boolean {
    const st = lstatOrUndefined(abs);
    if (!st) return false;
    if (st.isDirectory()) {
      if (keepDir) return true;
      fs.rmSync(abs, { recursive: true, force: true });
      for (const k of [...pending.keys()]) if (k === rel || k.startsWith(rel + '/')) pending.delete(k);
      for (const k of [...files]) if (k.startsWith(rel + '/')) files.delete(k);
      knownDirs = new Set();
    } else {
      fs.unlinkSync(abs);
    }
    files.delete(rel);
    return false;
  }

  try {
    for await (const entry of extract) {
      const index = entries++;
      const entryXattrs = sniffer.xattrs.get(index) ?? [];
      sniffer.xattrs.delete(index);
      const h = entry.header;
      const rel = cleanMemberName(h.name);
      const kind = kindOf(h.type);
      if (kind === undefined) throw storeErr('EINVAL', `unsupported tar entry type ${String(h.type)}`, 'import', rel);
      const base = rel.slice(rel.lastIndexOf('/') + 1);
      if (rel === '') {
        // the layer root itself ("./"): only its metadata could be kept; the root is the branch dir
        entry.resume();
        continue;
      }
      if (base.startsWith(WH_META) && base !== OPQ) {
        entry.resume(); // AUFS private state, never part of a layer
        continue;
      }
      const whiteout = base.startsWith(WH);
      if (opts.apply && whiteout) {
        entry.resume();
        const dirRel = rel.slice(0, rel.length - base.length).replace(/\/$/, '');
        const dirAbs = resolveBeneath(dest, dirRel === '' ? '' : `${dirRel}/x`, true, knownDirs);
        const parent = dirRel === '' ? dest : dirAbs.slice(0, -2);
        if (base === OPQ) {
          for (const n of fs.readdirSync(parent)) {
            const r = dirRel === '' ? n : `${dirRel}/${n}`;
            clear(r, `${parent}/${n}`, false);
          }
        } else {
          const r = (dirRel === '' ? '' : `${dirRel}/`) + base.slice(WH.length);
          clear(r, `${parent}/${base.slice(WH.length)}`, false);
        }
        continue;
      }
      if (whiteout && kind !== 'file' && kind !== 'link') {
        throw storeErr('EINVAL', 'whiteout entry is not a regular file', 'import', rel);
      }
      const abs = resolveBeneath(dest, rel, true, knownDirs);
      const pax = typeof h.pax === 'object' && h.pax !== null ? (h.pax as Record<string, string>) : null;
      const mtime = paxTime(pax, 'mtime') ?? (h.mtime ? h.mtime.getTime() / 1000 : 0);
      const atime = paxTime(pax, 'atime') ?? mtime;
      const uid = pax?.uid !== undefined ? Number(pax.uid) : (h.uid ?? 0);
      const gid = pax?.gid !== undefined ? Number(pax.gid) : (h.gid ?? 0);
      const mode = (h.mode ?? 0o644) & 0o7777;
      const xattrs = whiteout ? [] : entryXattrs.filter(([name]) => !isPrivateXattr(name));
      const meta = (k: Kind): Pending => ({ kind: k, mode, uid, gid, atime, mtime, xattrs });

      if (kind === 'link' && !whiteout) {
        const target = cleanMemberName(h.linkname ?? '');
        if (target === '' || !files.has(target)) {
          throw storeErr('EPERM', 'hard link to outside the layer', 'import', `${rel} -> ${h.linkname ?? ''}`);
        }
        const tAbs = resolveBeneath(dest, target, false, knownDirs);
        const tst = lstatOrUndefined(tAbs);
        if (!tst || tst.isDirectory()) throw storeErr('EPERM', 'hard link to outside the layer', 'import', rel);
        entry.resume();
        if (target === rel) continue;
        clear(rel, abs, false);
        fs.linkSync(tAbs, abs);
        files.add(rel);
        continue;
      }
      if (kind === 'dir') {
        entry.resume();
        const exists = clear(rel, abs, true);
        if (!exists) fs.mkdirSync(abs, 0o700);
        knownDirs.add(rel);
        pending.set(rel, meta('dir'));
        continue;
      }
      clear(rel, abs, false);
      switch (whiteout ? 'file' : (kind as Kind)) {
        case 'file': {
          const fd = fs.openSync(
            abs,
            fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
            0o600,
          );
          try {
            for await (const chunk of entry) {
              if (whiteout) continue; // a whiteout is empty whatever the archive says
              const b = chunk as Buffer;
              let off = 0;
              while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
            }
            const st = fs.fstatSync(fd);
            inodes.set(`${st.ino}`, st.size);
          } finally {
            fs.closeSync(fd);
          }
          pending.set(rel, meta('file'));
          break;
        }
        case 'symlink':
          entry.resume();
          fs.symlinkSync(h.linkname ?? '', abs);
          pending.set(rel, meta('symlink'));
          break;
        case 'fifo':
          entry.resume();
          run('mkfifo', ['-m', '600', '--', abs], 'fifo');
          pending.set(rel, meta('fifo'));
          break;
        case 'chr':
        case 'blk': {
          entry.resume();
          if (!asRoot) throw storeErr('EPERM', 'device node in layer (needs root)', 'import', rel);
          const t = kind === 'chr' ? 'c' : 'b';
          run('mknod', ['-m', '600', '--', abs, t, String(h.devmajor ?? 0), String(h.devminor ?? 0)], 'device node');
          pending.set(rel, meta(t === 'c' ? 'chr' : 'blk'));
          break;
        }
      }
      files.add(rel);
    }
  } catch (e) {
    extract.destroy();
    input.destroy();
    if (e instanceof FsError) throw e;
    if (isCode(e, 'EEXIST', 'ENOTDIR', 'ELOOP', 'EISDIR')) throw storeErr('EINVAL', 'conflicting tar entries', 'import');
    if (errnoCode(e) !== undefined) throw e;
    throw storeErr('EINVAL', 'corrupt or truncated tar archive', 'import');
  }

  // Metadata last, deepest first (so creating children does not disturb a directory's times/mode),
  // re-checking each path beneath the root and its type, never following a symlink.
  const order = [...pending.keys()].sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? 1 : -1));
  for (const rel of order) {
    const m = pending.get(rel)!;
    const abs = resolveBeneath(dest, rel, false, knownDirs);
    const st = lstatOrUndefined(abs);
    if (!st || !matches(st, m.kind)) continue;
    if (asRoot) fs.lchownSync(abs, m.uid, m.gid);
    if (m.kind !== 'symlink') fs.chmodSync(abs, m.mode);
    for (const [name, value] of m.xattrs) setXattr(abs, name, value);
    fs.lutimesSync(abs, m.atime, m.mtime);
  }
  let size = 0;
  for (const s of inodes.values()) size += s;
  return { diffId: `sha256:${hash.digest('hex')}`, size, entries };
}
