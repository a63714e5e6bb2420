/**
 * The /dev/fuse I/O helpers of the native addon, on a FIFO (same non-blocking read semantics):
 * readSpin returns data that is already there, waits in poll(2) for data that comes later
 * without burning CPU, and answers errors as negative errno numbers; writeRaw likewise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { errnoOf } from '../../src/errors/index.js';
import * as sys from '../../src/sys/index.js';

const S_IFIFO = 0o010000;
const O_NONBLOCK = 0o4000;

function fifo(t: { after(fn: () => void): void }): { p: string; rd: number; wr: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-spin-'));
  const p = path.join(dir, 'fifo');
  sys.mknod(p, S_IFIFO | 0o600, 0);
  const rd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const wr = fs.openSync(p, fs.constants.O_WRONLY);
  t.after(() => {
    for (const fd of [rd, wr]) {
      try {
        fs.closeSync(fd);
      } catch {
        /* closed by the test */
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { p, rd, wr };
}

function fdFlags(fd: number): number {
  const line = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').find((l) => l.startsWith('flags:'));
  assert.ok(line, 'fdinfo has flags');
  return parseInt(line.split(/\s+/)[1]!, 8);
}

test('setNonBlocking sets and clears O_NONBLOCK', (t) => {
  const { rd, wr } = fifo(t);
  sys.setNonBlocking(wr, true);
  assert.ok(fdFlags(wr) & O_NONBLOCK);
  sys.setNonBlocking(wr, false);
  assert.equal(fdFlags(wr) & O_NONBLOCK, 0);
  assert.ok(fdFlags(rd) & O_NONBLOCK, 'the read end was opened non-blocking');
  assert.throws(() => sys.setNonBlocking(987654, true), { code: 'EBADF', syscall: 'fcntl' });
});

test('readSpin returns what is there at once; writeRaw writes exactly the bytes asked', (t) => {
  const { rd, wr } = fifo(t);
  assert.equal(sys.writeRaw(wr, Buffer.from('hello world'), 5), 5);
  const buf = Buffer.alloc(64);
  assert.equal(sys.readSpin(rd, buf, 50), 5);
  assert.equal(buf.subarray(0, 5).toString(), 'hello');
  assert.throws(() => sys.writeRaw(wr, Buffer.alloc(2), 3), TypeError, 'length beyond the buffer');
});

test('readSpin sleeps in poll(2) for data that comes later, without spinning the CPU all along', async (t) => {
  const { p, rd } = fifo(t);
  // A separate process writes after 300 ms; readSpin blocks this thread until then.
  const child = spawn('sh', ['-c', `sleep 0.3; printf later > '${p}'`], { stdio: 'ignore' });
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const buf = Buffer.alloc(64);
  const n = sys.readSpin(rd, buf, 100);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  await exited;
  assert.equal(buf.subarray(0, n).toString(), 'later');
  assert.ok(ms >= 200, `waited ${ms} ms for the writer`);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  assert.ok(cpuMs < ms / 2, `CPU ${cpuMs.toFixed(1)} ms during a ${ms.toFixed(0)} ms wait: it spun instead of sleeping`);
});

test('readSpin and writeRaw answer failures as negative errno numbers', (t) => {
  const { rd, wr } = fifo(t);
  const buf = Buffer.alloc(16);
  assert.equal(sys.readSpin(987654, buf, 10), -errnoOf('EBADF'));
  assert.equal(sys.writeRaw(987654, buf, 1), -errnoOf('EBADF'));
  // No writer left and nothing buffered: end of file (0), not EAGAIN and not a hang.
  fs.closeSync(wr);
  assert.equal(sys.readSpin(rd, buf, 10), 0);
});

test('lstatInto fills the same numbers as lstat with bigint (times to the nanosecond), no Stats object', (t) => {
  const { p, wr } = fifo(t);
  const dir = path.dirname(p);
  const f = path.join(dir, 'file');
  fs.writeFileSync(f, 'x'.repeat(5000));
  fs.utimesSync(f, new Date(1_600_000_000_123), new Date(-1_000_500)); // an mtime before 1970
  fs.symlinkSync('file', path.join(dir, 'link'));
  const out = sys.statArray();
  for (const name of ['file', 'link', 'fifo', '.']) {
    const abs = path.join(dir, name);
    assert.equal(sys.lstatInto(abs, out), 0, name);
    const big = fs.lstatSync(abs, { bigint: true });
    const S = sys.ST;
    assert.deepEqual(
      [out[S.dev], out[S.ino], out[S.mode], out[S.nlink], out[S.uid], out[S.gid], out[S.rdev], out[S.size], out[S.blksize], out[S.blocks]],
      [big.dev, big.ino, big.mode, big.nlink, big.uid, big.gid, big.rdev, big.size, big.blksize, big.blocks].map(Number),
      name,
    );
    for (const [k, ns] of [['atime', big.atimeNs], ['mtime', big.mtimeNs], ['ctime', big.ctimeNs]] as const) {
      const sec = out[S[`${k}Sec`]]!;
      const nsec = out[S[`${k}Nsec`]]!;
      assert.ok(nsec >= 0 && nsec < 1e9, `${name} ${k} nsec normalized`);
      assert.equal(BigInt(sec) * 1_000_000_000n + BigInt(nsec), ns, `${name} ${k}`);
    }
  }
  sys.lstatInto(f, out);
  assert.equal(out[sys.ST.mtimeSec], -1001, 'negative seconds with positive nanoseconds');
  assert.equal(out[sys.ST.mtimeNsec], 500_000_000);
  assert.equal(sys.lstatInto(path.join(dir, 'missing'), out), -errnoOf('ENOENT'));
  assert.equal(sys.lstatInto(path.join(dir, 'file', 'x'), out), -errnoOf('ENOTDIR'));
  assert.throws(() => sys.lstatInto(path.join(dir, 'file'), new Float64Array(3)), TypeError);
  fs.closeSync(wr);
});

test('readSpin without wait gives up with -EAGAIN after its spin, and still takes data that is there', (t) => {
  const { rd, wr } = fifo(t);
  const buf = Buffer.alloc(16);
  const t0 = process.hrtime.bigint();
  assert.equal(sys.readSpin(rd, buf, 300, false), -errnoOf('EAGAIN'));
  const us = Number(process.hrtime.bigint() - t0) / 1e3;
  assert.ok(us >= 300, `spun ${us.toFixed(0)} us`);
  sys.writeRaw(wr, Buffer.from('ab'), 2);
  assert.equal(sys.readSpin(rd, buf, 0, false), 2);
});
