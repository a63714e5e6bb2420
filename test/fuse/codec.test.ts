import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Init, Init2, Op, Size, isNoReply, opName, KERNEL_MINOR_VERSION } from '../../src/fuse/abi.js';
import {
  decodeAttr,
  decodeEntryOut,
  decodeInHeader,
  decodeInitOut,
  decodeOutHeader,
  encodeAttr,
  encodeEntryOut,
  encodeInHeader,
  encodeInitOut,
  encodeOutHeader,
  negotiateInit,
  readCString,
  readTwoCStrings,
  readU64,
  writeU64,
  type EntryOut,
} from '../../src/fuse/codec.js';
import {
  decodeBatchForget,
  decodeInitIn,
  decodeReadWriteIn,
  decodeSetattrIn,
  encodeBatchForget,
  encodeInitIn,
  encodeReadWriteIn,
  encodeSetattrIn,
} from '../../src/fuse/requests.js';
import { decodeDirents, decodeDirentsPlus, direntPlusSize, direntSize, encodeDirent, encodeDirentPlus, encodeNotifyInvalEntry } from '../../src/fuse/dirent-codec.js';
import { HandleTable, NodeTable } from '../../src/fuse/node-table.js';
import type { Attr } from '../../src/engine/types.js';

const attr: Attr = {
  ino: 2 ** 40 + 7,
  mode: 0o100644,
  nlink: 2,
  uid: 1000,
  gid: 100,
  rdev: 0,
  size: 5 * 2 ** 32 + 3,
  blocks: 9,
  blksize: 4096,
  atimeSec: 1_700_000_000,
  atimeNsec: 999_999_999,
  mtimeSec: -5,
  mtimeNsec: 1,
  ctimeSec: 0,
  ctimeNsec: 0,
};

test('64-bit fields round-trip, including values above 2^32 and negative times', () => {
  const b = Buffer.alloc(8);
  for (const n of [0, 1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1]) {
    writeU64(b, 0, n);
    assert.equal(readU64(b, 0), n);
  }
  writeU64(b, 0, -5);
  assert.equal(b.readBigInt64LE(0), -5n);
});

test('struct sizes match linux/fuse.h', () => {
  const b = Buffer.alloc(256);
  assert.equal(encodeAttr(b, 0, attr), Size.ATTR);
  assert.equal(encodeEntryOut(b, 0, { nodeid: 2, generation: 1, entryValid: 1, attrValid: 1, attr }), Size.ENTRY_OUT);
  assert.equal(encodeInitOut(b, 0, negotiateInit({ major: 7, minor: 45, maxReadahead: 131072, flags: 0, flags2: 0 }, { flags: 0, flags2: 0, maxWrite: 1 << 20, maxBackground: 0 })!), Size.INIT_OUT);
  assert.equal(Size.IN_HEADER, 40);
  assert.equal(Size.OUT_HEADER, 16);
  assert.equal(Size.ATTR_OUT, 16 + Size.ATTR);
  assert.equal(Size.ENTRY_OUT, 40 + Size.ATTR);
});

test('attr and entry_out round-trip; timeouts split into seconds and nanoseconds', () => {
  const b = Buffer.alloc(Size.ENTRY_OUT);
  encodeAttr(b, 0, attr);
  assert.deepEqual(decodeAttr(b, 0), attr);
  const e: EntryOut = { nodeid: 42, generation: 3, entryValid: 1.5, attrValid: 0.25, attr };
  encodeEntryOut(b, 0, e);
  assert.equal(b.readUInt32LE(16), 1); // entry_valid seconds
  assert.equal(b.readUInt32LE(32), 500_000_000); // entry_valid_nsec
  assert.equal(b.readUInt32LE(36), 250_000_000); // attr_valid_nsec
  assert.deepEqual(decodeEntryOut(b, 0), e);
});

test('in/out headers round-trip; extensions length is in 8-byte units', () => {
  const b = Buffer.alloc(Size.IN_HEADER);
  const h = { len: 100, opcode: Op.LOOKUP, unique: 2 ** 33 + 9, nodeid: 1, uid: 1000, gid: 1000, pid: 4321, extlen: 16 };
  encodeInHeader(b, h);
  assert.equal(b.readUInt16LE(36), 2);
  assert.deepEqual(decodeInHeader(b), h);
  const o = Buffer.alloc(Size.OUT_HEADER);
  encodeOutHeader(o, 16, -2, 77);
  assert.deepEqual(decodeOutHeader(o), { len: 16, error: -2, unique: 77 });
});

