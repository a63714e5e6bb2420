/**
 * The request a dead daemon was serving, across consecutive takeovers (node-journal.ts CARRY,
 * supervise-serve.ts): daemon A does a request in full and is killed before its reply; daemon B
 * takes over and is killed before it has served the kernel's resend; daemon C gets the resend and
 * must answer it as done: an O_APPEND write is not appended twice, a CREATE/MKDIR does not answer
 * EEXIST, a RENAME does not answer ENOENT, and the ids the kernel holds name what the rename left.
 * Also: a daemon killed after a request was handled but before its reply was written (one
 * takeover). Without FUSE: each daemon is a fresh union + FuseOps resumed from the journal the one
 * before left (test/helpers/takeover-daemons.ts); the test plays the kernel.
 *
 * A kill inside a request is modelled as in rename-crash.test.ts: when the engine call returns
 * (the request done on disk, nothing journaled or answered after it), the journal file is copied
 * as it is, the request stops, and that copy is what the next daemon finds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Op, Size } from '../../src/fuse/abi.js';
import { encodeReadWriteIn } from '../../src/fuse/requests.js';
import { O_APPEND, O_CREAT, O_EXCL, O_WRONLY } from '../../src/sys/constants.js';
import { cstr, takeovers, type TakeoverDaemon } from '../helpers/takeover-daemons.js';

class Killed extends Error {}

const ESTALE = -116;

/** Daemons over `up` (rw) holding `log` and `a`, `b` in the rw branch, `old` in the ro one. */
function scenario(t: { after(fn: () => void): void }) {
  /** The engine call after which the next request is killed (null: none). */
  const kill = { after: null as string | null, snap: null as Buffer | null };
  const s = takeovers(
    t,
    'carry',
    (up, lo) => {
      writeFileSync(join(lo, 'log'), 'lower\n');
      writeFileSync(join(up, 'a'), 'aaa\n');
      writeFileSync(join(up, 'b'), 'bbbbbb\n');
    },
    (union) => {
      const u = union as unknown as Record<string, (...a: unknown[]) => unknown>;
      for (const m of ['write', 'create', 'mkdir', 'mknod', 'rename']) {
        const orig = u[m]!.bind(u);
        u[m] = (...a: unknown[]) => {
          const r = orig(...a);
          if (kill.after === m) {
            kill.after = null;
            kill.snap = readFileSync(s.journal);
            throw new Killed(`kill -9 after the engine's ${m}`);
          }
          return r;
        };
      }
    },
  );
  /** Send a request to `d` with a kill armed after the engine's `method`: the next daemon. */
  const killedIn = (d: TakeoverDaemon, method: string, send: () => number): { unique: number } => {
    kill.after = method;
    kill.snap = null;
    try {
      send();
    } catch (e) {
      if (!(e instanceof Killed)) throw e;
    }
    assert.ok(kill.snap, `killed after the engine's ${method}`);
    d.crash();
    writeFileSync(s.journal, kill.snap);
    return { unique: d.lastUnique() };
  };
  const upper = (name: string): string => readFileSync(join(s.root, 'up', name), 'utf8');
  return { ...s, killedIn, upper };
}

function openAppend(d: TakeoverDaemon, id: number): number {
  const b = Buffer.alloc(Size.OPEN_IN);
  b.writeUInt32LE(O_WRONLY | O_APPEND, 0);
  assert.ok(d.req(Op.OPEN, id, b) > 0, 'open');
  return Number(d.out.readBigUInt64LE(16));
}

function appendBody(fh: number, offset: number, data: string): Buffer {
  const b = Buffer.alloc(Size.WRITE_IN);
  encodeReadWriteIn(b, 0, { fh, offset, size: Buffer.byteLength(data), flags: O_WRONLY | O_APPEND });
  return Buffer.concat([b, Buffer.from(data)]);
}

function createBody(name: string, flags: number): Buffer {
  const b = Buffer.alloc(Size.CREATE_IN);
  b.writeUInt32LE(flags, 0);
  b.writeUInt32LE(0o100644, 4);
  return Buffer.concat([b, cstr(name)]);
}

function mkdirBody(name: string): Buffer {
  const b = Buffer.alloc(Size.MKDIR_IN);
  b.writeUInt32LE(0o755, 0);
  return Buffer.concat([b, cstr(name)]);
}

/** `n` daemons in a row take over and are killed before they read anything. */
function deadTakeovers(s: { start(): TakeoverDaemon }, n: number): void {
  for (let i = 0; i < n; i++) s.start().crash();
}

