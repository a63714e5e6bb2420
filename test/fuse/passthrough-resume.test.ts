/**
 * Passthrough's table across daemon takeovers, without a mount (fuse/passthrough-resume.ts): each
 * "daemon" is a fresh union + FuseOps resumed from the journal the previous one left, the backing
 * device a fake that keeps its registrations (as the kernel's connection does), and the test plays
 * the kernel. The mount-level test is test/daemon/passthrough-takeover.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fopen, Op, Size } from '../../src/fuse/abi.js';
import { NodeJournal } from '../../src/fuse/node-journal.js';
import { encodeOpenIn, encodeReleaseIn } from '../../src/fuse/requests.js';
import type { BackingDevice } from '../../src/fuse/passthrough.js';
import { takeovers } from '../helpers/takeover-daemons.js';

function scratch(t: { after(fn: () => void): void }) {
  const root = mkdtempSync(join(tmpdir(), 'layerfs-ptresume-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const d of ['up', 'lo']) mkdirSync(join(root, d));
  writeFileSync(join(root, 'lo', 'f'), 'lower f\n');
  writeFileSync(join(root, 'lo', 'g'), 'lower g\n');
  return root;
}

test('journal: FMODE records follow their handle through compaction and resume, and go with its FCLOSE', (t) => {
  const root = scratch(t);
  const path = join(root, 'journal');
  const j = NodeJournal.create(path);
  j.fileOpened(5, 9, 0);
  j.fileMode(5, 7, '12:34');
  j.fileOpened(6, 9, 2);
  j.fileMode(6, 7, '12:34');
  j.fileOpened(8, 10, 0);
  j.fileMode(8, -1, '12:35');
  j.fileClosed(6);
  j.fileMode(99, 3, '1:1'); // no FOPEN: ignored
  // names handed out and dropped again: over 1 MiB of records, most of them dead
  for (let i = 0; i < 6000; i++) {
    j.named(100 + i, 1, `name-${i}-${'x'.repeat(200)}`);
    j.dropped(100 + i);
  }
  assert.ok(j.size < 6000 * 200, `compacted at least once (${j.size} bytes)`);
  j.close(false);
  const { journal, state } = NodeJournal.resume(path);
  assert.deepEqual([...state.modes], [
    [5, { backingId: 7, file: '12:34' }],
    [8, { backingId: -1, file: '12:35' }],
  ]);
  journal.fileClosed(5);
  journal.close(false);
  assert.deepEqual([...NodeJournal.resume(path).state.modes.keys()], [8], 'resumed again: the closed one is gone');
});

test('takeovers: a node held open shares the dead daemon registration; the last release closes it, even of a handle never used since', (t) => {
  let next = 1;
  const live = new Set<number>();
  const closed: number[] = [];
  const dev: BackingDevice = {
    open: () => (live.add(next), next++),
    close: (id) => (live.delete(id), closed.push(id)),
  };
  const layout = (_up: string, lo: string): void => {
    writeFileSync(join(lo, 'f'), 'lower f\n');
    writeFileSync(join(lo, 'g'), 'lower g\n');
  };
  const { start: next0 } = takeovers(t, 'ptresume', layout, undefined, { backingDevice: dev });

  const start = () => {
    const k = next0();
    const { req, out } = k;
    return {
      crash: k.crash,
      lookup: (name: string): number => k.lookup(1, name),
      /** OPEN read-only: the handle and the backing id of the reply (0: through us). */
      open(id: number): { fh: number; backing: number } {
        const b = Buffer.alloc(Size.OPEN_IN);
        encodeOpenIn(b, 0, { flags: 0, openFlags: 0 });
        const r = req(Op.OPEN, id, b);
        assert.ok(r > 0, `open ${id}: ${r}`);
        const passthrough = (out.readUInt32LE(24) & Fopen.PASSTHROUGH) !== 0;
        return { fh: Number(out.readBigUInt64LE(16)), backing: passthrough ? out.readInt32LE(28) : 0 };
      },
      release(id: number, fh: number): void {
        const b = Buffer.alloc(Size.RELEASE_IN);
        encodeReleaseIn(b, 0, fh);
        assert.equal(req(Op.RELEASE, id, b), 0);
      },
    };
  };

  const d1 = start();
  const f = d1.lookup('f');
  const g = d1.lookup('g');
  const a = d1.open(f);
  const b = d1.open(f);
  const c = d1.open(g);
  assert.equal(a.backing, 1);
  assert.equal(b.backing, 1, 'one registration per node');
  assert.equal(c.backing, 2);
  d1.crash();

  const d2 = start();
  const d = d2.open(f);
  assert.equal(d.backing, 1, 'a new open of a node held open shares the registration the dead daemon made');
  assert.equal(next, 3, 'nothing registered again');
  d2.release(f, a.fh); // never used since the takeover: still counted down
  d2.release(f, b.fh);
  assert.deepEqual(closed, [], 'd still holds it');
  d2.crash();

  const d3 = start();
  const e = d3.open(f);
  assert.equal(e.backing, 1, 'after a second crash too (the compacted journal kept the records)');
  d3.release(f, d.fh);
  d3.release(f, e.fh);
  assert.deepEqual(closed, [1], 'the last release closes it, once');
  d3.release(g, c.fh);
  assert.deepEqual(closed, [1, 2]);
  assert.equal(live.size, 0, 'no registration left');
  const h = d3.open(f);
  assert.equal(h.backing, 3, 'a node with no live open registers afresh');
  d3.release(f, h.fh);
  assert.equal(live.size, 0);
  d3.crash();
});
