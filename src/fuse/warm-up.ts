/**
 * JIT warm-up of the request path, run once before the mount goes live.
 *
 * A fresh daemon's handlers, codec and engine run in V8's interpreter for their first few hundred
 * calls, and compiling them then happens on helper threads while the kernel is already waiting:
 * measured in-process, the first 2,000 LOOKUP+GETATTR of a new union cost ~3x what the same
 * requests cost once compiled. So the worker first serves a few thousand synthetic, read-only
 * requests (LOOKUP of the root's entries and of an absent name, GETATTR, GETXATTR, OPENDIR,
 * READDIRPLUS, RELEASEDIR, FORGET) to a throw-away FuseOps over the same union. Nothing is
 * written; every lookup reference taken is forgotten again. Bounded in time.
 */
import { Op, Size } from './abi.js';
import { encodeInHeader, encodeInitIn, decodeInHeader } from './codec.js';
import { FuseOps, type ServedUnion } from './ops.js';
import type { DirHandleLike, FileHandleLike, UnionNodeLike } from '../engine/types.js';

const ROOT = 1;

export interface WarmUpResult {
  requests: number;
  ms: number;
}

export function warmUp<N extends UnionNodeLike & object, F extends FileHandleLike, D extends DirHandleLike>(
  union: ServedUnion<N, F, D>,
  opts: { rounds?: number; maxMs?: number } = {},
): WarmUpResult {
  const rounds = opts.rounds ?? 800;
  const maxMs = opts.maxMs ?? 150;
  const t0 = performance.now();
  const ops = new FuseOps<N, F, D>(union, { entryTimeout: 1, attrTimeout: 1, negativeTimeout: 0, maxWrite: 1 << 17 });
  const inb = Buffer.alloc(8192);
  const out = Buffer.alloc(Size.OUT_HEADER + (1 << 17));
  let unique = 0;
  let requests = 0;
  const send = (opcode: number, nodeid: number, bodyLen: number): number => {
    const len = Size.IN_HEADER + bodyLen;
    encodeInHeader(inb, { len, opcode, unique: ++unique, nodeid, uid: 0, gid: 0, pid: process.pid, extlen: 0 });
    requests++;
    return ops.dispatch(decodeInHeader(inb), inb, len, out);
  };
  const body = Size.IN_HEADER;
  const putName = (off: number, name: string): number => {
    const n = inb.write(name, off, 'utf8');
    inb[off + n] = 0;
    return off + n + 1 - body;
  };

  encodeInitIn(inb, body, { major: 7, minor: 45, maxReadahead: 1 << 17, flags: 0, flags2: 0 });
  if (send(Op.INIT, 0, Size.INIT_IN) < 0) return { requests, ms: performance.now() - t0 };

  // Names to look up: the root's own entries (real lookups) and one that is absent.
  const names: string[] = [];
  inb.fill(0, body, body + Size.OPEN_IN);
  const opened = send(Op.OPENDIR, ROOT, Size.OPEN_IN);
  if (opened >= 0) {
    const fh = out.readUInt32LE(Size.OUT_HEADER);
    inb.fill(0, body, body + Size.READ_IN);
    inb.writeUInt32LE(fh, body);
    inb.writeUInt32LE(8192, body + 16); // size
    const n = send(Op.READDIR, ROOT, Size.READ_IN);
    // dirent: ino u64, off u64, namelen u32, type u32, name padded to 8
    for (let p = Size.OUT_HEADER; n > 0 && p + 24 <= Size.OUT_HEADER + n && names.length < 8; ) {
      const namelen = out.readUInt32LE(p + 16);
      const name = out.toString('utf8', p + 24, p + 24 + namelen);
      if (name !== '.' && name !== '..') names.push(name);
      p += (24 + namelen + 7) & ~7;
    }
    inb.fill(0, body, body + Size.READ_IN);
    inb.writeUInt32LE(fh, body);
    send(Op.RELEASEDIR, ROOT, Size.READ_IN);
  }
  names.push('.layerfs-warm-up-absent');

  for (let r = 0; r < rounds; r++) {
    if ((r & 63) === 0 && performance.now() - t0 > maxMs) break;
    for (const name of names) {
      const len = send(Op.LOOKUP, ROOT, putName(body, name));
      if (len > 0) {
        const id = Number(out.readBigUInt64LE(Size.OUT_HEADER));
        if (id !== 0) {
          send(Op.GETATTR, id, 16);
          inb.writeBigUInt64LE(1n, body);
          send(Op.FORGET, id, Size.FORGET_IN);
        }
      }
    }
    send(Op.GETATTR, ROOT, 16);
    inb.writeUInt32LE(256, body);
    inb.writeUInt32LE(0, body + 4);
    send(Op.GETXATTR, ROOT, putName(body + Size.GETXATTR_IN, 'security.selinux'));
    if ((r & 15) === 0) {
      inb.fill(0, body, body + Size.OPEN_IN);
      if (send(Op.OPENDIR, ROOT, Size.OPEN_IN) >= 0) {
        const fh = out.readUInt32LE(Size.OUT_HEADER);
        inb.fill(0, body, body + Size.READ_IN);
        inb.writeUInt32LE(fh, body);
        inb.writeUInt32LE(4096, body + 16);
        const n = send(Op.READDIRPLUS, ROOT, Size.READ_IN);
        // forget the lookup references READDIRPLUS took (entry_out's nodeid after each dirent header)
        for (let p = Size.OUT_HEADER; n > 0 && p + 152 <= Size.OUT_HEADER + n; ) {
          const id = Number(out.readBigUInt64LE(p));
          const namelen = out.readUInt32LE(p + 128 + 16);
          if (id !== 0) {
            inb.writeBigUInt64LE(1n, body);
            send(Op.FORGET, id, Size.FORGET_IN); // FORGET writes nothing to `out`
          }
          p += (128 + 24 + namelen + 7) & ~7;
        }
        inb.fill(0, body, body + Size.READ_IN);
        inb.writeUInt32LE(fh, body);
        send(Op.RELEASEDIR, ROOT, Size.READ_IN);
      }
    }
  }
  ops.releaseAll();
  return { requests, ms: performance.now() - t0 };
}
