/** The JIT warm-up serves read-only requests only: the branches are unchanged and it is bounded. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openUnion } from '../../src/fuse/open-union.js';
import { warmUp } from '../../src/fuse/warm-up.js';

test('warm-up serves requests, writes nothing, and stays within its time bound', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'layerfs-warm-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const d of ['lower/sub', 'upper', 'work']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'lower', 'f'), 'x');
  const opened = openUnion(`lowerdir=${join(root, 'lower')},upperdir=${join(root, 'upper')},workdir=${join(root, 'work')}`, '/');
  t.after(() => opened.close());
  const w = warmUp(opened.union, { rounds: 200, maxMs: 2000 });
  assert.ok(w.requests > 200 * 3, `requests: ${w.requests}`);
  assert.deepEqual(readdirSync(join(root, 'upper')).filter((n) => !n.startsWith('.wh..wh.layerfs')), []);
  assert.deepEqual(readdirSync(join(root, 'lower')).sort(), ['f', 'sub']);
  const bounded = warmUp(opened.union, { rounds: 1_000_000, maxMs: 50 });
  assert.ok(bounded.ms < 1000, `bounded: ${bounded.ms} ms`);
  // the union still answers normally afterwards
  const u = opened.union;
  const dh = u.opendir(u.root, { uid: 0, gid: 0 });
  assert.deepEqual(dh.entries.map((e) => e.name).filter((n) => n !== '.' && n !== '..').sort(), ['f', 'sub']);
  u.releasedir(dh);
});
