/**
 * GETXATTR answers for absent names are remembered per node (no syscall the second time), and
 * never outlive a change made through the union or the attribute timeout. Driven through
 * FuseOps.dispatch with the real engine (no mount needed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FuseOps } from '../../src/fuse/ops.js';
import { openUnion } from '../../src/fuse/open-union.js';
import { Op } from '../../src/fuse/abi.js';
import { decodeInHeader, encodeInHeader } from '../../src/fuse/codec.js';
import { XattrAbsence } from '../../src/fuse/xattr-absence.js';
import * as native from '../../src/sys/native.js';

const ENODATA = -61;

function setup(attrTimeout: number) {
  const root = mkdtempSync(join(tmpdir(), 'layerfs-xabs-'));
  for (const d of ['lower', 'upper', 'work']) mkdirSync(join(root, d));
  writeFileSync(join(root, 'lower', 'f'), 'x');
  const opened = openUnion(`lowerdir=${join(root, 'lower')},upperdir=${join(root, 'upper')},workdir=${join(root, 'work')}`, '/');
  const clock = { ms: 0 };
  const ops = new FuseOps(opened.union, { entryTimeout: 1, attrTimeout, negativeTimeout: 0, maxWrite: 1 << 17, clock: () => clock.ms });
  const inb = Buffer.alloc(1 << 16);
  const out = Buffer.alloc(1 << 18);
  let unique = 1;
  const req = (opcode: number, nodeid: number, body: Buffer): number => {
    const len = 40 + body.length;
    encodeInHeader(inb, { len, opcode, unique: ++unique, nodeid, uid: 0, gid: 0, pid: process.pid, extlen: 0 });
    body.copy(inb, 40);
    return ops.dispatch(decodeInHeader(inb), inb, len, out);
  };
  const init = Buffer.alloc(64);
  init.writeUInt32LE(7, 0);
  init.writeUInt32LE(31, 4); // no SETXATTR_EXT: 8-byte setxattr_in
  init.writeUInt32LE(1 << 17, 8);
  assert.ok(req(Op.INIT, 0, init) > 0);
  assert.ok(req(Op.LOOKUP, 1, Buffer.from('f\0')) > 0);
  const f = Number(out.readBigUInt64LE(16));
  const getx = (name: string): number => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(256, 0);
    return req(Op.GETXATTR, f, Buffer.concat([b, Buffer.from(name + '\0')]));
  };
  const setx = (name: string, value: string): number => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(Buffer.byteLength(value), 0);
    return req(Op.SETXATTR, f, Buffer.concat([b, Buffer.from(name + '\0'), Buffer.from(value)]));
  };
  const valueOf = (len: number): string => out.subarray(16, 16 + len).toString();
  return { root, opened, clock, getx, setx, valueOf, cleanup: () => (opened.close(), rmSync(root, { recursive: true, force: true })) };
}

test('an absent xattr is ENODATA again, and a setxattr through the union is seen at once', (t) => {
  const s = setup(60);
  t.after(s.cleanup);
  assert.equal(s.getx('user.a'), ENODATA);
  assert.equal(s.getx('user.a'), ENODATA);
  // set through the union (copy-up): the remembered absence must not hide it
  assert.equal(s.setx('user.a', 'v1'), 0);
  const n = s.getx('user.a');
  assert.equal(n, 2);
  assert.equal(s.valueOf(n), 'v1');
});

test('an absence is remembered for attr_timeout only: a change beneath the union shows after it', (t) => {
  const s = setup(0.2);
  t.after(s.cleanup);
  assert.equal(s.getx('user.b'), ENODATA);
  native.lsetxattr(join(s.root, 'lower', 'f'), 'user.b', Buffer.from('below'), 0);
  assert.equal(s.getx('user.b'), ENODATA, 'still remembered within the timeout');
  s.clock.ms += 199;
  assert.equal(s.getx('user.b'), ENODATA, 'still remembered 1 ms before the timeout');
  s.clock.ms += 1;
  const n = s.getx('user.b');
  assert.equal(s.valueOf(n), 'below');
});

test('XattrAbsence: per node, cleared by changes, off with a zero timeout', () => {
  const a = new XattrAbsence<object>(10_000);
  const n1 = {};
  const n2 = {};
  a.remember(n1, 'security.selinux', ENODATA);
  assert.equal(a.get(n1, 'security.selinux'), ENODATA);
  assert.equal(a.get(n2, 'security.selinux'), 0);
  assert.equal(a.get(n1, 'system.posix_acl_access'), 0);
  a.changed();
  assert.equal(a.get(n1, 'security.selinux'), 0);
  const off = new XattrAbsence<object>(0);
  off.remember(n1, 'x', ENODATA);
  assert.equal(off.get(n1, 'x'), 0);
});
