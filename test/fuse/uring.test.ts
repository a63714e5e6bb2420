/**
 * FUSE over io_uring (fuse/uring-transport.ts): with the fuse module's enable_uring on, a mount with
 * -o uring is served over the ring (the requests counted there grow with the work done, `layerfs
 * info` says so) and behaves as over /dev/fuse: create, write, read, rename, readdir, xattrs, writes
 * of max_write, concurrent readers in several processes. With enable_uring=N the same mount falls
 * back to /dev/fuse and says why. Every test that changes enable_uring puts the previous value back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, forceUnmount, ok, removeScratch, requireFuse, sh } from '../helpers/mount.js';
import { startSession, type Session } from '../../src/fuse/session.js';
import { possibleCpus } from '../../src/sys/uring.js';

const PARAM = '/sys/module/fuse/parameters/enable_uring';

/** Run `fn` with enable_uring set to `value`, putting the previous value back whatever happens. */
async function withEnableUring<T>(value: 'Y' | 'N', fn: () => Promise<T>): Promise<T> {
  const previous = readFileSync(PARAM, 'utf8').trim();
  writeFileSync(PARAM, value);
  try {
    return await fn();
  } finally {
    writeFileSync(PARAM, previous);
  }
}

function run(cmd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** The number in `N requests over the ring` of a transport line. */
function ringRequests(line: string): number {
  const m = / (\d+) requests over the ring/.exec(line);
  assert.ok(m, `an io_uring line: ${line}`);
  return Number(m![1]);
}

describe('FUSE over io_uring', () => {
  let root = '';
  const saved = process.env.LAYERFS_RUN_DIR;

  before(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-uring-')));
    process.env.LAYERFS_RUN_DIR = join(root, 'run');
  });

  after(async () => {
    if (saved === undefined) delete process.env.LAYERFS_RUN_DIR;
    else process.env.LAYERFS_RUN_DIR = saved;
    if (root) await removeScratch(root, []);
  });

  /** A fresh dirs=rw:lo mount with `opts`, given to `fn`, unmounted after. */
  async function mounted(name: string, opts: string, fn: (mnt: string, s: Session) => Promise<void>): Promise<void> {
    const base = join(root, name);
    for (const d of ['rw', 'lo', 'mnt']) mkdirSync(join(base, d), { recursive: true });
    writeFileSync(join(base, 'lo', 'lower.txt'), 'from the lower layer\n');
    mkdirSync(join(base, 'lo', 'dir'));
    for (let i = 0; i < 50; i++) writeFileSync(join(base, 'lo', 'dir', `f${i}`), `${i}`);
    const mnt = join(base, 'mnt');
    const s = await startSession({ options: `dirs=${base}/rw=rw:${base}/lo=ro${opts}`, mountpoint: mnt });
    try {
      await fn(mnt, s);
    } finally {
      await s.unmount(false).catch(() => forceUnmount(mnt));
      await Promise.race([s.done, new Promise((r) => setTimeout(r, 10_000))]);
      forceUnmount(mnt);
    }
  }

  test('the kernel has the parameter (Linux 6.14+ with CONFIG_FUSE_IO_URING)', (t) => {
    if (!requireFuse(t)) return;
    assert.ok(existsSync(PARAM), `${PARAM} exists`);
  });

  test('with enable_uring=Y, -o uring serves the usual operations over the ring', async (t) => {
    if (!requireFuse(t)) return;
    await withEnableUring('Y', () =>
      mounted('on', ',uring', async (mnt, s) => {
        assert.match(s.transport(), new RegExp(`^transport: io_uring \\(${possibleCpus()} queues x \\d+ entries\\)`));
        const before = ringRequests(s.transport());
        // create / write / read / rename / readdir
        assert.equal(readFileSync(join(mnt, 'lower.txt'), 'utf8'), 'from the lower layer\n');
        writeFileSync(join(mnt, 'new.txt'), 'hello');
        renameSync(join(mnt, 'new.txt'), join(mnt, 'renamed.txt'));
        assert.equal(readFileSync(join(mnt, 'renamed.txt'), 'utf8'), 'hello');
        assert.deepEqual(readdirSync(mnt).sort(), ['dir', 'lower.txt', 'renamed.txt']);
        assert.equal(readdirSync(join(mnt, 'dir')).length, 50);
        // copy-up of a lower file through the ring, on disk in the rw branch
        writeFileSync(join(mnt, 'lower.txt'), 'changed');
        assert.equal(readFileSync(join(root, 'on', 'rw', 'lower.txt'), 'utf8'), 'changed');
        // xattrs: set, get, list, remove
        ok(sh(`setfattr -n user.k -v value ${mnt}/renamed.txt`), 'setfattr');
        assert.match(ok(sh(`getfattr -n user.k --only-values ${mnt}/renamed.txt`), 'getfattr'), /^value$/);
        assert.match(ok(sh(`getfattr -d ${mnt}/renamed.txt`), 'list'), /user\.k="value"/);
        ok(sh(`setfattr -x user.k ${mnt}/renamed.txt`), 'remove');
        assert.equal(sh(`getfattr -n user.k ${mnt}/renamed.txt`).status, 1);
        // large writes (dd with 1 MiB blocks: writes of max_write), read back byte for byte
        ok(sh(`dd if=/dev/urandom of=${root}/big bs=1M count=8 status=none && dd if=${root}/big of=${mnt}/big bs=1M oflag=direct status=none`), 'dd');
        assert.equal(statSync(join(mnt, 'big')).size, 8 << 20);
        assert.ok(readFileSync(join(mnt, 'big')).equals(readFileSync(join(root, 'big'))), 'big file read back intact');
        // concurrent readers in several processes
        const sum = ok(sh(`md5sum < ${root}/big`), 'md5').split(' ')[0];
        const outs = await Promise.all(
          [0, 1, 2, 3].map((i) => run(`for j in 1 2 3; do cat ${mnt}/big | md5sum; ls -l ${mnt}/dir > /dev/null; stat ${mnt}/dir/f${i} > /dev/null; done`)),
        );
        for (const o of outs) {
          assert.equal(o.code, 0);
          assert.deepEqual(o.out.trim().split('\n').map((l) => l.split(' ')[0]), [sum, sum, sum]);
        }
        const afterOps = ringRequests(s.transport());
        assert.ok(afterOps > before + 20, `requests went over the ring: ${before} -> ${afterOps}`);
        // nearly all of them: only INIT, FORGETs and interrupts use /dev/fuse
        assert.ok(afterOps >= s.requests() * 0.9, `${afterOps} of ${s.requests()} requests over the ring`);
      }),
    );
  });

  test('with enable_uring=N, -o uring falls back to /dev/fuse and says why', async (t) => {
    if (!requireFuse(t)) return;
    await withEnableUring('N', () =>
      mounted('off', ',uring', async (mnt, s) => {
        writeFileSync(join(mnt, 'a'), 'x');
        assert.equal(readFileSync(join(mnt, 'a'), 'utf8'), 'x');
        assert.equal(readdirSync(join(mnt, 'dir')).length, 50);
        assert.match(s.transport(), /^transport: \/dev\/fuse read\/write \(the kernel did not offer io_uring/);
      }),
    );
  });

  test('-o nouring stays on /dev/fuse even when the kernel offers the ring', async (t) => {
    if (!requireFuse(t)) return;
    await withEnableUring('Y', () =>
      mounted('nouring', ',nouring', async (mnt, s) => {
        writeFileSync(join(mnt, 'a'), 'x');
        assert.equal(readFileSync(join(mnt, 'a'), 'utf8'), 'x');
        assert.equal(s.transport(), '', 'no transport line: /dev/fuse, as asked');
      }),
    );
  });

  test('`layerfs info` names the transport of a daemon mount', async (t) => {
    if (!requireFuse(t)) return;
    const base = join(root, 'cli');
    for (const d of ['rw', 'lo', 'mnt']) mkdirSync(join(base, d), { recursive: true });
    const mnt = join(base, 'mnt');
    await withEnableUring('Y', async () => {
      ok(cli(['mount', '-o', `dirs=${base}/rw=rw:${base}/lo=ro,uring`, mnt]), 'mount');
      try {
        writeFileSync(join(mnt, 'f'), 'x');
        assert.match(ok(cli(['info', mnt]), 'info'), /^transport: io_uring \(\d+ queues x \d+ entries\), [1-9]\d* requests over the ring$/m);
      } finally {
        ok(cli(['umount', mnt]), 'umount');
      }
    });
  });
});
