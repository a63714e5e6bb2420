/**
 * Daemons taking over one mount one after the other, without FUSE (fuse/node-journal.ts,
 * fuse/restore.ts): each "daemon" is a fresh union + FuseOps over the same branches, resumed from
 * the journal the previous one left (as supervise-serve.ts does), and the test plays the kernel,
 * which keeps the ids, handles and request numbers it gave out. A crash is a daemon dropped
 * without a word. The suites add the requests they need on top of `req`.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Init, Init2, Op, Size } from '../../src/fuse/abi.js';
import { decodeInHeader, encodeInHeader, type InitOut } from '../../src/fuse/codec.js';
import { FuseOps } from '../../src/fuse/ops.js';
import { openUnion } from '../../src/fuse/open-union.js';
import { superviseServing } from '../../src/fuse/supervise-serve.js';
import type { BackingDevice } from '../../src/fuse/passthrough.js';

/** NUL-terminated names, as requests carry them. */
export const cstr = (...names: string[]): Buffer => Buffer.from(names.map((n) => `${n}\0`).join(''));

export function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

export interface TakeoverDaemon {
  /**
   * One request (numbered by the kernel unless `unique` is given; `resent` sets FUSE_UNIQUE_RESEND);
   * the reply's length (its body at `out[16..]`) or a negative errno.
   */
  req(opcode: number, nodeid: number, body: Buffer, unique?: number, resent?: boolean): number;
  readonly out: Buffer;
  /** LOOKUP, asserted to find the name: its node id. */
  lookup(dir: number, name: string): number;
  unlink(dir: number, name: string): number;
  rename(dir: number, name: string, newdir: number, newName: string, unique?: number, resent?: boolean): number;
  /** GETATTR: as `req` (the attributes at `out[16..]`). */
  attr(id: number): number;
  /** The number of the last request the kernel sent. */
  lastUnique(): number;
  crash(): void;
}

/**
 * A scratch `up` (rw) and `lo` (ro) branch laid out by `layout`, a journal, and `start()` for the
 * next daemon; `prepare` sees each daemon's union before it serves (to hook the engine); `o.spec`
 * gives its options, `o.backingDevice` turns passthrough on.
 */
export function takeovers(
  t: { after(fn: () => void): void },
  prefix: string,
  layout: (up: string, lo: string) => void,
  prepare: (union: object) => void = () => {},
  o: {
    /** The union's options over `root` (default: AUFS format, `dirs=up=rw:lo=ro`); `root/work` exists. */
    spec?: (root: string) => string;
    /** FUSE passthrough negotiated in INIT, backing files registered on this (a fake: the kernel's connection). */
    backingDevice?: BackingDevice;
  } = {},
) {
  const spec = o.spec ?? ((r: string) => `dirs=${join(r, 'up')}=rw:${join(r, 'lo')}=ro`);
  const root = mkdtempSync(join(tmpdir(), `layerfs-${prefix}-`));
  for (const d of ['up', 'lo', 'work']) mkdirSync(join(root, d));
  layout(join(root, 'up'), join(root, 'lo'));
  const journal = join(root, 'journal');
  let init: InitOut | null = null;
  let unique = 0;
  const live: TakeoverDaemon[] = [];
  t.after(() => {
    for (const d of live) d.crash();
    rmSync(root, { recursive: true, force: true });
  });

  const start = (): TakeoverDaemon => {
    const opened = openUnion(spec(root), '/');
    const ops = new FuseOps(opened.union, { entryTimeout: 1, attrTimeout: 1, negativeTimeout: 0, maxWrite: 1 << 17, ...(o.backingDevice ? { backingDevice: o.backingDevice } : {}) });
    prepare(opened.union);
    const sv = superviseServing(ops, init ? { journal, resume: { init } } : { journal }, () => {}, Buffer.alloc(64));
    const inb = Buffer.alloc(1 << 16);
    const out = Buffer.alloc(1 << 18);
    const req = (opcode: number, nodeid: number, body: Buffer, uq = ++unique, resent = false): number => {
      const len = Size.IN_HEADER + body.length;
      encodeInHeader(inb, { len, opcode, unique: uq, nodeid, uid: 0, gid: 0, pid: process.pid, extlen: 0 });
      if (resent) inb.writeUInt32LE((inb.readUInt32LE(12) | 0x80000000) >>> 0, 12);
      body.copy(inb, Size.IN_HEADER);
      return sv.dispatch(decodeInHeader(inb), inb, len, out);
    };
    if (init === null) {
      const b = Buffer.alloc(64);
      b.writeUInt32LE(7, 0);
      b.writeUInt32LE(45, 4);
      b.writeUInt32LE(1 << 17, 8);
      if (o.backingDevice) {
        b.writeUInt32LE(Init.INIT_EXT, 12);
        b.writeUInt32LE(Init2.PASSTHROUGH, 16);
      }
      assert.ok(req(Op.INIT, 0, b) > 0);
      init = ops.initState;
      assert.ok(init);
      if (o.backingDevice) assert.ok((init.flags2 & Init2.PASSTHROUGH) !== 0, 'passthrough negotiated');
    }
    let crashed = false;
    const d: TakeoverDaemon = {
      req,
      out,
      lookup(dir, name) {
        const r = req(Op.LOOKUP, dir, cstr(name));
        assert.ok(r > 0, `lookup ${name} in ${dir}: ${r}`);
        return Number(out.readBigUInt64LE(16));
      },
      unlink(dir, name) {
        return req(Op.UNLINK, dir, cstr(name));
      },
      rename(dir, name, newdir, newName, uq, resent) {
        return req(Op.RENAME, dir, Buffer.concat([u64(newdir), cstr(name, newName)]), uq, resent);
      },
      attr(id) {
        return req(Op.GETATTR, id, Buffer.alloc(16));
      },
      lastUnique: () => unique,
      crash() {
        if (crashed) return;
        crashed = true;
        sv.close(false);
        opened.close();
      },
    };
    live.push(d);
    return d;
  };
  return { root, journal, start };
}