for (const dead of [1, 3]) {
  test(`an O_APPEND write done by a daemon killed before its reply, then ${dead} daemon(s) killed before the resend: appended once`, (t) => {
    const s = scenario(t);
    const a = s.start();
    const id = a.lookup(1, 'log');
    const fh = openAppend(a, id);
    const body = appendBody(fh, 6, 'line\n');
    const { unique } = s.killedIn(a, 'write', () => a.req(Op.WRITE, id, body));
    assert.equal(s.upper('log'), 'lower\nline\n', 'the dead daemon appended the line');
    deadTakeovers(s, dead);
    const c = s.start();
    const r = c.req(Op.WRITE, id, body, unique, true);
    assert.ok(r > 0, `the resent write: ${r}`);
    assert.equal(c.out.readUInt32LE(16), 5, 'the reply says 5 bytes written');
    assert.equal(s.upper('log'), 'lower\nline\n', 'the line is in the file once');
  });
}

test('a CREATE (O_EXCL) done, then a daemon killed before the resend: the resend opens the file, no EEXIST', (t) => {
  const s = scenario(t);
  const a = s.start();
  const body = createBody('new', O_WRONLY | O_CREAT | O_EXCL);
  const { unique } = s.killedIn(a, 'create', () => a.req(Op.CREATE, 1, body));
  deadTakeovers(s, 1);
  const c = s.start();
  const r = c.req(Op.CREATE, 1, body, unique, true);
  assert.ok(r > 0, `the resent create: ${r}`);
  assert.equal(s.upper('new'), '');
});

test('a MKDIR done, then a daemon killed before the resend: the resend answers the dir, no EEXIST', (t) => {
  const s = scenario(t);
  const a = s.start();
  const body = mkdirBody('dir');
  const { unique } = s.killedIn(a, 'mkdir', () => a.req(Op.MKDIR, 1, body));
  deadTakeovers(s, 1);
  const c = s.start();
  const r = c.req(Op.MKDIR, 1, body, unique, true);
  assert.ok(r > 0, `the resent mkdir: ${r}`);
  assert.equal(c.out.readUInt32LE(16 + 40 + 60) & 0o170000, 0o040000, 'a directory');
});

test('a RENAME over a held file done, then a daemon killed before the resend: answered 0, the held ids name what the rename left', (t) => {
  const s = scenario(t);
  const a = s.start();
  const A = a.lookup(1, 'a');
  const B = a.lookup(1, 'b');
  const inoA = (() => {
    assert.ok(a.attr(A) > 0);
    return Number(a.out.readBigUInt64LE(16 + 16));
  })();
  const { unique } = s.killedIn(a, 'rename', () => a.rename(1, 'a', 1, 'b'));
  assert.equal(s.upper('b'), 'aaa\n', 'the dead daemon renamed');
  deadTakeovers(s, 1);
  const c = s.start();
  assert.equal(c.rename(1, 'a', 1, 'b', unique, true), 0, 'the resent rename');
  assert.ok(c.attr(A) > 0, "the moved file's id still names it");
  assert.equal(Number(c.out.readBigUInt64LE(16 + 16)), inoA);
  const rb = c.attr(B);
  assert.ok(rb === ESTALE || Number(c.out.readBigUInt64LE(16 + 16)) !== inoA, "the replaced file's id does not name the moved file");
});

test('a rename judged done by a daemon that then dies: the next one finds the ids where the rename put them', (t) => {
  const s = scenario(t);
  const a = s.start();
  const A = a.lookup(1, 'a');
  const B = a.lookup(1, 'b');
  assert.ok(a.attr(A) > 0);
  const inoA = Number(a.out.readBigUInt64LE(16 + 16));
  s.killedIn(a, 'rename', () => a.rename(1, 'a', 1, 'b'));
  deadTakeovers(s, 2);
  const c = s.start();
  // no resend served: what the ids name comes from the journals alone
  assert.ok(c.attr(A) > 0, "the moved file's id still names it");
  assert.equal(Number(c.out.readBigUInt64LE(16 + 16)), inoA);
  const rb = c.attr(B);
  assert.ok(rb === ESTALE || Number(c.out.readBigUInt64LE(16 + 16)) !== inoA, "the replaced file's id does not name the moved file");
});

test('an O_APPEND write handled in full, the daemon killed before the reply was written: the resend is not appended again', (t) => {
  const s = scenario(t);
  const a = s.start();
  const id = a.lookup(1, 'log');
  const fh = openAppend(a, id);
  const body = appendBody(fh, 6, 'line\n');
  assert.ok(a.req(Op.WRITE, id, body) > 0, 'handled; the reply is lost with the daemon');
  const unique = a.lastUnique();
  a.crash();
  const b = s.start();
  assert.ok(b.req(Op.WRITE, id, body, unique, true) > 0);
  assert.equal(s.upper('log'), 'lower\nline\n', 'the line is in the file once');
});

