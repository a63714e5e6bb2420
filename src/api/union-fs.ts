/**
 * `UnionFS`: the union engine behind an `fs.promises`-like interface, for use in-process
 * without FUSE or root. Same names, argument order, option shapes and error shapes as node:fs
 * (`code`, negative `errno`, `syscall`, `path`, `dest`; message `ENOENT: no such file or
 * directory, open '/x'`). Paths are union-absolute ('/a/b'; 'a/b' means the same).
 */
import { constants as C } from 'node:fs';
import { FsError, errnoOf, toFsError } from '../errors/index.js';
import type { Ctx, UnionNodeLike, UnionOptions } from '../engine/types.js';
import {
  encodingOf,
  parseFlags,
  parseMode,
  pathString,
  toBuffer,
  toTimeSpec,
  type Data,
  type OpenFlags,
  type PathLike,
  type ReadFileOptions,
  type TimeLike,
  type WriteFileOptions,
} from './data.js';
import { FileHandle } from './file-handle.js';
import { openPath } from './open-path.js';
import { createEngine } from './engine-factory.js';
import { S_IFLNK, S_IFMT } from '../sys/constants.js';
import { isDirMode, Resolver, type Engine } from './resolve.js';
import { BigIntStats, Dirent, Stats } from './stats.js';

export { FileHandle } from './file-handle.js';
export { BigIntStats, Dirent, Stats } from './stats.js';

/** node's SystemError for `rm` of a directory without `recursive`. */
export class RmDirError extends Error {
  readonly code = 'ERR_FS_EISDIR';
  readonly errno = errnoOf('EISDIR');
  readonly syscall = 'rm';
  readonly path: string;
  constructor(path: string) {
    super(`Path is a directory: rm returned EISDIR (is a directory) ${path}`);
    this.name = 'SystemError';
    this.path = path;
  }
}

function isEngine(o: unknown): o is Engine {
  return typeof o === 'object' && o !== null && 'root' in o && typeof (o as { lookup?: unknown }).lookup === 'function';
}

/** f_type reported by statfs (FUSE's magic, as a mounted layerfs reports it). */
const LAYERFS_MAGIC = 0x65735546;

export interface UnionFSOptions {
  /** Who is asking (default: this process's uid/gid). */
  uid?: number;
  gid?: number;
  /** Applied to modes of new files/dirs where the parent has no default ACL (default: the process umask). */
  umask?: number;
}

export class UnionFS {
  readonly engine: Engine;
  readonly constants = C;
  #r: Resolver;
  #ctx: Ctx;
  #umask: number;

