/**
 * extractLayer's steps beyond the hostile-archive cases of malicious.test.ts: fifos and devices are
 * made by the addon's mknod (no mknod/mkfifo program is run), the depth and entry-count limits,
 * PAX times kept to the nanosecond, directory times set after their children.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decompressed } from '../../src/store/compression.js';
import { extractLayer } from '../../src/store/tar-import.js';
import { makeTar, once, tempDir } from './helpers.js';

async function extract(t: { after(fn: () => void): void }, entries: Parameters<typeof makeTar>[0], opts: Parameters<typeof extractLayer>[2] = {}): Promise<string> {
  const dest = tempDir();
  t.after(() => fs.rmSync(dest, { recursive: true, force: true }));
  await extractLayer((await decompressed(once(await makeTar(entries)))).stream, dest, opts);
  return dest;
}

test('fifos and device nodes are made without running mknod or mkfifo (PATH has neither)', async (t) => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  const entries: Parameters<typeof makeTar>[0] = [
    { name: 'fifo', type: 'fifo', mode: 0o640 },
    ...(process.getuid?.() === 0
      ? [
          { name: 'null', type: 'character-device' as const, devmajor: 1, devminor: 3, mode: 0o666 },
          { name: 'loop', type: 'block-device' as const, devmajor: 7, devminor: 300, mode: 0o660 },
        ]
      : []),
  ];
  let dest: string;
  try {
    dest = await extract(t, entries);
  } finally {
    process.env.PATH = saved;
  }
  const fifo = fs.lstatSync(path.join(dest, 'fifo'));
  assert.ok(fifo.isFIFO());
  assert.equal(fifo.mode & 0o7777, 0o640);
  if (process.getuid?.() === 0) {
    const nul = fs.lstatSync(path.join(dest, 'null'));
    assert.ok(nul.isCharacterDevice());
    assert.equal(nul.rdev, fs.statSync('/dev/null').rdev);
    assert.equal(nul.mode & 0o7777, 0o666);
    const loop = fs.lstatSync(path.join(dest, 'loop'));
    assert.ok(loop.isBlockDevice());
    // major 7, minor 300 (glibc encoding: minor's high bits above bit 20)
    assert.equal(loop.rdev, (7 << 8) | (300 & 0xff) | ((300 & ~0xff) << 12));
  }
});

test('names deeper than the depth limit and archives with more entries than the limit are refused', async (t) => {
  const deep = Array.from({ length: 6 }, (_, i) => `d${i}`).join('/');
  await assert.rejects(extract(t, [{ name: `${deep}/f`, body: 'x' }], { limits: { maxDepth: 5 } }), { code: 'ENAMETOOLONG' });
  await extract(t, [{ name: `${deep}/f`, body: 'x' }], { limits: { maxDepth: 7 } });
  const many = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, body: '' }));
  await assert.rejects(extract(t, many, { limits: { maxEntries: 10 } }), { code: 'EFBIG' });
});

test('PAX times are kept to the nanosecond; directories get their times after their children', async (t) => {
  const dest = await extract(t, [
    { name: 'dir/', type: 'directory', pax: { mtime: '1600000000.123456789', atime: '1600000001.5' } },
    { name: 'dir/f', body: 'x', pax: { mtime: '1500000000.000000007' } },
    { name: 'dir/sub/', type: 'directory', mtime: new Date(1_400_000_000_000) },
    { name: 'dir/sub/g', body: 'y' },
  ]);
  const d = fs.lstatSync(path.join(dest, 'dir'), { bigint: true });
  assert.equal(d.mtimeNs, 1_600_000_000_123_456_789n);
  assert.equal(d.atimeNs, 1_600_000_001_500_000_000n);
  assert.equal(fs.lstatSync(path.join(dest, 'dir/f'), { bigint: true }).mtimeNs, 1_500_000_000_000_000_007n);
  assert.equal(fs.lstatSync(path.join(dest, 'dir/sub')).mtimeMs, 1_400_000_000_000);
});

test('a hard link may name a symlink of this archive (the link is the symlink, not its target)', async (t) => {
  const dest = await extract(t, [
    { name: 'esc', type: 'symlink', linkname: '/etc/passwd' },
    { name: 'h', type: 'link', linkname: 'esc' },
  ]);
  assert.ok(fs.lstatSync(path.join(dest, 'h')).isSymbolicLink());
  assert.equal(fs.readlinkSync(path.join(dest, 'h')), '/etc/passwd');
});
