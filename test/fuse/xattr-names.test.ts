/**
 * GETXATTR through FuseOps.dispatch with the real engine (no mount): one listing of a node's
 * xattr names answers every absent name asked next (ls -l asks two or three per file), present
 * names still come from getxattr, private names stay hidden, and what the union changes is seen
 * at once.
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
import { XattrAbsence, PRESENT } from '../../src/fuse/xattr-absence.js';
import * as native from '../../src/sys/native.js';

const ENODATA = -61;

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'layerfs-xnames-'));
  for (const d of ['lower', 'upper', 'work']) mkdirSync(join(root, d));
  writeFileSync(join(root, 'lower', 'f'), 'x');
  writeFileSync(join(root, 'lower', 'g'), 'y');
  native.lsetxattr(join(root, 'lower', 'f'), 'user.here', Buffer.from('v'), 0);
  native.lsetxattr(join(root, 'lower', 'f'), 'trusted.overlay.origin', Buffer.from('o'), 0);
  const opened = openUnion(`lowerdir=${join(root, 'lower')},upperdir=${join(root, 'upper')},workdir=${join(root, 'work')}`, '/');
  const ops = new FuseOps(opened.union, { entryTimeout: 1, attrTimeout: 60, negativeTimeout: 0, maxWrite: 1 << 17 });
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
  init.writeUInt32LE(31, 4);
  init.writeUInt32LE(1 << 17, 8);
  assert.ok(req(Op.INIT, 0, init) > 0);
  const lookup = (name: string): number => {
    assert.ok(req(Op.LOOKUP, 1, Buffer.from(name + '\0')) > 0);
    return Number(out.readBigUInt64LE(16));
  };
  const getx = (id: number, name: string): number => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(256, 0);
    return req(Op.GETXATTR, id, Buffer.concat([b, Buffer.from(name + '\0')]));
  };
  const setattrMode = (id: number, mode: number): number => {
    const b = Buffer.alloc(88);
    b.writeUInt32LE(1, 0); // FATTR_MODE
    b.writeUInt32LE(mode, 68);
    return req(Op.SETATTR, id, b);
  };
  const valueOf = (len: number): string => out.subarray(16, 16 + len).toString();
  return { root, lookup, getx, setattrMode, valueOf, cleanup: () => (opened.close(), rmSync(root, { recursive: true, force: true })) };
}

test('absent names are ENODATA, a listed one is read, a private one stays hidden', (t) => {
  const s = setup();
  t.after(s.cleanup);
  const f = s.lookup('f');
  assert.equal(s.getx(f, 'security.selinux'), ENODATA);
  assert.equal(s.getx(f, 'system.posix_acl_access'), ENODATA);
  const n = s.getx(f, 'user.here');
  assert.equal(s.valueOf(n), 'v');
  assert.equal(s.getx(f, 'trusted.overlay.origin'), ENODATA);
  assert.equal(s.getx(s.lookup('g'), 'user.here'), ENODATA, 'per node');
});

test('the listing is remembered: a name set beneath the union shows only after the timeout', (t) => {
  const s = setup();
  t.after(s.cleanup);
  const g = s.lookup('g');
  assert.equal(s.getx(g, 'security.selinux'), ENODATA);
  native.lsetxattr(join(s.root, 'lower', 'g'), 'user.late', Buffer.from('z'), 0);
  assert.equal(s.getx(g, 'user.late'), ENODATA, 'answered from the listing (attr_timeout 60 s)');
});

test('a chmod through the union (copy-up) keeps the absences right; the xattrs copied up are still there', (t) => {
  const s = setup();
  t.after(s.cleanup);
  const f = s.lookup('f');
  assert.equal(s.getx(f, 'security.capability'), ENODATA);
  assert.equal(s.setattrMode(f, 0o600), 104); // attr_out
  assert.equal(s.getx(f, 'security.capability'), ENODATA);
  const n = s.getx(f, 'user.here');
  assert.equal(s.valueOf(n), 'v');
});

test('XattrAbsence with a name list: absent unless listed, expired after the timeout, cleared by changes', () => {
  let now = 1000;
  const a = new XattrAbsence<object>(50, () => now);
  const n1 = {};
  a.rememberNames(n1, ['user.x']);
  assert.equal(a.get(n1, 'user.x'), PRESENT);
  assert.equal(a.get(n1, 'user.y'), ENODATA);
  a.changed();
  assert.equal(a.get(n1, 'user.y'), 0);
  a.rememberNames(n1, []);
  assert.equal(a.get(n1, 'user.y'), ENODATA);
  now += 49;
  assert.equal(a.get(n1, 'user.y'), ENODATA, 'not yet expired');
  now += 1;
  assert.equal(a.get(n1, 'user.y'), 0, 'expired');
});