  /** From a mount option string (`dirs=A=rw:B=ro`, `lowerdir=...`), parsed options, or an engine. */
  constructor(options: string | UnionOptions | Engine, opts: UnionFSOptions = {}) {
    this.engine = isEngine(options) ? options : createEngine(options);
    this.#r = new Resolver(this.engine);
    this.#umask = opts.umask ?? process.umask();
    this.#ctx = {
      uid: opts.uid ?? process.getuid?.() ?? 0,
      gid: opts.gid ?? process.getgid?.() ?? 0,
      umask: this.#umask,
    };
  }

  /** Async factory, same as the constructor. */
  static async open(options: string | UnionOptions | Engine, opts?: UnionFSOptions): Promise<UnionFS> {
    return new UnionFS(options, opts);
  }

  /** Flush persistent state; the UnionFS is unusable afterwards. */
  async close(): Promise<void> {
    this.engine.close();
  }

  // ---- helpers -------------------------------------------------------------------------------

  /** Run `fn` synchronously; any error gets node:fs's syscall/path/dest for this call. */
  #call<T>(syscall: string, path: string, fn: () => T, dest?: string): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof RmDirError || e instanceof TypeError) throw e;
      const err = toFsError(e);
      throw err.withContext(syscall, path, dest);
    }
  }

  #attr(node: UnionNodeLike): number {
    return this.engine.getattr(node).mode;
  }

  #openPath(p: string, flags: number, mode: number, umask: number | null = this.#umask): FileHandle {
    return openPath(this.engine, this.#r, this.#ctx, p, flags, mode, umask);
  }

  // ---- files ---------------------------------------------------------------------------------

  async open(path: PathLike, flags?: OpenFlags, mode?: number | string): Promise<FileHandle> {
    const p = pathString(path);
    const f = parseFlags(flags, 'r');
    const m = parseMode(mode, 0o666);
    return this.#call('open', p, () => this.#openPath(p, f, m));
  }

  async readFile(path: PathLike | FileHandle, options?: BufferEncoding | ReadFileOptions | null): Promise<Buffer | string>;
  async readFile(path: PathLike | FileHandle, options?: BufferEncoding | ReadFileOptions | null): Promise<Buffer | string> {
    const enc = encodingOf(options ?? undefined);
    if (path instanceof FileHandle) return path.readFile(enc);
    const p = pathString(path);
    const flag = typeof options === 'object' && options !== null ? options.flag : undefined;
    const fh = this.#call('open', p, () => this.#openPath(p, parseFlags(flag, 'r'), 0o666));
    try {
      return await fh.readFile(enc);
    } finally {
      await fh.close();
    }
  }

  async writeFile(path: PathLike | FileHandle, data: Data, options?: BufferEncoding | WriteFileOptions | null): Promise<void> {
    const o: WriteFileOptions = typeof options === 'string' ? { encoding: options } : (options ?? {});
    return this.#writeWith(path, data, o, 'w');
  }

  async appendFile(path: PathLike | FileHandle, data: Data, options?: BufferEncoding | WriteFileOptions | null): Promise<void> {
    const o: WriteFileOptions = typeof options === 'string' ? { encoding: options } : (options ?? {});
    return this.#writeWith(path, data, o, 'a');
  }

  async #writeWith(path: PathLike | FileHandle, data: Data, o: WriteFileOptions, dflt: string): Promise<void> {
    const buf = toBuffer(data, o.encoding ?? 'utf8');
    if (path instanceof FileHandle) return path.writeFile(buf);
    const p = pathString(path);
    const fh = this.#call('open', p, () => this.#openPath(p, parseFlags(o.flag, dflt), parseMode(o.mode, 0o666)));
    try {
      await fh.writeFile(buf);
    } finally {
      await fh.close();
    }
  }

  async truncate(path: PathLike, len = 0): Promise<void> {
    const fh = await this.open(path, 'r+');
    try {
      await fh.truncate(len);
    } finally {
      await fh.close();
    }
  }

  async copyFile(src: PathLike, dest: PathLike, mode = 0): Promise<void> {
    const s = pathString(src);
    const d = pathString(dest);
    try {
      const from = this.#openPath(s, C.O_RDONLY, 0);
      try {
        const perm = from.statSync().mode & 0o7777;
        if (isDirMode(from.statSync().mode)) throw new FsError('EISDIR');
        const excl = mode & C.COPYFILE_EXCL ? C.O_EXCL : 0;
        const to = this.#openPath(d, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | excl, perm, null);
        try {
          const buf = Buffer.allocUnsafe(128 * 1024);
          for (let pos = 0; ; ) {
            const n = from.readSync(buf, pos);
            if (n === 0) break;
            to.writeSync(buf.subarray(0, n), pos);
            pos += n;
          }
          to.chmodSync(perm);
        } finally {
          to.closeSync();
        }
      } finally {
        from.closeSync();
      }
    } catch (e) {
      throw toFsError(e).withContext('copyfile', s, d);
    }
  }

  // ---- metadata ------------------------------------------------------------------------------

  async stat(path: PathLike, opts?: { bigint?: false }): Promise<Stats>;
  async stat(path: PathLike, opts: { bigint: true }): Promise<BigIntStats>;
  async stat(path: PathLike, opts?: { bigint?: boolean }): Promise<Stats | BigIntStats>;
  async stat(path: PathLike, opts?: { bigint?: boolean }): Promise<Stats | BigIntStats> {
    const p = pathString(path);
    return this.#call('stat', p, () => {
      const a = this.engine.getattr(this.#r.resolve(p, true).node);
      return opts?.bigint ? new BigIntStats(a) : new Stats(a);
    });
  }

  async lstat(path: PathLike, opts?: { bigint?: false }): Promise<Stats>;
  async lstat(path: PathLike, opts: { bigint: true }): Promise<BigIntStats>;
  async lstat(path: PathLike, opts?: { bigint?: boolean }): Promise<Stats | BigIntStats>;
  async lstat(path: PathLike, opts?: { bigint?: boolean }): Promise<Stats | BigIntStats> {
    const p = pathString(path);
    return this.#call('lstat', p, () => {
      const a = this.engine.getattr(this.#r.resolve(p, false).node);
      return opts?.bigint ? new BigIntStats(a) : new Stats(a);
    });
  }

  async access(path: PathLike, mode: number = C.F_OK): Promise<void> {
    const p = pathString(path);
    this.#call('access', p, () => this.engine.access(this.#r.resolve(p, true).node, mode, this.#ctx));
  }

  async chmod(path: PathLike, mode: number | string): Promise<void> {
    const p = pathString(path);
    this.#call('chmod', p, () => {
      this.engine.setattr(this.#r.resolve(p, true).node, { mode: parseMode(mode, 0) & 0o7777 }, this.#ctx);
    });
  }

  async lchmod(path: PathLike, mode: number | string): Promise<void> {
    const p = pathString(path);
    this.#call('lchmod', p, () => {
      this.engine.setattr(this.#r.resolve(p, false).node, { mode: parseMode(mode, 0) & 0o7777 }, this.#ctx);
    });
  }

  async chown(path: PathLike, uid: number, gid: number): Promise<void> {
    this.#chown('chown', path, uid, gid, true);
  }

  async lchown(path: PathLike, uid: number, gid: number): Promise<void> {
    this.#chown('lchown', path, uid, gid, false);
  }

  #chown(syscall: string, path: PathLike, uid: number, gid: number, follow: boolean): void {
    const p = pathString(path);
    this.#call(syscall, p, () => {
      const set = { ...(uid >= 0 ? { uid } : {}), ...(gid >= 0 ? { gid } : {}) };
      this.engine.setattr(this.#r.resolve(p, follow).node, set, this.#ctx);
    });
  }

  async utimes(path: PathLike, atime: TimeLike, mtime: TimeLike): Promise<void> {
    const p = pathString(path);
    this.#call('utime', p, () => {
      const set = { atime: toTimeSpec(atime), mtime: toTimeSpec(mtime) };
      this.engine.setattr(this.#r.resolve(p, true).node, set, this.#ctx);
    });
  }

  async lutimes(path: PathLike, atime: TimeLike, mtime: TimeLike): Promise<void> {
    const p = pathString(path);
    this.#call('lutime', p, () => {
      const set = { atime: toTimeSpec(atime), mtime: toTimeSpec(mtime) };
      this.engine.setattr(this.#r.resolve(p, false).node, set, this.#ctx);
    });
  }

  async realpath(path: PathLike): Promise<string> {
    const p = pathString(path);
    return this.#call('realpath', p, () => this.#r.resolve(p, true).path);
  }

  async readlink(path: PathLike, options?: BufferEncoding | { encoding?: BufferEncoding | 'buffer' | null } | null): Promise<string | Buffer> {
    const p = pathString(path);
    const target = this.#call('readlink', p, () => {
      const node = this.#r.resolve(p, false).node;
      if ((this.#attr(node) & S_IFMT) !== S_IFLNK) throw new FsError('EINVAL');
      return this.engine.readlink(node);
    });
    const enc = typeof options === 'string' ? options : options?.encoding;
    if (enc === 'buffer') return Buffer.from(target);
    return target;
  }

  /** Like fs.promises.statfs: the writable (or top) branch's filesystem figures. */
  async statfs(path: PathLike): Promise<{ type: number; bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number }> {
    const p = pathString(path);
    return this.#call('statfs', p, () => {
      const s = this.engine.statfs(this.#r.resolve(p, true).node);
      return { type: LAYERFS_MAGIC, bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree };
    });
  }

  // ---- directories and names -----------------------------------------------------------------

  async readdir(
    path: PathLike,
    options?: BufferEncoding | { encoding?: BufferEncoding | null; withFileTypes?: boolean; recursive?: boolean } | null,
  ): Promise<string[] | Dirent[]> {
    const p = pathString(path);
    const o = typeof options === 'object' && options !== null ? options : {};
    return this.#call('scandir', p, () => {
      const base = this.#r.resolve(p, true);
      const names: string[] = [];
      const dirents: Dirent[] = [];
      const visit = (node: UnionNodeLike, rel: string, dirPath: string): void => {
        if (!isDirMode(this.#attr(node))) throw new FsError('ENOTDIR');
        const dh = this.engine.opendir(node, this.#ctx);
        const entries = dh.entries.filter((x) => x.name !== '.' && x.name !== '..');
        this.engine.releasedir(dh);
        const subdirs: [UnionNodeLike, string, string][] = [];
        for (const ent of entries) {
          const relName = rel ? `${rel}/${ent.name}` : ent.name;
          names.push(relName);
          let type = ent.type;
          if (o.recursive || type === 0) {
            const child = this.engine.lookup(node, ent.name);
            const m = this.#attr(child);
            if (o.recursive && isDirMode(m)) subdirs.push([child, relName, joinPath(dirPath, ent.name)]);
            if (type === 0) type = modeToDt(m);
          }
          dirents.push(new Dirent(ent.name, dirPath, type));
        }
        for (const [child, relName, childPath] of subdirs) visit(child, relName, childPath);
      };
      visit(base.node, '', p);
      return o.withFileTypes ? dirents : names;
    });
  }

  async mkdir(path: PathLike, options?: number | string | { recursive?: boolean; mode?: number | string } | null): Promise<string | undefined> {
    const p = pathString(path);
    const o = typeof options === 'object' && options !== null ? options : { mode: options ?? undefined };
    // mkdir(2) keeps only rwx and sticky bits of the mode (setgid comes from the parent, never the mode)
    // (the engine applies the parent's default ACL, or else the umask: #ctx carries it)
    const perm = parseMode(o.mode, 0o777) & 0o1777;
    return this.#call('mkdir', p, () => {
      if (!o.recursive) {
        const { parent, name, existing } = this.#r.resolveParent(p);
        if (existing) throw new FsError('EEXIST');
        this.engine.mkdir(parent, name, perm, this.#ctx);
        return undefined;
      }
      const comps = p.split('/').filter((c) => c !== '' && c !== '.');
      let first: string | undefined;
      for (let i = 1; i <= comps.length; i++) {
        const prefix = '/' + comps.slice(0, i).join('/');
        let node: UnionNodeLike | undefined;
        try {
          node = this.#r.resolve(prefix, true).node;
        } catch (e) {
          if (!(e instanceof FsError) || e.code !== 'ENOENT') throw e;
        }
        if (node) {
          if (!isDirMode(this.#attr(node))) throw new FsError(i === comps.length ? 'EEXIST' : 'ENOTDIR');
          continue;
        }
        const { parent, name } = this.#r.resolveParent(prefix);
        this.engine.mkdir(parent, name, perm, this.#ctx);
        first ??= p.startsWith('/') ? prefix : prefix.slice(1);
      }
      return first;
    });
  }

  /** Like fs.promises.mkdtemp: `prefix` + six random characters, mode 0700; returns the path. */
  async mkdtemp(prefix: string): Promise<string> {
    const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
    for (let tries = 0; ; tries++) {
      let suffix = '';
      for (let i = 0; i < 6; i++) suffix += chars[Math.floor(Math.random() * chars.length)];
      const p = prefix + suffix;
      try {
        await this.mkdir(p, 0o700);
        return p;
      } catch (e) {
        if (!(e instanceof FsError) || e.code !== 'EEXIST' || tries >= 100) {
          throw e instanceof FsError ? e.withContext('mkdtemp', p) : e;
        }
      }
    }
  }

  async rmdir(path: PathLike): Promise<void> {
    const p = pathString(path);
    this.#call('rmdir', p, () => {
      const { parent, name, existing } = this.#r.resolveParent(p);
      if (!existing) throw new FsError('ENOENT');
      if (!isDirMode(this.#attr(existing))) throw new FsError('ENOTDIR');
      this.engine.rmdir(parent, name);
    });
  }

  async unlink(path: PathLike): Promise<void> {
    const p = pathString(path);
    this.#call('unlink', p, () => {
      const { parent, name, existing } = this.#r.resolveParent(p);
      if (!existing) throw new FsError('ENOENT');
      if (isDirMode(this.#attr(existing))) throw new FsError('EISDIR');
      this.engine.unlink(parent, name);
    });
  }

  async rm(path: PathLike, options?: { recursive?: boolean; force?: boolean } | null): Promise<void> {
    const p = pathString(path);
    const o = options ?? {};
    let node: UnionNodeLike;
    try {
      node = this.#r.resolve(p, false).node;
    } catch (e) {
      const err = toFsError(e).withContext('lstat', p);
      if (o.force && err.code === 'ENOENT') return;
      throw err;
    }
    if (!isDirMode(this.#attr(node))) return this.unlink(p);
    if (!o.recursive) throw new RmDirError(p);
    const names = (await this.readdir(p)) as string[];
    for (const n of names) await this.rm(joinPath(p, n), { recursive: true, force: o.force ?? false });
    await this.rmdir(p);
  }

  async rename(oldPath: PathLike, newPath: PathLike): Promise<void> {
    const a = pathString(oldPath);
    const b = pathString(newPath);
    this.#call(
      'rename',
      a,
      () => {
        // rename(2) resolves both parent directories before looking at the source name
        const from = this.#r.resolveParent(a);
        const to = this.#r.resolveParent(b);
        if (!from.existing) throw new FsError('ENOENT');
        // the VFS checks of rename(2): source an ancestor of the target, or the reverse
        const src = joinPath(from.parentPath, from.name);
        const dst = joinPath(to.parentPath, to.name);
        if (dst.startsWith(src + '/')) throw new FsError('EINVAL');
        if (src.startsWith(dst + '/')) throw new FsError('ENOTEMPTY');
        this.engine.rename(from.parent, from.name, to.parent, to.name, 0);
      },
      b,
    );
  }

  async symlink(target: PathLike, path: PathLike, _type?: string | null): Promise<void> {
    const t = pathString(target);
    const p = pathString(path);
    this.#call(
      'symlink',
      t,
      () => {
        const { parent, name, existing } = this.#r.resolveParent(p);
        if (existing) throw new FsError('EEXIST');
        this.engine.symlink(parent, name, t, this.#ctx);
      },
      p,
    );
  }

  async link(existingPath: PathLike, newPath: PathLike): Promise<void> {
    const a = pathString(existingPath);
    const b = pathString(newPath);
    this.#call(
      'link',
      a,
      () => {
        const node = this.#r.resolve(a, false).node;
        const to = this.#r.resolveParent(b);
        if (to.existing) throw new FsError('EEXIST');
        if (isDirMode(this.#attr(node))) throw new FsError('EPERM');
        this.engine.link(node, to.parent, to.name);
      },
      b,
    );
  }
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

function modeToDt(mode: number): number {
  return (mode & S_IFMT) >> 12;
}

