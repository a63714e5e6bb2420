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
import { fileURLToPath } from 'node:url';
import { Op, Size } from './abi.js';
import { decodeEntryOut, decodeInHeader, decodeOpenOutFh, encodeInHeader } from './codec.js';
import { decodeDirents, decodeDirentsPlus } from './dirent-codec.js';
import { FuseOps, type ServedUnion } from './ops.js';
import { encodeForgetIn, encodeGetxattrIn, encodeInitIn, encodeName, encodeOpenIn, encodeReadWriteIn, encodeReleaseIn } from './requests.js';
import type { DirHandleLike, FileHandleLike, UnionNodeLike } from '../engine/types.js';

const ROOT = 1;
const BODY = Size.IN_HEADER;
const REPLY = Size.OUT_HEADER;

export interface WarmUpResult {
  requests: number;
  ms: number;
}

/**
 * Warm up without a mount (a spare serving thread, before its first mount): over a read-only union
 * of this module's own directory (nothing is written to it). False when that cannot be opened.
 */
export function warmUpAlone(open: (options: string, cwd: string) => { union: ServedUnion<UnionNodeLike & object, FileHandleLike, DirHandleLike>; close(): void }): boolean {
  const dir = fileURLToPath(new URL('.', import.meta.url)).replace(/\/$/, '');
  if (/[,:=\\]/.test(dir)) return false; // not expressible in a lowerdir= option
  try {
    const o = open(`lowerdir=${dir}`, '/');
    try {
      warmUp(o.union);
    } finally {
      o.close();
    }
    return true;
  } catch {
    return false;
  }
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
  const out = Buffer.alloc(REPLY + (1 << 17));
  let unique = 0;
  let requests = 0;
  /** Send the request whose body ends at `bodyEnd` in `inb`; the reply body length or -errno. */
  const send = (opcode: number, nodeid: number, bodyEnd: number): number => {
    encodeInHeader(inb, { len: bodyEnd, opcode, unique: ++unique, nodeid, uid: 0, gid: 0, pid: process.pid, extlen: 0 });
    requests++;
    return ops.dispatch(decodeInHeader(inb), inb, bodyEnd, out);
  };
  const forget = (nodeid: number): void => {
    send(Op.FORGET, nodeid, encodeForgetIn(inb, BODY, 1)); // FORGET writes nothing to `out`
  };
  const getattr = (nodeid: number): void => {
    inb.fill(0, BODY, BODY + Size.GETATTR_IN);
    send(Op.GETATTR, nodeid, BODY + Size.GETATTR_IN);
  };
  /** OPENDIR the root, READDIR(PLUS) it with room for `size` bytes, RELEASEDIR; the entries' reply. */
  const listRoot = (opcode: number, size: number): number => {
    if (send(Op.OPENDIR, ROOT, encodeOpenIn(inb, BODY, { flags: 0, openFlags: 0 })) < 0) return -1;
    const fh = decodeOpenOutFh(out, REPLY);
    const n = send(opcode, ROOT, encodeReadWriteIn(inb, BODY, { fh, offset: 0, size, flags: 0 }));
    if (n > 0) visit(opcode, n);
    send(Op.RELEASEDIR, ROOT, encodeReleaseIn(inb, BODY, fh));
    return n;
  };
  const names: string[] = [];
  /** Read a listing's reply (before the next request overwrites `out`). */
  const visit = (opcode: number, n: number): void => {
    if (opcode === Op.READDIR) {
      for (const d of decodeDirents(out, REPLY, REPLY + n)) if (d.name !== '.' && d.name !== '..' && names.length < 8) names.push(d.name);
      return;
    }
    // forget the lookup references READDIRPLUS took
    const ids = decodeDirentsPlus(out, REPLY, REPLY + n).map((e) => e.entry.nodeid);
    for (const id of ids) if (id !== 0) forget(id);
  };

  if (send(Op.INIT, 0, encodeInitIn(inb, BODY, { major: 7, minor: 45, maxReadahead: 1 << 17, flags: 0, flags2: 0 })) < 0) {
    return { requests, ms: performance.now() - t0 };
  }

  // Names to look up: the root's own entries (real lookups) and one that is absent.
  listRoot(Op.READDIR, 8192);
  names.push('.layerfs-warm-up-absent');

  for (let r = 0; r < rounds; r++) {
    if ((r & 63) === 0 && performance.now() - t0 > maxMs) break;
    for (const name of names) {
      const len = send(Op.LOOKUP, ROOT, encodeName(inb, BODY, name));
      if (len > 0) {
        const id = decodeEntryOut(out, REPLY).nodeid;
        if (id !== 0) {
          getattr(id);
          forget(id);
        }
      }
    }
    getattr(ROOT);
    send(Op.GETXATTR, ROOT, encodeGetxattrIn(inb, BODY, { size: 256, name: 'security.selinux' }));
    if ((r & 15) === 0) listRoot(Op.READDIRPLUS, 4096);
  }
  ops.releaseAll();
  return { requests, ms: performance.now() - t0 };
}
