/**
 * FUSE passthrough: reads and writes of regular files go from the kernel straight to the branch
 * file (no READ/WRITE request reaches the daemon), one backing registration per node id, and the
 * copy-up case a union adds (a lower file held open read-only while another open writes it).
 * Unit tests of the bookkeeping first (no mount), then real mounts traced with `-f -d`.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Passthrough, type BackingDevice } from '../../src/fuse/passthrough.js';
import { NodeTable } from '../../src/fuse/node-table.js';
import { FsError } from '../../src/errors/index.js';
import { CLI_MAIN, cli, forceUnmount, isMounted, ok, requireFuse, sh, waitFor } from '../helpers/mount.js';

function fakeDevice(fail?: string): BackingDevice & { opened: number[]; closed: number[] } {
  let next = 1;
  const dev = {
    opened: [] as number[],
    closed: [] as number[],
    open(_fd: number): number {
      if (fail) throw new FsError(fail, 'ioctl');
      dev.opened.push(next);
      return next++;
    },
    close(id: number): void {
      dev.closed.push(id);
    },
  };
  return dev;
}

function scratchFiles(t: TestContext): { a: number; b: number } {
  const dir = mkdtempSync(join(tmpdir(), 'layerfs-pt-unit-'));
  writeFileSync(join(dir, 'a'), 'a');
  writeFileSync(join(dir, 'b'), 'b');
  const a = openSync(join(dir, 'a'), 'r');
  const b = openSync(join(dir, 'b'), 'r');
  t.after(() => {
    closeSync(a);
    closeSync(b);
    rmSync(dir, { recursive: true, force: true });
  });
  return { a, b };
}

test('opens of one node id share one backing registration, closed with the last release', (t) => {
  const { a, b } = scratchFiles(t);
  const dev = fakeDevice();
  const pt = new Passthrough(dev);
  assert.deepEqual(pt.open(7, a), { passthrough: true, backingId: 1 });
  assert.deepEqual(pt.open(7, a), { passthrough: true, backingId: 1 }, 'same file, same id');
  assert.equal(pt.open(7, b), 'conflict', 'another file behind the same node id');
  assert.deepEqual(pt.open(8, b), { passthrough: true, backingId: 2 });
  pt.release(7);
  assert.deepEqual(dev.closed, []);
  pt.release(7);
  assert.deepEqual(dev.closed, [1], 'closed when the last open of node 7 is released');
  assert.deepEqual(pt.open(7, b), { passthrough: true, backingId: 3 }, 'a released node id may serve another file');
  pt.release(7);
  pt.release(8);
  assert.equal(pt.liveNodes, 0);
});

test('a kernel that refuses passthrough: every open is served by the daemon', (t) => {
  const { a, b } = scratchFiles(t);
  const pt = new Passthrough(fakeDevice('EPERM'));
  assert.deepEqual(pt.open(3, a), { passthrough: false });
  assert.deepEqual(pt.open(4, b), { passthrough: false });
  assert.deepEqual(pt.open(3, b), { passthrough: false }, 'cached opens never conflict');
  assert.equal(pt.counts.fallbacks, 1, 'tried once, then not again');
});

test('a backing file on a stacked filesystem (ELOOP) is served by the daemon, others still pass through', (t) => {
  const { a, b } = scratchFiles(t);
  let calls = 0;
  const pt = new Passthrough({
    open: () => {
      calls++;
      if (calls === 1) throw new FsError('ELOOP', 'ioctl');
      return 5;
    },
    close: () => {},
  });
  assert.deepEqual(pt.open(3, a), { passthrough: false });
  assert.deepEqual(pt.open(4, b), { passthrough: true, backingId: 5 });
});

test('a retired node id keeps working until forgotten; the node gets a new id; forget once all are gone', () => {
  const root = { ino: 1 };
  const n = { ino: 42 };
  const forgotten: object[] = [];
  const table = new NodeTable<{ ino: number }>(root, (x) => forgotten.push(x));
  const id1 = table.add(n);
  assert.equal(table.retire(id1), true);
  assert.equal(table.retire(id1), false, 'already retired');
  assert.equal(table.get(id1), n, 'the old id still resolves');
  const id2 = table.add(n);
  assert.notEqual(id2, id1);
  assert.deepEqual(table.idsFor(n), [id2, id1]);
  assert.deepEqual(table.sameIno(id2), [id1], 'both ids refresh each other (same inode number)');
  table.forget(id2, 1);
  assert.deepEqual(forgotten, [], 'the retired id is still held');
  table.forget(id1, 1);
  assert.deepEqual(forgotten, [n]);
  assert.equal(table.retire(1), false, 'the root is never retired');
});

interface Traced {
  root: string;
  mnt: string;
  lo: string;
  rw: string;
  trace(): string;
  stop(): Promise<void>;
}

async function tracedMount(t: TestContext, tag: string, extra = ''): Promise<Traced> {
  const root = realpathSync(mkdtempSync(join(tmpdir(), `layerfs-pt-${tag}-`)));
  const lo = join(root, 'lo');
  const rw = join(root, 'rw');
  const mnt = join(root, 'mnt');
  for (const d of [lo, rw, mnt]) mkdirSync(d);
  writeFileSync(join(lo, 'big'), Buffer.alloc(4 << 20, 7));
  writeFileSync(join(lo, 'log.txt'), 'line 1\n');
  writeFileSync(join(lo, 'linked'), 'linked\n');
  const env = { ...process.env, LAYERFS_RUN_DIR: join(root, 'run') };
  const child = spawn(process.execPath, [CLI_MAIN, 'mount', '-f', '-d', '-o', `dirs=${rw}=rw:${lo}=ro${extra}`, mnt], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const stop = async (): Promise<void> => {
    forceUnmount(mnt);
    if (child.exitCode === null && child.signalCode === null) {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  t.after(async () => {
    await stop();
    rmSync(root, { recursive: true, force: true });
  });
  assert.ok(await waitFor(() => isMounted(mnt), 15_000), `mounted; stderr: ${stderr}`);
  return { root, mnt, lo, rw, trace: () => stderr, stop };
}

const requests = (trace: string, op: string): number => trace.split('\n').filter((l) => l.startsWith(`layerfs: ${op} nodeid=`)).length;

test('reads and writes of regular files never reach the daemon; passthrough=off serves them', async (t) => {
  if (!requireFuse(t)) return;
  for (const extra of ['', ',passthrough=off']) {
    const m = await tracedMount(t, extra ? 'off' : 'on', extra);
    const inMnt = (cmd: string): string => ok(sh(`set -e; ${cmd}`, { cwd: m.mnt }), cmd);
    assert.equal(readFileSync(join(m.mnt, 'big')).equals(Buffer.alloc(4 << 20, 7)), true, 'lower file read');
    inMnt('head -c 3000000 /dev/zero | tr "\\0" x > new.bin && echo tail >> log.txt');
    assert.equal(statSync(join(m.rw, 'new.bin')).size, 3_000_000, 'new file written to the rw branch');
    assert.equal(readFileSync(join(m.rw, 'log.txt'), 'utf8'), 'line 1\ntail\n', 'copied up, then appended');
    assert.equal(readFileSync(join(m.lo, 'log.txt'), 'utf8'), 'line 1\n', 'lower branch untouched');
    assert.equal(readFileSync(join(m.mnt, 'new.bin'), 'latin1'), 'x'.repeat(3_000_000));
    await m.stop();
    const trace = m.trace();
    if (extra === '') {
      assert.match(trace, /flags=.*PASSTHROUGH/, 'negotiated at INIT');
      assert.equal(requests(trace, 'READ'), 0, 'no READ request with passthrough');
      assert.equal(requests(trace, 'WRITE'), 0, 'no WRITE request with passthrough');
    } else {
      assert.doesNotMatch(trace, /flags=.*PASSTHROUGH/);
      assert.ok(requests(trace, 'READ') > 0, 'READ requests without passthrough');
      assert.ok(requests(trace, 'WRITE') > 0, 'WRITE requests without passthrough');
    }
    assert.ok(requests(trace, 'OPEN') > 0);
  }
});

test('a lower file held open read-only while another open appends to it', async (t) => {
  if (!requireFuse(t)) return;
  const m = await tracedMount(t, 'held');
  const inMnt = (cmd: string): string => ok(sh(`set -e; ${cmd}`, { cwd: m.mnt }), cmd);
  // fd 3 passes through to the lower file; the append copies the file up and must not fail
  const out = inMnt('exec 3< log.txt; echo two >> log.txt; echo three >> log.txt; cat <&3; echo ---; cat log.txt; exec 3<&-');
  assert.match(out, /^line 1\n/, 'the read-only fd still reads');
  assert.match(out, /---\nline 1\ntwo\nthree\n$/, 'the path shows both appends');
  assert.equal(statSync(join(m.mnt, 'log.txt')).size, 'line 1\ntwo\nthree\n'.length);
  assert.equal(readFileSync(join(m.lo, 'log.txt'), 'utf8'), 'line 1\n', 'lower branch untouched');
  // a read-write open of a file held open for reading, and a truncating one
  inMnt('exec 4< big; exec 5<> big; printf abc >&5; exec 5>&-; exec 4<&-');
  assert.equal(readFileSync(join(m.mnt, 'big')).subarray(0, 4).toString('latin1'), 'abc\x07');
  inMnt('exec 6< linked; : > linked; exec 6<&-');
  assert.equal(statSync(join(m.mnt, 'linked')).size, 0);
  await m.stop();
  assert.match(m.trace(), /OPEN nodeid=\d+ .* -> ESTALE/, 'the conflicting open was sent back through the VFS');
});

test('a hard link sees the size written through its other name', async (t) => {
  if (!requireFuse(t)) return;
  const m = await tracedMount(t, 'link');
  linkSync(join(m.mnt, 'linked'), join(m.mnt, 'second'));
  assert.equal(statSync(join(m.mnt, 'second')).size, 'linked\n'.length);
  ok(sh('echo more >> linked', { cwd: m.mnt }), 'append');
  assert.equal(statSync(join(m.mnt, 'second')).size, 'linked\nmore\n'.length);
  assert.equal(readFileSync(join(m.mnt, 'second'), 'utf8'), 'linked\nmore\n');
});

test('passthrough= takes on or off', (t) => {
  if (!requireFuse(t)) return;
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-pt-opt-')));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'a'));
  mkdirSync(join(root, 'mnt'));
  const r = cli(['mount', '-o', `dirs=${root}/a=rw,passthrough=maybe`, join(root, 'mnt')], { env: { ...process.env, LAYERFS_RUN_DIR: join(root, 'run') } });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr.trim(), /^layerfs: .*passthrough must be 'on' or 'off', got 'maybe'$/);
  assert.equal(isMounted(join(root, 'mnt')), false);
});
