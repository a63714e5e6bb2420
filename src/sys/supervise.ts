/**
 * The addon's part for living under the supervisor (native/supervise.c): datagrams with an fd over
 * the supervisor's SOCK_SEQPACKET socket, and a shared file mapping for the node journal.
 */
import { createRequire } from 'node:module';
import { FsError, codeOf } from '../errors/index.js';

interface Binding {
  seqSend(sock: number, buf: Buffer, len: number, fd: number): number;
  seqRecv(sock: number, buf: Buffer): [number, number];
  mmapShared(fd: number, len: number): ArrayBuffer | number;
}

const b = createRequire(import.meta.url)('../../../build/Release/layerfs.node') as Binding;

/** One datagram of buf[0..len), with `fd` attached when >= 0. */
export function seqSend(sock: number, buf: Buffer, len: number, fd = -1): void {
  const r = b.seqSend(sock, buf, len, fd);
  if (r < 0) throw new FsError(codeOf(-r), 'sendmsg');
}

/** One datagram (blocking): its length (0: the peer closed) and the fd it carried (-1: none). */
export function seqRecv(sock: number, buf: Buffer): { n: number; fd: number } {
  const [n, fd] = b.seqRecv(sock, buf);
  if (n < 0) throw new FsError(codeOf(-n), 'recvmsg');
  return { n, fd };
}

/** The first `len` bytes of file `fd`, mapped shared (stores survive the process). */
export function mmapShared(fd: number, len: number): ArrayBuffer {
  const r = b.mmapShared(fd, len);
  if (typeof r === 'number') throw new FsError(codeOf(-r), 'mmap');
  return r;
}
