/**
 * Open files (like overlayfs file.c): opening for write (or O_TRUNC) copies the file up first;
 * reads and writes go straight to the host fd.
 */
import { fdops } from '../branch/index.js';
import { FsError } from '../errors/index.js';
import type { Core } from './core.js';
import { copyUp } from './copy-up.js';
import { FileHandle, S_IFREG, type UnionNode } from './node.js';
import { O_ACCMODE, O_CREAT, O_EXCL, O_NOCTTY, O_RDONLY, O_TRUNC } from '../sys/constants.js';

export function open(core: Core, node: UnionNode, flags: number): FileHandle {
  core.ensure(node);
  if (node.unlinked) throw new FsError('ENOENT', 'open');
  const acc = flags & O_ACCMODE;
  const writing = acc !== O_RDONLY || (flags & O_TRUNC) !== 0;
  if (node.isDir && writing) throw new FsError('EISDIR', 'open');
  if (writing) {
    core.requireRw('open');
    copyUp(core, node, 'open', (flags & O_TRUNC) !== 0 && node.type === S_IFREG);
  }
  const r = core.real(node);
  const fd = r.b.open(r.rel, flags & ~(O_CREAT | O_EXCL | O_NOCTTY));
  const fh = new FileHandle(fd, flags, node, node.layers[0]!);
  node.handles.add(fh);
  core.openFiles.add(fh);
  return fh;
}

function live(fh: FileHandle, syscall: string): number {
  if (fh.closed) throw new FsError('EBADF', syscall);
  return fh.fd;
}

export function read(fh: FileHandle, buf: Buffer, offset: number, length: number, position: number): number {
  return fdops.read(live(fh, 'read'), buf, offset, length, position);
}

export function write(fh: FileHandle, buf: Buffer, offset: number, length: number, position: number): number {
  return fdops.write(live(fh, 'write'), buf, offset, length, position);
}

export function fsync(fh: FileHandle, datasync: boolean): void {
  fdops.fsync(live(fh, 'fsync'), datasync);
}

export function release(core: Core, fh: FileHandle): void {
  if (fh.closed) return;
  fh.closed = true;
  fh.node.handles.delete(fh);
  core.openFiles.delete(fh);
  fdops.close(fh.fd);
}

export function fallocate(fh: FileHandle, mode: number, offset: number, length: number): void {
  fdops.fallocate(live(fh, 'fallocate'), mode, offset, length);
}

export function lseek(fh: FileHandle, offset: number, whence: number): number {
  return fdops.lseek(live(fh, 'lseek'), offset, whence);
}