test('a resend served by a daemon killed before its reply: the next daemon answers it as done too', (t) => {
  const s = scenario(t);
  const a = s.start();
  const body = mkdirBody('dir');
  const { unique } = s.killedIn(a, 'mkdir', () => a.req(Op.MKDIR, 1, body));
  const b = s.start();
  assert.ok(b.req(Op.MKDIR, 1, body, unique, true) > 0, 'served by B; its reply is lost with it');
  b.crash();
  const c = s.start();
  assert.ok(c.req(Op.MKDIR, 1, body, unique, true) > 0, 'the resent mkdir again');
});

test('after the carried resend is served, a later daemon serves new requests as new, whatever their number', (t) => {
  const s = scenario(t);
  const a = s.start();
  const id = a.lookup(1, 'log');
  const fh = openAppend(a, id);
  const body = appendBody(fh, 6, 'line\n');
  const { unique } = s.killedIn(a, 'write', () => a.req(Op.WRITE, id, body));
  deadTakeovers(s, 1);
  const c = s.start();
  assert.ok(c.req(Op.WRITE, id, body, unique, true) > 0, 'C serves the resend (and answers it)');
  const dir = mkdirBody('dir');
  assert.ok(c.req(Op.MKDIR, 1, dir) > 0);
  const made = c.lastUnique();
  c.crash(); // its last request (the mkdir) answered: the kernel sends neither again
  const d = s.start();
  assert.ok(d.req(Op.WRITE, id, appendBody(fh, 11, 'next\n')) > 0);
  assert.equal(s.upper('log'), 'lower\nline\nnext\n', 'a new append is appended');
  assert.ok(d.req(Op.WRITE, id, appendBody(fh, 16, 'line\n'), unique) > 0, 'a new request numbered as the served one');
  assert.equal(s.upper('log'), 'lower\nline\nnext\nline\n', 'appended, not taken for the served one');
  assert.equal(d.req(Op.MKDIR, 1, dir, made), -17, 'a new mkdir numbered as the answered one: EEXIST');
  assert.equal(d.req(Op.MKDIR, 1, dir, d.lastUnique() + 1, true), -17, 'a resent mkdir never carried: EEXIST');
});

test('a MKNOD done, then a daemon killed before the resend: the resend answers the node, no EEXIST', (t) => {
  const s = scenario(t);
  const a = s.start();
  const b = Buffer.alloc(Size.MKNOD_IN);
  b.writeUInt32LE(0o010644, 0); // a fifo
  const body = Buffer.concat([b, cstr('fifo')]);
  const { unique } = s.killedIn(a, 'mknod', () => a.req(Op.MKNOD, 1, body));
  deadTakeovers(s, 2);
  const c = s.start();
  const r = c.req(Op.MKNOD, 1, body, unique, true);
  assert.ok(r > 0, `the resent mknod: ${r}`);
  assert.equal(c.out.readUInt32LE(16 + 40 + 60) & 0o170000, 0o010000, 'a fifo');
});

test('carried requests stay few over many takeovers', (t) => {
  const s = scenario(t);
  let d = s.start();
  const id = d.lookup(1, 'a');
  const b = Buffer.alloc(Size.OPEN_IN);
  b.writeUInt32LE(O_WRONLY, 0);
  assert.ok(d.req(Op.OPEN, id, b) > 0, 'open');
  const fh = Number(d.out.readBigUInt64LE(16));
  const w = Buffer.alloc(Size.WRITE_IN);
  encodeReadWriteIn(w, 0, { fh, offset: 0, size: 1, flags: O_WRONLY });
  const write = Buffer.concat([w, Buffer.from('A')]);
  for (let i = 0; i < 200; i++) {
    // each daemon answers a write and dies: its slot names a request the kernel never sends again
    assert.ok(d.req(Op.WRITE, id, write) > 0);
    d.crash();
    d = s.start();
  }
  assert.ok(d.attr(id) > 0);
  // records in use (header field at 4): names, id bounds and at most 64 carried requests (23 bytes each)
  const used = readFileSync(s.journal).readUInt32LE(4);
  assert.ok(used < 100 * 23, `${used} bytes of records after 200 takeovers`);
  assert.ok(used > 64 * 23, `${used} bytes: the answered writes are carried (bounded)`);
});
