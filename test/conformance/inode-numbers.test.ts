/**
 * Inode numbers through a real mount (issue 12 §5), checked on kernel overlayfs (the oracle: the
 * test's own check) and layerfs alike. All layers on one filesystem: a file reports the real st_ino
 * of the layer file it comes from (below 2^32 where the filesystem's are: no EOVERFLOW for 32-bit
 * programs), keeps it across copy-up and across unmount + mount; a merged directory reports its
 * topmost lower directory's; `ls -i` agrees with stat. A layer on a second filesystem (a tmpfs)
 * gets high bits (layerfs: its filesystem slot * 2^44 + st_ino). chown(-1, -1) copies up and
 * updates ctime.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, fchownSync, chownSync, lstatSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hardUnmount, mountUnion, parseKind, requireMount, sleepMs, type Mounted, type UnionKind, type UnionLayers } from '../helpers/overlay.js';

const targets: UnionKind[] = (process.env.LAYERFS_POSIX_TARGETS ?? 'overlay,layerfs')
  .split(',')
  .map((s) => parseKind(s.trim(), 'layerfs'));

function tmpfs(at: string): void {
  mkdirSync(at);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0755', 'layerfs-test', at], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount tmpfs at ${at}: ${r.stderr}`);
}

/** name -> d_ino as `ls -i` reads it (getdents). */
function lsInodes(dir: string): Map<string, number> {
  const r = spawnSync('ls', ['-1ai', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*(\d+) (.*)$/.exec(line);
    if (m) out.set(m[2]!, Number(m[1]));
  }
  return out;
}

function layout(base: string): UnionLayers {
  const l0 = join(base, 'l0');
  const l1 = join(base, 'l1');
  const up = join(base, 'upper');
  for (const d of [l0, l1, up, join(base, 'work'), join(base, 'mnt')]) mkdirSync(d, { recursive: true });
  writeFileSync(join(l0, 'a'), 'a\n');
  writeFileSync(join(l1, 'b'), 'b\n');
  writeFileSync(join(l1, 'c'), 'c\n');
  mkdirSync(join(l0, 'd'));
  mkdirSync(join(l1, 'd'));
  writeFileSync(join(l1, 'd', 'x'), 'x\n');
  mkdirSync(join(up, 'e')); // an upper dir that merges a lower one from the start
  mkdirSync(join(l1, 'e'));
  writeFileSync(join(up, 'u'), 'u\n');
  return { lowers: [l0, l1], upper: up, work: join(base, 'work') };
}

for (const kind of targets) {
  test(`${kind}: all layers on one filesystem: real st_ino, kept across copy-up and remount, below 2^32`, (t) => {
    if (!requireMount(t, kind)) return;
    const base = mkdtempSync(join(tmpdir(), `layerfs-inonum-${kind}-`));
    const mnt = join(base, 'mnt');
    let m: Mounted | undefined;
    try {
      const l = layout(base);
      const [l0, l1] = l.lowers as [string, string];
      const real = (p: string): number => lstatSync(p).ino;
      const want: Record<string, number> = {
        a: real(join(l0, 'a')),
        b: real(join(l1, 'b')),
        c: real(join(l1, 'c')),
        d: real(join(l0, 'd')),
        'd/x': real(join(l1, 'd', 'x')),
        e: real(join(l1, 'e')),
        u: real(join(l.upper, 'u')),
      };
      m = mountUnion(kind, l, mnt);
      const seen = (): Record<string, number> => Object.fromEntries(Object.keys(want).map((p) => [p, lstatSync(join(mnt, p)).ino]));
      assert.deepEqual(seen(), want, 'stat through the mount = the layer file\'s st_ino');
      for (const v of Object.values(want)) assert.ok(v < 2 ** 32);
      const listed = lsInodes(mnt);
      for (const p of ['a', 'b', 'c', 'd', 'e', 'u']) assert.equal(listed.get(p), want[p], `ls -i ${p}`);
      // copy-up keeps the number
      appendFileSync(join(mnt, 'a'), 'more\n');
      writeFileSync(join(mnt, 'd', 'x'), 'new\n');
      assert.ok(existsSync(join(l.upper, 'a')) && existsSync(join(l.upper, 'd', 'x')), 'copied up');
      assert.notEqual(real(join(l.upper, 'a')), want.a);
      assert.deepEqual(seen(), want, 'after copy-up');
      // a new file: its real number
      writeFileSync(join(mnt, 'n'), 'n\n');
      want.n = real(join(l.upper, 'n'));
      assert.equal(lstatSync(join(mnt, 'n')).ino, want.n);
      m.unmount();
      m = mountUnion(kind, l, mnt);
      assert.deepEqual(seen(), want, 'after unmount + mount');
      const listed2 = lsInodes(mnt);
      for (const p of ['a', 'b', 'd', 'e', 'n']) assert.equal(listed2.get(p), want[p], `ls -i ${p} after remount`);
    } finally {
      try {
        m?.unmount();
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    }
  });

  test(`${kind}: chown(-1, -1) and fchown(-1, -1) copy a lower file up and update ctime`, (t) => {
    if (!requireMount(t, kind)) return;
    const base = mkdtempSync(join(tmpdir(), `layerfs-chown-${kind}-`));
    const mnt = join(base, 'mnt');
    let m: Mounted | undefined;
    try {
      const l = layout(base);
      m = mountUnion(kind, l, mnt);
      const ctime = (p: string): bigint => lstatSync(join(mnt, p), { bigint: true }).ctimeNs;
      const before = { b: ctime('b'), c: ctime('c'), u: ctime('u') };
      const ino = lstatSync(join(mnt, 'b')).ino;
      sleepMs(30);
      chownSync(join(mnt, 'b'), -1, -1);
      chownSync(join(mnt, 'u'), -1, -1);
      const fd = openSync(join(mnt, 'c'), 'r');
      try {
        fchownSync(fd, -1, -1);
      } finally {
        closeSync(fd);
      }
      for (const p of ['b', 'c', 'u'] as const) assert.ok(ctime(p) > before[p], `${p}: ctime moved`);
      assert.ok(existsSync(join(l.upper, 'b')) && existsSync(join(l.upper, 'c')), 'copied up');
      assert.equal(lstatSync(join(mnt, 'b')).ino, ino);
    } finally {
      try {
        m?.unmount();
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    }
  });
}

test('layerfs: a layer on a second filesystem gets slot 1: 2^44 + st_ino, kept across copy-up and remount', (t) => {
  if (!requireMount(t, 'layerfs')) return;
  const base = mkdtempSync(join(tmpdir(), 'layerfs-inonum-2fs-'));
  const mnt = join(base, 'mnt');
  let m: Mounted | undefined;
  let mounted = false;
  try {
    const l = layout(base);
    const other = join(base, 'other');
    tmpfs(other);
    mounted = true;
    writeFileSync(join(other, 't'), 't\n');
    mkdirSync(join(other, 'd'));
    writeFileSync(join(other, 'd', 'y'), 'y\n');
    const l0 = l.lowers[0]!;
    const layers: UnionLayers = { ...l, lowers: [l0, other, l.lowers[1]!] };
    const want: Record<string, number> = {
      a: lstatSync(join(l0, 'a')).ino, // the upper's filesystem: real
      b: lstatSync(join(layers.lowers[2]!, 'b')).ino, // same, below the tmpfs layer
      t: 2 ** 44 + lstatSync(join(other, 't')).ino,
      'd/y': 2 ** 44 + lstatSync(join(other, 'd', 'y')).ino,
    };
    m = mountUnion('layerfs', layers, mnt);
    const seen = (): Record<string, number> => Object.fromEntries(Object.keys(want).map((p) => [p, lstatSync(join(mnt, p)).ino]));
    assert.deepEqual(seen(), want);
    appendFileSync(join(mnt, 't'), 'more\n');
    assert.deepEqual(seen(), want, 'after copy-up');
    m.unmount();
    m = mountUnion('layerfs', layers, mnt);
    assert.deepEqual(seen(), want, 'after unmount + mount');
  } finally {
    try {
      m?.unmount();
    } finally {
      if (mounted) hardUnmount(join(base, 'other'));
      rmSync(base, { recursive: true, force: true });
    }
  }
});
