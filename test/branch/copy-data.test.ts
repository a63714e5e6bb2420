/**
 * copyData: the data part of a copy-up. Real files in a temp dir; refusals and failures are
 * injected through the copySys seam (one syscall replaced, the rest real).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { fdops } from '../../src/branch/index.js';
import { FsError } from '../../src/errors/index.js';
import { mkTemp } from '../helpers/tree-spec.js';

const { copyData, copySys, CHUNK } = fdops;
const MiB = 1 << 20;

function tmpDir(t: TestContext): string {
  const tmp = mkTemp('layerfs-copydata-');
  t.after(() => tmp.cleanup());
  return tmp.dir;
}

const pristine = { ...copySys };

/** Replace one copySys entry for the rest of the test (the real one is put back after). */
function inject<K extends keyof typeof copySys>(t: TestContext, key: K, fn: (typeof copySys)[K]): void {
  copySys[key] = fn;
  t.after(() => {
    copySys[key] = pristine[key];
  });
}

/** A file of `size` bytes with `data` written at the given offsets, holes elsewhere. */
function sparseFile(p: string, size: number, islands: [number, number][]): void {
  const fd = fs.openSync(p, 'w');
  const pattern = Buffer.alloc(MiB + 1);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7) & 0xff || 1;
  for (const [off, len] of islands) {
    for (let at = 0; at < len; at += pattern.length) {
      fs.writeSync(fd, pattern, 0, Math.min(pattern.length, len - at), off + at);
    }
  }
  fs.ftruncateSync(fd, size);
  fs.closeSync(fd);
}

/** sha256 of a file, read in chunks (the files are big). */
function sha(p: string): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(16 * MiB);
  const fd = fs.openSync(p, 'r');
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** Copy file a to new file b with copyData; returns the method. */
function copy(a: string, b: string, opts: fdops.CopyOptions = {}): fdops.CopyMethod {
  const st = fs.statSync(a);
  const s = fs.openSync(a, 'r');
  try {
    const d = fs.openSync(b, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      return copyData(s, d, st.size, { sparse: st.blocks * 512 < st.size, ...opts });
    } finally {
      fs.closeSync(d);
    }
  } finally {
    fs.closeSync(s);
  }
}

test('a big sparse file keeps its holes and its content (data islands and a hole at the end)', (t) => {
  const dir = tmpDir(t);
  const size = 256 * MiB;
  sparseFile(`${dir}/a`, size, [
    [0, 4096],
    [100 * MiB + 123, 3 * MiB],
    [200 * MiB, 64 * 1024],
  ]);
  const method = copy(`${dir}/a`, `${dir}/b`);
  const a = fs.statSync(`${dir}/a`);
  const b = fs.statSync(`${dir}/b`);
  assert.ok(method === 'copy_file_range' || method === 'ficlone', method);
  assert.equal(b.size, size);
  assert.ok(b.blocks <= a.blocks + 64, `copy allocates ${b.blocks} blocks, source ${a.blocks}`);
  assert.ok(b.blocks * 512 < 8 * MiB, 'holes stayed holes');
  assert.equal(sha(`${dir}/b`), sha(`${dir}/a`));
});

test('a file of holes only copies as holes; an empty file copies nothing', (t) => {
  const dir = tmpDir(t);
  sparseFile(`${dir}/h`, 10 * MiB, []);
  copy(`${dir}/h`, `${dir}/h2`);
  const st = fs.statSync(`${dir}/h2`);
  assert.equal(st.size, 10 * MiB);
  assert.equal(st.blocks, 0);
  fs.writeFileSync(`${dir}/e`, '');
  assert.equal(copy(`${dir}/e`, `${dir}/e2`), 'empty');
  assert.equal(fs.statSync(`${dir}/e2`).size, 0);
});

test('copy_file_range refused (EXDEV): read/write copies it all, and the refusal is remembered', (t) => {
  const dir = tmpDir(t);
  const data = Buffer.alloc(3 * MiB + 17);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  fs.writeFileSync(`${dir}/a`, data);
  let calls = 0;
  inject(t, 'copyFileRange', () => {
    calls++;
    throw new FsError('EXDEV', 'copy_file_range');
  });
  inject(t, 'ficlone', () => {
    throw new FsError('EOPNOTSUPP', 'ioctl');
  });
  const caps: fdops.CopyCaps = {};
  assert.equal(copy(`${dir}/a`, `${dir}/b`, { caps }), 'readwrite');
  assert.deepEqual(fs.readFileSync(`${dir}/b`), data);
  assert.deepEqual(caps, { noClone: true, noCopyRange: true });
  assert.equal(copy(`${dir}/a`, `${dir}/c`, { caps }), 'readwrite');
  assert.equal(calls, 1, 'not asked again');
  assert.deepEqual(fs.readFileSync(`${dir}/c`), data);
});

