/**
 * The kernel keeps directory listings (FOPEN_CACHE_DIR + KEEP_CACHE) and entries/attributes for
 * the cache timeouts. Whatever is changed through the mount must show at once in the next listing
 * or stat, even right after the same directory was listed (listing served from the kernel's cache).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ok, requireFuse, sh, suiteMount } from '../helpers/mount.js';

describe('listings and attributes after changes through the mount', () => {
  const s = suiteMount('layerfs-kcache-', (lo) => {
    for (const d of ['d1', 'd2', 'd3', 'd4']) {
      mkdirSync(join(lo, d));
      for (const f of ['a', 'b', 'c']) writeFileSync(join(lo, d, f), `${d}/${f}\n`);
    }
  });

  const ls = (d: string): string[] => readdirSync(join(s.mnt, d)).sort();
  const inMnt = (cmd: string): string => ok(sh(`set -e; ${cmd}`, { cwd: s.mnt }), cmd);

  test('create, unlink, link and rename show in the next listing', (t) => {
    if (!requireFuse(t)) return;
    assert.deepEqual(ls('d1'), ['a', 'b', 'c']);
    assert.deepEqual(ls('d1'), ['a', 'b', 'c'], 'second listing (from the kernel cache)');
    inMnt('touch d1/new');
    assert.deepEqual(ls('d1'), ['a', 'b', 'c', 'new']);
    inMnt('rm d1/a');
    assert.deepEqual(ls('d1'), ['b', 'c', 'new']);
    inMnt('ln d1/b d1/b2');
    assert.deepEqual(ls('d1'), ['b', 'b2', 'c', 'new']);
    inMnt('mv d1/c d1/c2');
    assert.deepEqual(ls('d1'), ['b', 'b2', 'c2', 'new']);
    inMnt('echo more >> d1/b');
    assert.deepEqual(ls('d1'), ['b', 'b2', 'c2', 'new'], 'copy-up changes no name');
    assert.equal(statSync(join(s.mnt, 'd1', 'b2')).size, 'd1/b\nmore\n'.length, 'the other name of the hard link');
  });

  test('a lower directory removed and made again lists empty', (t) => {
    if (!requireFuse(t)) return;
    assert.deepEqual(ls('d2'), ['a', 'b', 'c']);
    inMnt('rm -r d2 && mkdir d2');
    assert.deepEqual(ls('d2'), [], 'opaque: nothing of the lower d2');
    inMnt('touch d2/x');
    assert.deepEqual(ls('d2'), ['x']);
  });

  test('a renamed lower directory lists its content under the new name only', (t) => {
    if (!requireFuse(t)) return;
    assert.deepEqual(ls('d3'), ['a', 'b', 'c']);
    assert.deepEqual(ls('.'), ['d1', 'd2', 'd3', 'd4']);
    inMnt('mv d3 moved');
    assert.deepEqual(ls('.'), ['d1', 'd2', 'd4', 'moved']);
    assert.deepEqual(ls('moved'), ['a', 'b', 'c']);
    assert.throws(() => readdirSync(join(s.mnt, 'd3')), { code: 'ENOENT' });
    inMnt('mkdir d3');
    assert.deepEqual(ls('d3'), [], 'a new d3 is empty, not the old listing');
  });

  test('a directory held open while its entries change', (t) => {
    if (!requireFuse(t)) return;
    const out = inMnt('exec 3< d4; ls d4 | tr "\\n" " "; echo; touch d4/z; rm d4/a; ls d4 | tr "\\n" " "; exec 3<&-');
    assert.equal(out, 'a b c \nb c z ');
  });
});