test('names: NUL-terminated, two in a row (RENAME, SYMLINK), bounded by the request end', () => {
  const b = Buffer.from('old\0new name\0tail');
  assert.deepEqual(readTwoCStrings(b, 0, b.length), ['old', 'new name']);
  assert.equal(readCString(b, 13, b.length).value, 'tail');
  assert.equal(readCString(Buffer.from('héllo\0'), 0, 7).value, 'héllo');
});

test('setattr_in and read/write_in round-trip', () => {
  const b = Buffer.alloc(Size.SETATTR_IN);
  const s = { valid: 0b1111, fh: 9, size: 2 ** 35, atime: 10, mtime: 20, atimensec: 1, mtimensec: 2, mode: 0o100600, uid: 5, gid: 6 };
  encodeSetattrIn(b, 0, s);
  assert.deepEqual(decodeSetattrIn(b, 0), s);
  const r = { fh: 3, offset: 2 ** 34, size: 1 << 20, flags: 0o2 };
  encodeReadWriteIn(b, 0, r);
  assert.deepEqual(decodeReadWriteIn(b, 0), r);
});

test('batch forget decodes every record and stops at the request end', () => {
  const b = Buffer.alloc(8 + 3 * 16);
  const items = [
    { nodeid: 2, nlookup: 1 },
    { nodeid: 3, nlookup: 5 },
    { nodeid: 2 ** 40, nlookup: 2 },
  ];
  const end = encodeBatchForget(b, 0, items);
  assert.equal(end, b.length);
  assert.deepEqual(decodeBatchForget(b, 0, end), items);
  assert.deepEqual(decodeBatchForget(b, 0, end - 16), items.slice(0, 2));
});

test('dirents: 24-byte header + name padded to 8, off = cookie of the next entry', () => {
  assert.equal(direntSize(1), 32);
  assert.equal(direntSize(8), 32);
  assert.equal(direntSize(9), 40);
  const b = Buffer.alloc(200, 0xff);
  let p = encodeDirent(b, 0, 200, 11, 1, 8, 'a');
  assert.equal(p, 32);
  assert.deepEqual([...b.subarray(25, 32)], [0, 0, 0, 0, 0, 0, 0], 'padding is zeroed');
  p = encodeDirent(b, p, 200, 12, 2, 4, 'directory');
  assert.equal(p, 72);
  assert.equal(encodeDirent(b, p, 100, 13, 3, 8, 'does-not-fit'), -1, 'a full buffer refuses the entry');
  assert.deepEqual(decodeDirents(b, 0, p), [
    { ino: 11, off: 1, type: 8, name: 'a' },
    { ino: 12, off: 2, type: 4, name: 'directory' },
  ]);
});

test('readdirplus entries: entry_out then dirent, whole record padded to 8', () => {
  assert.equal(direntPlusSize(1), Size.ENTRY_OUT + 32);
  assert.equal(direntPlusSize(9), Size.ENTRY_OUT + 40);
  const b = Buffer.alloc(1024);
  const e: EntryOut = { nodeid: 5, generation: 1, entryValid: 1, attrValid: 1, attr };
  const p1 = encodeDirentPlus(b, 0, 1024, e, 3, 8, 'file.txt');
  assert.equal(p1, Size.ENTRY_OUT + 32);
  const p2 = encodeDirentPlus(b, p1, 1024, { ...e, nodeid: 6 }, 4, 8, 'x');
  assert.equal(p2 % 8, 0);
  const got = decodeDirentsPlus(b, 0, p2);
  assert.equal(got.length, 2);
  assert.equal(got[0]!.entry.nodeid, 5);
  assert.equal(got[0]!.dirent.name, 'file.txt');
  assert.equal(got[0]!.dirent.ino, attr.ino, 'the dirent ino is the attr ino');
  assert.equal(got[1]!.dirent.off, 4);
  assert.equal(encodeDirentPlus(b, 0, Size.ENTRY_OUT + 24, e, 1, 8, 'x'), -1);
});

