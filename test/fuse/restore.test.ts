/**
 * Node ids and handles across several consecutive daemon takeovers (fuse/node-journal.ts,
 * fuse/restore.ts), without a mount: each "daemon" is a fresh union + FuseOps over the same
 * branches, resumed from the journal the previous one left (as supervise-serve.ts does); the test
 * plays the kernel, which keeps the ids and handles it was given. A crash is the daemon dropped
 * without a word.
 *
 * The invariant: every id the kernel still holds (not forgotten) and every open handle resolves
 * after any number of takeovers, whatever the daemons in between did to the names (looked up
 * again, renamed the file or a parent, reused the old name).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Op, Size } from '../../src/fuse/abi.js';
import { encodeOpenIn, encodeReadWriteIn } from '../../src/fuse/requests.js';
import { O_RDWR } from '../../src/sys/constants.js';
import { cstr, takeovers, u64, type TakeoverDaemon } from '../helpers/takeover-daemons.js';

interface Daemon extends TakeoverDaemon {
  open(id: number, flags?: number): number;
  opendir(id: number): number;
  write(id: number, fh: number, offset: number, data: string): number;
  /** Names a READDIR of the handle lists (or a negative errno). */
  readdir(id: number, fh: number): string[] | number;
  mkdir(dir: number, name: string): number;
  forget(id: number, n: number): void;
  /** 0, or a negative errno. */
  getattr(id: number): number;
}

function scenario(t: { after(fn: () => void): void }) {
  const { root, start: next } = takeovers(t, 'restore', (_up, lo) => {
    mkdirSync(join(lo, 'd'));
    writeFileSync(join(lo, 'd', 'f'), 'lower\n');
    writeFileSync(join(lo, 'd', 'g'), 'other\n');
  });
  const start = (): Daemon => {
    const k = next();
    const { req, out } = k;
    const rw = (fh: number, offset: number, size: number): Buffer => {
      const b = Buffer.alloc(Size.WRITE_IN);
      encodeReadWriteIn(b, 0, { fh, offset, size, flags: O_RDWR });
      return b;
    };
    return {
      ...k,
      open(id, flags = O_RDWR) {
        const b = Buffer.alloc(Size.OPEN_IN);
        encodeOpenIn(b, 0, { flags, openFlags: 0 });
        const r = req(Op.OPEN, id, b);
        assert.ok(r > 0, `open ${id}: ${r}`);
        return Number(out.readBigUInt64LE(16));
      },
      opendir(id) {
        const r = req(Op.OPENDIR, id, Buffer.alloc(Size.OPEN_IN));
        assert.ok(r > 0, `opendir ${id}: ${r}`);
        return Number(out.readBigUInt64LE(16));
      },
      write(id, fh, offset, data) {
        const body = Buffer.from(data);
        const r = req(Op.WRITE, id, Buffer.concat([rw(fh, offset, body.length), body]));
        return r < 0 ? r : out.readUInt32LE(16);
      },
      readdir(id, fh) {
        const r = req(Op.READDIR, id, rw(fh, 0, 4096));
        if (r < 0) return r;
        const names: string[] = [];
        for (let at = 16; at < 16 + r; ) {
          const len = out.readUInt32LE(at + 16);
          names.push(out.toString('utf8', at + 24, at + 24 + len));
          at += 24 + ((len + 7) & ~7);
        }
        return names.sort();
      },
      mkdir(dir, name) {
        const b = Buffer.alloc(8);
        b.writeUInt32LE(0o40755, 0);
        const r = req(Op.MKDIR, dir, Buffer.concat([b, cstr(name)]));
        assert.ok(r > 0, `mkdir ${name}: ${r}`);
        return Number(out.readBigUInt64LE(16));
      },
      forget(id, n) {
        req(Op.FORGET, id, u64(n));
      },
      getattr(id) {
        const r = k.attr(id);
        return r < 0 ? r : 0;
      },
    };
  };
  const upper = (rel: string): string => readFileSync(join(root, 'up', rel), 'utf8');
  return { root, start, upper };
}