test('copy_file_range refused with EINVAL: falls back for this file only; holes kept by read/write too', (t) => {
  const dir = tmpDir(t);
  sparseFile(`${dir}/a`, 64 * MiB, [
    [MiB, 2 * MiB],
    [40 * MiB, 5000],
  ]);
  inject(t, 'copyFileRange', () => {
    throw new FsError('EINVAL', 'copy_file_range');
  });
  const caps: fdops.CopyCaps = {};
  assert.equal(copy(`${dir}/a`, `${dir}/b`, { caps }), 'readwrite');
  assert.equal(caps.noCopyRange, undefined, 'EINVAL is not remembered');
  assert.equal(sha(`${dir}/b`), sha(`${dir}/a`));
  const st = fs.statSync(`${dir}/b`);
  assert.equal(st.size, 64 * MiB);
  assert.ok(st.blocks * 512 < 4 * MiB, `blocks ${st.blocks}`);
});

test('a refused reflink is asked once per caps (ext4 here; a clone when the filesystem can)', (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(`${dir}/a`, 'hello');
  let clones = 0;
  const real = copySys.ficlone;
  inject(t, 'ficlone', (d, s) => {
    clones++;
    real(d, s);
  });
  const caps: fdops.CopyCaps = {};
  const m1 = copy(`${dir}/a`, `${dir}/b`, { caps });
  const m2 = copy(`${dir}/a`, `${dir}/c`, { caps });
  assert.equal(fs.readFileSync(`${dir}/c`, 'utf8'), 'hello');
  if (m1 === 'ficlone') {
    assert.equal(m2, 'ficlone');
    assert.equal(clones, 2);
  } else {
    assert.equal(caps.noClone, true);
    assert.equal(clones, 1);
    assert.equal(m2, 'copy_file_range');
  }
});

test('ENOSPC half-way through is thrown (not taken for a refusal)', (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(`${dir}/a`, Buffer.alloc(3 * MiB, 1));
  const real = copySys.copyFileRange;
  let n = 0;
  inject(t, 'copyFileRange', (s, so, d, doff, len) => {
    if (n++ > 0) throw new FsError('ENOSPC', 'copy_file_range');
    return real(s, so, d, doff, Math.min(len, MiB)); // a short count first
  });
  assert.throws(() => copy(`${dir}/a`, `${dir}/b`), { code: 'ENOSPC' });
  // the same in the read/write path
  inject(t, 'copyFileRange', () => {
    throw new FsError('ENOSYS', 'copy_file_range');
  });
  inject(t, 'write', () => {
    throw new FsError('ENOSPC', 'write');
  });
  assert.throws(() => copy(`${dir}/a`, `${dir}/c`), { code: 'ENOSPC' });
});

test('short copy_file_range counts are continued; with writeback each chunk is handed to writeback', (t) => {
  const dir = tmpDir(t);
  const size = 2 * CHUNK + 12345;
  sparseFile(`${dir}/a`, size, [[0, size]]);
  const real = copySys.copyFileRange;
  inject(t, 'copyFileRange', (s, so, d, doff, len) => real(s, so, d, doff, Math.min(len, 5 * MiB + 1)));
  const kicks: [number, number][] = [];
  const realSfr = copySys.syncFileRange;
  inject(t, 'syncFileRange', (fd, off, n, flags) => {
    kicks.push([off, n]);
    realSfr(fd, off, n, flags);
  });
  inject(t, 'ficlone', () => {
    throw new FsError('EOPNOTSUPP', 'ioctl');
  });
  assert.equal(copy(`${dir}/a`, `${dir}/b`, { writeback: true }), 'copy_file_range');
  assert.equal(sha(`${dir}/b`), sha(`${dir}/a`));
  assert.ok(kicks.length >= 1, `kicks ${JSON.stringify(kicks)}`);
  let at = 0;
  for (const [off, n] of kicks) {
    assert.equal(off, at, 'kicks are contiguous');
    assert.ok(n >= CHUNK);
    at = off + n;
  }
  assert.ok(at > size - CHUNK, 'less than a chunk is left for the fsync');
  // without writeback: none
  kicks.length = 0;
  copy(`${dir}/a`, `${dir}/c`);
  assert.equal(kicks.length, 0);
  // a sparse file with little data: holes are not counted as copied bytes
  sparseFile(`${dir}/s`, 3 * CHUNK, [[2 * CHUNK, MiB]]);
  copy(`${dir}/s`, `${dir}/s2`, { writeback: true });
  assert.equal(kicks.length, 0);
  assert.equal(sha(`${dir}/s2`), sha(`${dir}/s`));
});

test('the writeback syscalls: syncFileRange and syncfs work on a file, EBADF on a closed fd', (t) => {
  const dir = tmpDir(t);
  const fd = fs.openSync(`${dir}/a`, 'w');
  fs.writeSync(fd, Buffer.alloc(MiB, 3));
  copySys.syncFileRange(fd, 0, MiB, 2);
  copySys.syncfs(fd);
  fs.closeSync(fd);
  assert.throws(() => copySys.syncFileRange(fd, 0, MiB, 2), { code: 'EBADF', syscall: 'sync_file_range' });
  assert.throws(() => copySys.syncfs(fd), { code: 'EBADF', syscall: 'syncfs' });
});
