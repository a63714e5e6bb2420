/**
 * The request a dead daemon was serving, sent again by the kernel after a restart (fuse/replay.ts):
 * an O_APPEND WRITE whose data already landed is answered without appending it a second time; any
 * other WRITE is served again (at its offset it is idempotent).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Op, Size } from '../../src/fuse/abi.js';
import { encodeInHeader, type InHeader } from '../../src/fuse/codec.js';
import { encodeReadWriteIn, type ReadWriteIn } from '../../src/fuse/requests.js';
import { serveReplayed, type Replayable } from '../../src/fuse/replay.js';
import { O_APPEND, O_WRONLY } from '../../src/sys/constants.js';

function writeRequest(flags: number, offset: number, data: string): { hd: InHeader; b: Buffer; end: number } {
  const body = Buffer.from(data);
  const end = Size.IN_HEADER + Size.WRITE_IN + body.length;
  const hd: InHeader = { len: end, opcode: Op.WRITE, unique: 42, nodeid: 5, uid: 0, gid: 0, pid: 1, extlen: 0 };
  const b = Buffer.alloc(end);
  encodeInHeader(b, hd);
  encodeReadWriteIn(b, Size.IN_HEADER, { fh: 7, offset, size: body.length, flags });
  body.copy(b, Size.IN_HEADER + Size.WRITE_IN);
  return { hd, b, end };
}

/** A file of `size` bytes; dispatch appends (as an O_APPEND backing fd does) and counts. */
function fakeOps(size: number): Replayable & { served: number; size: number } {
  return {
    served: 0,
    size,
    dispatch(_hd, b, _end, out) {
      this.served++;
      const n = b.length - Size.IN_HEADER - Size.WRITE_IN;
      this.size += n;
      out.writeUInt32LE(n, Size.OUT_HEADER);
      return 8;
    },
    entryOf: () => assert.fail('no entry asked for a WRITE'),
    appendLanded(w: ReadWriteIn) {
      return this.size >= w.offset + w.size;
    },
  };
}

test('a resent O_APPEND write that already landed is answered, not appended again', () => {
  const ops = fakeOps(110); // 100 bytes before, the dead daemon's 10-byte append landed
  const r = writeRequest(O_WRONLY | O_APPEND, 100, '0123456789');
  const out = Buffer.alloc(64);
  assert.equal(serveReplayed(ops, r.hd, r.b, r.end, out), 8);
  assert.equal(out.readUInt32LE(Size.OUT_HEADER), 10, 'the reply says all 10 bytes were written');
  assert.equal(ops.served, 0);
  assert.equal(ops.size, 110, 'the data is in the file once');
});

test('a resent O_APPEND write that had not landed is served', () => {
  const ops = fakeOps(100);
  const r = writeRequest(O_WRONLY | O_APPEND, 100, '0123456789');
  serveReplayed(ops, r.hd, r.b, r.end, Buffer.alloc(64));
  assert.equal(ops.served, 1);
  assert.equal(ops.size, 110);
});

test('a resent write without O_APPEND is served again (idempotent at its offset)', () => {
  const ops = fakeOps(110);
  const r = writeRequest(O_WRONLY, 100, '0123456789');
  serveReplayed(ops, r.hd, r.b, r.end, Buffer.alloc(64));
  assert.equal(ops.served, 1);
});