test('a parent dir looked up again, the handle used, then the dir renamed: the handle writes after the next crash', (t) => {
  const s = scenario(t);
  let d = s.start();
  const D1 = d.lookup(1, 'd');
  const A = d.lookup(D1, 'f');
  const fh = d.open(A);
  const dfh = d.opendir(D1);
  d.crash();
  d = s.start();
  const D2 = d.lookup(1, 'd'); // the kernel revalidates: a new id for the dir
  assert.notEqual(D2, D1);
  assert.equal(d.write(A, fh, 0, 'L'), 1, 'the handle works after one takeover');
  assert.equal(d.rename(1, 'd', 1, 'e'), 0);
  assert.equal(d.write(A, fh, 1, 'o'), 1);
  d.crash();
  d = s.start();
  assert.equal(d.write(A, fh, 2, 'w'), 1, 'the handle works after the second takeover');
  assert.deepEqual(d.readdir(D1, dfh), ['.', '..', 'f', 'g'], 'so does the directory handle');
  d.crash();
  d = s.start();
  assert.equal(d.write(A, fh, 3, 'E'), 1, 'and after the third');
  assert.equal(s.upper('e/f'), 'LowEr\n');
});

test('a parent dir renamed before the handle was used after a takeover: the handle still writes (same daemon and the next)', (t) => {
  const s = scenario(t);
  let d = s.start();
  const A = d.lookup(d.lookup(1, 'd'), 'f');
  const fh = d.open(A);
  d.crash();
  d = s.start();
  d.lookup(1, 'd');
  assert.equal(d.rename(1, 'd', 1, 'e'), 0);
  assert.equal(d.write(A, fh, 0, 'L'), 1, 'in the daemon that renamed');
  d.crash();
  d = s.start();
  assert.equal(d.write(A, fh, 1, 'O'), 1, 'after the next takeover');
  assert.equal(s.upper('e/f'), 'LOwer\n');
});

test('the file itself looked up again and renamed, then the old name made anew: the handle keeps its file', (t) => {
  const s = scenario(t);
  let d = s.start();
  const D1 = d.lookup(1, 'd');
  const A = d.lookup(D1, 'f');
  const fh = d.open(A);
  d.crash();
  d = s.start();
  const D2 = d.lookup(1, 'd');
  d.lookup(D2, 'f');
  assert.equal(d.rename(D2, 'f', D2, 'h'), 0);
  d.crash();
  // the old name holds another file now
  writeFileSync(join(s.root, 'up', 'd', 'f'), 'impostor\n');
  d = s.start();
  assert.equal(d.write(A, fh, 0, 'L'), 1);
  d.crash();
  d = s.start();
  assert.equal(d.write(A, fh, 1, 'O'), 1);
  assert.equal(s.upper('d/h'), 'LOwer\n');
  assert.equal(s.upper('d/f'), 'impostor\n', 'the file now at the old name is not written');
});

test('ids a daemon never touched outlive it: three takeovers in a row, then the handle and the ids work', (t) => {
  const s = scenario(t);
  let d = s.start();
  const D1 = d.lookup(1, 'd');
  const A = d.lookup(D1, 'f');
  const G = d.lookup(D1, 'g');
  const fh = d.open(A);
  for (let i = 0; i < 3; i++) {
    d.crash();
    d = s.start();
    d.lookup(1, 'd');
  }
  assert.equal(d.write(A, fh, 0, 'L'), 1);
  assert.equal(d.getattr(G), 0, 'an id of the first daemon');
  assert.ok(d.lookup(D1, 'g') > 0, 'a dir id of the first daemon');
});

test('a renamed parent dir whose old name is made anew: held ids resolve to the moved files, not the new ones', (t) => {
  const s = scenario(t);
  let d = s.start();
  const D1 = d.lookup(1, 'd');
  const A = d.lookup(D1, 'f');
  const fh = d.open(A);
  d.crash();
  d = s.start();
  d.lookup(1, 'd');
  assert.equal(d.rename(1, 'd', 1, 'e'), 0);
  const N = d.mkdir(1, 'd');
  d.crash();
  writeFileSync(join(s.root, 'up', 'd', 'f'), 'impostor\n');
  d = s.start();
  assert.equal(d.write(A, fh, 0, 'L'), 1);
  assert.equal(s.upper('e/f'), 'Lower\n');
  assert.equal(s.upper('d/f'), 'impostor\n');
  assert.notEqual(d.lookup(N, 'f'), A);
});

test('an id removed while not yet resolved is not found again under a name made later', (t) => {
  const s = scenario(t);
  let d = s.start();
  const D1 = d.lookup(1, 'd');
  const G = d.lookup(D1, 'g');
  d.crash();
  d = s.start();
  const D2 = d.lookup(1, 'd');
  assert.equal(d.unlink(D2, 'g'), 0);
  d.crash();
  writeFileSync(join(s.root, 'up', 'd', 'g'), 'new\n');
  d = s.start();
  assert.ok(d.getattr(G) < 0, 'the removed file\'s id does not name the new g');
  assert.notEqual(d.lookup(D1, 'g'), G, 'the new g gets a new id');
});
