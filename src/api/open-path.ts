/** open(2) on a union path: O_CREAT/O_EXCL/O_TRUNC/O_NOFOLLOW, symlinks, directories. */
import { constants as C } from 'node:fs';
import { FsError } from '../errors/index.js';
import type { Ctx, UnionNodeLike } from '../engine/types.js';
import { isWritable } from './data.js';
import { FileHandle } from './file-handle.js';
import { S_IFLNK, S_IFMT, S_IFREG } from '../sys/constants.js';
import { isDirMode, MAX_SYMLINKS, type Engine, type Resolver } from './resolve.js';

/** `ctx` for a create: with `umask` (the engine applies it, or the parent's default ACL); null: the mode is final. */
function createCtx(ctx: Ctx, umask: number | null): Ctx {
  if (umask !== null) return ctx.umask === umask ? ctx : { ...ctx, umask };
  const { umask: _unused, ...rest } = ctx;
  return rest;
}

/**
 * Open (or create) union path `p` as open(2) does; a FileHandle (without engine handle for a dir).
 * A new file gets `mode` masked by the parent's default ACL or else by `umask` (engine/acl.ts), as
 * open(2) on Linux; `umask` null: exactly `mode` (copyFile, which sets the source's mode).
 */
export function openPath(e: Engine, r: Resolver, ctx: Ctx, p: string, flags: number, mode: number, umask: number | null): FileHandle {
  let node: UnionNodeLike | undefined;
  if (flags & C.O_CREAT) {
    // open(2) with O_CREAT follows a symlink in the last component even when its target is
    // missing (then the target is created), except with O_EXCL or O_NOFOLLOW.
    let path = p;
    for (let links = 0; ; links++) {
      const { parent, name, existing, parentPath } = r.resolveParent(path);
      if (!existing) {
        if (/\/$/.test(path)) throw new FsError('EISDIR');
        const made = e.create(parent, name, S_IFREG | (mode & 0o7777), flags, createCtx(ctx, umask));
        return new FileHandle(e, ctx, made.node, made.fh, flags);
      }
      if (flags & C.O_EXCL) throw new FsError('EEXIST');
      if ((e.getattr(existing).mode & S_IFMT) === S_IFLNK && !(flags & C.O_NOFOLLOW)) {
        if (links >= MAX_SYMLINKS) throw new FsError('ELOOP');
        const target = e.readlink(existing);
        if (target === '') throw new FsError('ENOENT');
        path = target.startsWith('/') ? target : `${parentPath === '/' ? '' : parentPath}/${target}`;
        if (/\/$/.test(p) && !path.endsWith('/')) path += '/';
        continue;
      }
      node = existing;
      if (/\/$/.test(path) && !isDirMode(e.getattr(node).mode)) throw new FsError('ENOTDIR');
      break;
    }
  } else {
    node = r.resolve(p, (flags & C.O_NOFOLLOW) === 0).node;
  }
  const m = e.getattr(node).mode;
  if ((m & S_IFMT) === S_IFLNK) throw new FsError('ELOOP'); // O_NOFOLLOW on a symlink
  if (isDirMode(m)) {
    if (isWritable(flags) || flags & C.O_TRUNC) throw new FsError('EISDIR');
    e.access(node, C.R_OK, ctx);
    return new FileHandle(e, ctx, node, undefined, flags);
  }
  if (flags & C.O_DIRECTORY) throw new FsError('ENOTDIR');
  const fh = e.open(node, flags, ctx);
  if (flags & C.O_TRUNC && isWritable(flags) && e.getattr(node).size > 0) {
    e.setattr(node, { size: 0 }, ctx, fh);
  }
  return new FileHandle(e, ctx, node, fh, flags);
}
