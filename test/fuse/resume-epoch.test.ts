/**
 * A daemon taking a mount over from one that died inside a live branch change (the supervisor's
 * blob marked `changing`: daemon/supervised-remount.ts) tells the kernel to look every cached name
 * up again (FUSE_NOTIFY_INC_EPOCH) along with FUSE_NOTIFY_RESEND; after a plain crash, RESEND only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotifyCode } from '../../src/fuse/abi.js';
import type { InitOut } from '../../src/fuse/codec.js';
import { NodeJournal } from '../../src/fuse/node-journal.js';
import { superviseServing } from '../../src/fuse/supervise-serve.js';

function notices(changing: boolean): number[] {
  const dir = mkdtempSync(join(tmpdir(), 'layerfs-epoch-'));
  try {
    const journal = join(dir, 'm.journal');
    NodeJournal.create(journal).close(false);
    const ops = { journal: null, resume: () => {}, dispatch: () => 0, settle: () => {} };
    const buf = Buffer.alloc(64);
    const codes: number[] = [];
    const sv = superviseServing(ops, { journal, resume: { init: { minor: 45 } as InitOut, ...(changing ? { changing: true } : {}) } }, () => codes.push(buf.readInt32LE(4)), buf);
    sv.resend();
    sv.close(true);
    return codes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('resumed mid-change: INC_EPOCH, then RESEND; a plain resume: RESEND only', () => {
  assert.deepEqual(notices(true), [NotifyCode.INC_EPOCH, NotifyCode.RESEND]);
  assert.deepEqual(notices(false), [NotifyCode.RESEND]);
});