test('INIT: we answer only what the kernel offered; flags2 only with INIT_EXT; max_write bounded by max_pages', () => {
  const want = {
    flags: Init.ASYNC_READ | Init.BIG_WRITES | Init.DO_READDIRPLUS | Init.READDIRPLUS_AUTO | Init.MAX_PAGES | Init.PARALLEL_DIROPS | Init.INIT_EXT,
    flags2: Init2.NO_EXPORT_SUPPORT,
    maxWrite: 1 << 20,
    maxBackground: 64,
  };
  // A 7.45 kernel offering everything
  const all = { major: 7, minor: 45, maxReadahead: 131072, flags: 0xffffffff, flags2: 0xffffffff };
  const r = negotiateInit(all, want)!;
  assert.equal(r.flags, want.flags >>> 0);
  assert.equal(r.flags2, Init2.NO_EXPORT_SUPPORT);
  assert.equal(r.minor, KERNEL_MINOR_VERSION);
  assert.equal(r.maxWrite, 1 << 20);
  assert.equal(r.maxPages, 256);
  assert.equal(r.maxReadahead, 131072);
  // An old kernel: no MAX_PAGES, no INIT_EXT -> 128 KiB writes, no flags2, lower minor kept
  const old = { major: 7, minor: 26, maxReadahead: 65536, flags: Init.ASYNC_READ | Init.BIG_WRITES, flags2: Init2.NO_EXPORT_SUPPORT };
  const o = negotiateInit(old, want)!;
  assert.equal(o.flags, Init.ASYNC_READ | Init.BIG_WRITES);
  assert.equal(o.flags2, 0);
  assert.equal(o.minor, 26);
  assert.equal(o.maxWrite, 32 * 4096);
  assert.equal(o.maxPages, 0);
  assert.equal(negotiateInit({ ...all, major: 8 }, want), null);
});

test('INIT in: flags2 is read only when the kernel sets INIT_EXT; the reply round-trips', () => {
  const b = Buffer.alloc(Size.INIT_IN);
  encodeInitIn(b, 0, { major: 7, minor: 45, maxReadahead: 4096, flags: Init.ASYNC_READ, flags2: 0xff });
  assert.equal(decodeInitIn(b, 0, Size.INIT_IN).flags2, 0);
  encodeInitIn(b, 0, { major: 7, minor: 45, maxReadahead: 4096, flags: Init.ASYNC_READ | Init.INIT_EXT, flags2: 0xff });
  assert.equal(decodeInitIn(b, 0, Size.INIT_IN).flags2, 0xff);
  const r = negotiateInit(decodeInitIn(b, 0, Size.INIT_IN), { flags: Init.ASYNC_READ | Init.MAX_PAGES, flags2: 0, maxWrite: 1 << 20, maxBackground: 12 })!;
  const out = Buffer.alloc(Size.INIT_OUT);
  encodeInitOut(out, 0, r);
  assert.deepEqual(decodeInitOut(out, 0), r);
  assert.equal(out.readUInt32LE(12), Init.ASYNC_READ, 'MAX_PAGES not offered, not answered');
});

test('notifications are unsolicited: unique 0, error = notify code', () => {
  const b = Buffer.alloc(64);
  const len = encodeNotifyInvalEntry(b, 1, 'abc');
  assert.equal(len, 16 + 16 + 4);
  assert.deepEqual(decodeOutHeader(b), { len, error: 3, unique: 0 });
  assert.equal(b.toString('utf8', 32, 35), 'abc');
});

test('opcode names and no-reply opcodes', () => {
  assert.equal(opName(Op.READDIRPLUS), 'READDIRPLUS');
  assert.equal(opName(999), 'OP999');
  assert.ok(isNoReply(Op.FORGET) && isNoReply(Op.BATCH_FORGET) && isNoReply(Op.INTERRUPT));
  assert.ok(!isNoReply(Op.LOOKUP));
});

test('node table: root is 1, ids per node, lookup counts, forget frees and tells the engine', () => {
  const root = { ino: 1 };
  const forgotten: object[] = [];
  const t = new NodeTable<{ ino: number }>(root, (n) => forgotten.push(n));
  assert.equal(t.get(1), root);
  const a = { ino: 10 };
  const id = t.add(a);
  assert.ok(id > 1);
  assert.equal(t.add(a), id, 'same node, same id');
  assert.equal(t.lookups(id), 2);
  t.forget(id, 1);
  assert.equal(t.get(id), a);
  t.forget(id, 1);
  assert.equal(t.get(id), undefined);
  assert.deepEqual(forgotten, [a]);
  const id2 = t.add(a);
  assert.notEqual(id2, id, 'ids are not reused');
  t.forget(1, 100);
  assert.equal(t.get(1), root, 'root is never forgotten');
  assert.equal(t.size, 2);
  const h = new HandleTable<string>();
  const fh = h.add('x');
  assert.equal(h.get(fh), 'x');
  assert.equal(h.remove(fh), 'x');
  assert.equal(h.get(fh), undefined);
});
