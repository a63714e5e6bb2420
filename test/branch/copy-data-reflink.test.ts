/**
 * Copy-up on a filesystem that can reflink: a loop-mounted xfs image (mkfs.xfs -m reflink=1,
 * Debian package xfsprogs; needs root and a loop device). A copy-up there shares extents
 * (uses no space); from an ext4 lower branch into the xfs rw branch the reflink is refused with
 * EXDEV once, remembered, and the data still arrives.
 * Without mkfs.xfs/root the test is skipped, but in CI (process.env.CI) it fails.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fdops } from '../../src/branch/index.js';
import { Union } from '../../src/engine/index.js';
import { mkTemp } from '../helpers/tree-spec.js';

const { copySys } = fdops;
const pristine = { ...copySys };
const MiB = 1 << 20;
const ctx = { uid: 0, gid: 0 };
const { O_WRONLY, O_APPEND, O_RDONLY } = fs.constants;

/** Cleanups run last-in first-out, all of them even when one fails (unmount before removing). */
function cleanups(t: TestContext): (fn: () => void) => void {
  const fns: (() => void)[] = [];
  t.after(() => {
    let first: unknown;
    for (const fn of fns.reverse()) {
      try {
        fn();
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  });
  return (fn) => fns.push(fn);
}

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Mount a fresh reflink-capable xfs at DIR/xfs; unmounted in cleanup. Null when impossible here. */
function xfs(t: TestContext, dir: string, defer: (fn: () => void) => void): string | null {
  const why = process.getuid?.() !== 0 ? 'not root' : !have('mkfs.xfs') ? 'mkfs.xfs missing (apt-get install xfsprogs)' : null;
  if (why) {
    if (process.env.CI) assert.fail(`reflink test cannot run in CI: ${why}`);
    t.skip(why);
    return null;
  }
  const img = `${dir}/xfs.img`;
  const mnt = `${dir}/xfs`;
  fs.closeSync(fs.openSync(img, 'w'));
  fs.truncateSync(img, 320 * MiB);
  execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', img], { stdio: 'pipe', timeout: 60_000 });
  fs.mkdirSync(mnt);
  execFileSync('mount', ['-o', 'loop', img, mnt], { stdio: 'pipe', timeout: 30_000 });
  defer(() => execFileSync('umount', [mnt], { stdio: 'pipe', timeout: 30_000 }));
  return mnt;
}

function fill(p: string, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4096) b.writeUInt32LE(i, i);
  fs.writeFileSync(p, b);
  return b;
}

function spy(defer: (fn: () => void) => void): { clones: number; ranges: number } {
  const n = { clones: 0, ranges: 0 };
  copySys.ficlone = (d, s) => {
    n.clones++;
    pristine.ficlone(d, s);
  };
  copySys.copyFileRange = (...a) => {
    n.ranges++;
    return pristine.copyFileRange(...a);
  };
  defer(() => {
    copySys.ficlone = pristine.ficlone;
    copySys.copyFileRange = pristine.copyFileRange;
  });
  return n;
}

function append(u: Union, name: string, data: string): void {
  const node = u.lookup(u.root, name);
  const size = u.getattr(node).size;
  const fh = u.open(node, O_WRONLY | O_APPEND, ctx);
  u.write(fh, Buffer.from(data), 0, data.length, size);
  u.release(fh);
}

test('copy-up on xfs with reflink shares extents: 64 MiB copied up in no new space, same content', (t) => {
  const defer = cleanups(t);
  const tmp = mkTemp('layerfs-reflink-');
  defer(() => tmp.cleanup());
  const mnt = xfs(t, tmp.dir, defer);
  if (!mnt) return;
  fs.mkdirSync(`${mnt}/up`);
  fs.mkdirSync(`${mnt}/low`);
  const data = fill(`${mnt}/low/big`, 64 * MiB);
  execFileSync('sync');
  const n = spy(defer);
  const u = new Union(`dirs=${mnt}/up=rw:${mnt}/low=ro`);
  defer(() => u.close());
  const free0 = fs.statfsSync(mnt).bfree * fs.statfsSync(mnt).bsize;
  append(u, 'big', 'Z');
  execFileSync('sync');
  const free1 = fs.statfsSync(mnt).bfree * fs.statfsSync(mnt).bsize;
  assert.equal(n.clones, 1);
  assert.equal(n.ranges, 0, 'no data copied by copy_file_range');
  assert.ok(free0 - free1 < 4 * MiB, `copy-up used ${(free0 - free1) / MiB} MiB`);
  const up = fs.readFileSync(`${mnt}/up/big`);
  assert.equal(up.length, data.length + 1);
  assert.ok(up.subarray(0, data.length).equals(data));
  assert.ok(fs.readFileSync(`${mnt}/low/big`).equals(data), 'the lower file is unchanged');
});

test('from an ext4 lower into an xfs rw branch: reflink refused once (EXDEV, remembered), data copied', (t) => {
  const defer = cleanups(t);
  const tmp = mkTemp('layerfs-reflink-');
  defer(() => tmp.cleanup());
  const mnt = xfs(t, tmp.dir, defer);
  if (!mnt) return;
  fs.mkdirSync(`${mnt}/up`);
  fs.mkdirSync(`${tmp.dir}/low`);
  const a = fill(`${tmp.dir}/low/a`, 3 * MiB + 5);
  const b = fill(`${tmp.dir}/low/b`, 2 * MiB);
  const n = spy(defer);
  const u = new Union(`dirs=${mnt}/up=rw:${tmp.dir}/low=ro`);
  defer(() => u.close());
  append(u, 'a', 'A');
  append(u, 'b', 'B');
  assert.equal(n.clones, 1, 'the second copy-up does not ask for a reflink');
  assert.ok(n.ranges <= 1, 'copy_file_range refused at most once');
  assert.deepEqual(fs.readFileSync(`${mnt}/up/a`), Buffer.concat([a, Buffer.from('A')]));
  assert.deepEqual(fs.readFileSync(`${mnt}/up/b`), Buffer.concat([b, Buffer.from('B')]));
  const fh = u.open(u.lookup(u.root, 'b'), O_RDONLY, ctx);
  const buf = Buffer.alloc(1);
  assert.equal(u.read(fh, buf, 0, 1, 2 * MiB), 1);
  assert.equal(buf.toString(), 'B');
  u.release(fh);
});
