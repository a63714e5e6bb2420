/**
 * Copy-up of file data through the engine: holes, attributes of a big file, durability (the data
 * is fsync'ed before the copy gets its real name) and failures half-way (nothing is left under
 * the real name, nothing in the work dir). Failures are injected through fdops.copySys.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { fdops } from '../../src/branch/index.js';
import { FsError } from '../../src/errors/index.js';
import { ctx, O_APPEND, O_RDONLY, O_TRUNC, O_WRONLY, setup, throwsCode, type Fixture } from './fixture.js';
import { getXattr, setXattr } from '../helpers/tree-spec.js';

const { copySys } = fdops;
const MiB = 1 << 20;
const WORK = '.wh..wh.layerfs.work';
const pristine = { ...copySys };

function inject<K extends keyof typeof copySys>(t: TestContext, key: K, fn: (typeof copySys)[K]): void {
  copySys[key] = fn;
  t.after(() => {
    copySys[key] = pristine[key];
  });
}

/** A sparse file: `size` bytes, 1 MiB of data at `at`, holes elsewhere. */
function sparse(p: string, size: number, at: number): void {
  const fd = fs.openSync(p, 'w');
  const b = Buffer.alloc(MiB);
  for (let i = 0; i < b.length; i++) b[i] = (i % 251) + 1;
  fs.writeSync(fd, b, 0, b.length, at);
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

/** Append through the union: open(O_WRONLY|O_APPEND) + write at the end + release. */
function append(f: Fixture, p: string, data: string): void {
  const node = f.node(p);
  const fh = f.u.open(node, O_WRONLY | O_APPEND, ctx);
  const size = f.u.getattr(node).size;
  const b = Buffer.from(data);
  f.u.write(fh, b, 0, b.length, size);
  f.u.release(fh);
}

function workEntries(f: Fixture): string[] {
  return fs.readdirSync(`${f.br.up}/${WORK}`);
}

test('a 1 GiB sparse lower file copies up with its holes; content, mode, owner, xattrs and ns times kept', (t) => {
  const f = setup(t, { up: {}, low: {} });
  const lowP = `${f.br.low}/big`;
  sparse(lowP, 1 << 30, 300 * MiB + 5);
  fs.chmodSync(lowP, 0o640);
  fs.chownSync(lowP, 1234, 2345);
  setXattr(lowP, 'user.color', 'blue');
  fs.utimesSync(lowP, new Date(1500000000123), new Date(1400000000456));
  const lowSha = sha(lowP); // reading may move atime (relatime): stat after it
  const before = fs.statSync(lowP, { bigint: true });

  f.u.setxattr(f.node('big'), 'user.more', Buffer.from('1'), 0); // copies up, data unchanged
  const upP = `${f.br.up}/big`;
  const st = fs.statSync(upP, { bigint: true });
  assert.equal(st.size, 1n << 30n);
  assert.ok(st.blocks * 512n <= 4n * BigInt(MiB), `copy allocates ${st.blocks} blocks`);
  assert.equal(st.mode & 0o7777n, 0o640n);
  assert.equal(st.uid, 1234n);
  assert.equal(st.gid, 2345n);
  assert.equal(st.mtimeNs, before.mtimeNs);
  assert.equal(st.atimeNs, before.atimeNs);
  assert.equal(getXattr(upP, 'user.color'), 'blue');
  assert.equal(getXattr(upP, 'user.more'), '1');
  assert.equal(sha(upP), lowSha);
  assert.deepEqual(workEntries(f), []);
});

test('the first append to a lower file copies it whole, then appends; the lower file is untouched', (t) => {
  const f = setup(t, { up: {}, low: {} });
  const data = Buffer.alloc(3 * MiB + 7);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
  fs.writeFileSync(`${f.br.low}/f`, data);
  append(f, 'f', 'END');
  assert.deepEqual(fs.readFileSync(`${f.br.up}/f`), Buffer.concat([data, Buffer.from('END')]));
  assert.deepEqual(fs.readFileSync(`${f.br.low}/f`), data);
});

test('the copy is fsync\'ed before it gets its real name (a renamed tree: syncfs); not for empty files, O_TRUNC, volatile', (t) => {
  const f = setup(t, { up: {}, low: { a: 'aaaa', e: '', tr: 'to be truncated', d: { dir: { x: 'xx', y: 'yyy', z: '' } }, e2: { dir: { empty: '', sub: { dir: {} } } } } });
  const syncs: { fd: number; size: number; visible: string[] }[] = [];
  inject(t, 'fsync', (fd) => {
    syncs.push({ fd, size: fs.fstatSync(fd).size, visible: fs.readdirSync(f.br.up!).filter((n) => !n.startsWith('.wh.')) });
    pristine.fsync(fd);
  });
  append(f, 'a', '!');
  assert.equal(syncs.length, 1);
  assert.equal(syncs[0]!.size, 4, 'the whole copy, before the append');
  assert.deepEqual(syncs[0]!.visible, [], 'not yet under its name');
  assert.equal(fs.readFileSync(`${f.br.up}/a`, 'utf8'), 'aaaa!');

  f.u.setattr(f.node('e'), { mode: 0o600 }, ctx);
  f.u.release(f.u.open(f.node('tr'), O_WRONLY | O_TRUNC, ctx));
  assert.equal(syncs.length, 1, 'nothing to lose: no fsync');

  // A directory renamed (copied whole): one syncfs before the tree gets its name, no fsync each.
  syncs.length = 0;
  const fsSyncs: string[][] = [];
  inject(t, 'syncfs', (fd) => {
    fsSyncs.push(fs.readdirSync(f.br.up!).filter((n) => !n.startsWith('.wh.')));
    pristine.syncfs(fd);
  });
  f.u.rename(f.u.root, 'd', f.u.root, 'd2', 0);
  assert.equal(syncs.length, 0);
  assert.equal(fsSyncs.length, 1);
  assert.ok(!fsSyncs[0]!.includes('d2'), 'd2 not visible at syncfs time');
  assert.equal(fs.readFileSync(`${f.br.up}/d2/y`, 'utf8'), 'yyy');
  // a tree of empty files and dirs only: nothing to sync
  f.u.rename(f.u.root, 'e2', f.u.root, 'e3', 0);
  assert.equal(fsSyncs.length, 1);

  const v = setup(t, { up: {}, low: { a: 'aaaa' } }, 'volatile');
  syncs.length = 0;
  append(v, 'a', '!');
  assert.equal(syncs.length, 0, 'volatile: no fsync');
  assert.equal(fs.readFileSync(`${v.br.up}/a`, 'utf8'), 'aaaa!');
});

test('ENOSPC half-way through a copy-up: the write fails, nothing under the real name, work dir empty; a retry works', (t) => {
  const f = setup(t, { up: { sub: { dir: {} } }, low: { sub: { dir: {} } } });
  const data = Buffer.alloc(8 * MiB, 9);
  fs.writeFileSync(`${f.br.low}/sub/big`, data);
  let calls = 0;
  inject(t, 'copyFileRange', (s, so, d, doff, len) => {
    if (calls++ === 1) throw new FsError('ENOSPC', 'copy_file_range');
    return pristine.copyFileRange(s, so, d, doff, Math.min(len, MiB));
  });
  inject(t, 'ficlone', () => {
    throw new FsError('EOPNOTSUPP', 'ioctl');
  });
  const node = f.node('sub/big');
  throwsCode(() => f.u.open(node, O_WRONLY | O_APPEND, ctx), 'ENOSPC');
  assert.ok(calls >= 2, 'the copy had started');
  assert.deepEqual(fs.readdirSync(`${f.br.up}/sub`), []);
  assert.deepEqual(workEntries(f), []);
  assert.equal(f.cat('sub/big').length, data.length, 'the merged file still reads the lower one');

  // fsync failing (EIO) is no better: nothing shows.
  copySys.copyFileRange = pristine.copyFileRange;
  inject(t, 'fsync', () => {
    throw new FsError('EIO', 'fsync');
  });
  throwsCode(() => f.u.setxattr(node, 'user.x', Buffer.from('1'), 0), 'EIO');
  assert.deepEqual(fs.readdirSync(`${f.br.up}/sub`), []);
  assert.deepEqual(workEntries(f), []);

  copySys.fsync = pristine.fsync;
  append(f, 'sub/big', 'z');
  assert.equal(fs.statSync(`${f.br.up}/sub/big`).size, data.length + 1);
  assert.deepEqual(workEntries(f), []);
  const fh = f.u.open(f.node('sub/big'), O_RDONLY, ctx);
  const b = Buffer.alloc(4);
  assert.equal(f.u.read(fh, b, 0, 4, data.length - 3), 4);
  f.u.release(fh);
  assert.deepEqual([...b], [9, 9, 9, 'z'.charCodeAt(0)]);
});
