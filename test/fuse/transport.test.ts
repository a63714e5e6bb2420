/**
 * The transport alone, over a tiny in-memory filesystem (mem-union.ts) mounted in this process:
 * directory listings that span many READDIR/READDIRPLUS replies, 1 MiB writes and reads, xattr
 * size queries and ERANGE, statfs, lookups counted and forgotten, errors as errno.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { forceUnmount, fuseUnavailable, ok, requireFuse, sh } from '../helpers/mount.js';
import { startSession, type Session } from '../../src/fuse/session.js';

const canMount = fuseUnavailable() === null;

describe('FUSE transport over an in-memory filesystem', () => {
  let root = '';
  let mnt = '';
  let s: Session | undefined;
  const saved = process.env.LAYERFS_RUN_DIR;

  before(async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-transport-')));
    mnt = join(root, 'mnt');
    mkdirSync(mnt);
    process.env.LAYERFS_RUN_DIR = join(root, 'run');
    if (!canMount) return;
    s = await startSession({
      options: 'rw,nosuid',
      mountpoint: mnt,
      unionModule: new URL('./mem-union.js', import.meta.url).href,
    });
  });

  after(async () => {
    if (s) {
      await s.unmount(false).catch(() => forceUnmount(mnt));
      await Promise.race([s.done, new Promise((r) => setTimeout(r, 10_000))]);
    }
    forceUnmount(mnt);
    if (saved === undefined) delete process.env.LAYERFS_RUN_DIR;
    else process.env.LAYERFS_RUN_DIR = saved;
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('mount options reach the kernel (nosuid, allow_other, default_permissions)', (t) => {
    if (!requireFuse(t)) return;
    const line = readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === mnt);
    assert.ok(line, 'in /proc/self/mounts');
    assert.match(line!, /^layerfs \S+ fuse\.layerfs rw,nosuid,/);
    assert.match(line!, /default_permissions,allow_other/);
  });

  test('a listing spanning many replies: every name exactly once (readdir and readdirplus)', (t) => {
    if (!requireFuse(t)) return;
    mkdirSync(join(mnt, 'many'));
    const names: string[] = [];
    for (let i = 0; i < 1500; i++) names.push(`file-${String(i).padStart(4, '0')}-${'x'.repeat(i % 40)}`);
    for (const n of names) writeFileSync(join(mnt, 'many', n), n);
    assert.deepEqual(readdirSync(join(mnt, 'many')).sort(), [...names].sort());
    const ls = ok(sh(`ls -la ${mnt}/many | tail -n +2`), 'ls -la').trim().split('\n');
    assert.equal(ls.length, names.length + 2, '. and .. plus every file');
    const find = ok(sh(`find ${mnt}/many -type f | wc -l`), 'find');
    assert.equal(find.trim(), String(names.length));
    assert.equal(readFileSync(join(mnt, 'many', names[1234]!), 'utf8'), names[1234]);
  });

  test('1 MiB writes and reads round-trip, at odd offsets too', (t) => {
    if (!requireFuse(t)) return;
    const data = Buffer.alloc(5 * 1024 * 1024 + 333);
    for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;
    const src = join(root, 'src.bin');
    writeFileSync(src, data);
    ok(sh(`dd if=${src} of=${mnt}/big.bin bs=1M status=none`), 'dd');
    assert.equal(statSync(join(mnt, 'big.bin')).size, data.length);
    assert.ok(readFileSync(join(mnt, 'big.bin')).equals(data));
    const fd = openSync(join(mnt, 'big.bin'), 'r+');
    try {
      writeSync(fd, Buffer.from('PATCH'), 0, 5, 1_000_001);
      const b = Buffer.alloc(9);
      assert.equal(readSync(fd, b, 0, 9, 999_999), 9);
      assert.deepEqual([...b.subarray(2, 7)], [...Buffer.from('PATCH')]);
    } finally {
      closeSync(fd);
    }
  });

  test('xattrs: size queries, ERANGE on a small buffer, listing', (t) => {
    if (!requireFuse(t)) return;
    writeFileSync(join(mnt, 'x'), '');
    const big = 'v'.repeat(3000);
    ok(sh(`setfattr -n user.big -v ${big} ${mnt}/x && setfattr -n user.small -v s ${mnt}/x`), 'setfattr');
    assert.equal(ok(sh(`getfattr --only-values -n user.big ${mnt}/x`), 'getfattr'), big);
    assert.match(ok(sh(`getfattr -d ${mnt}/x`), 'getfattr -d'), /user\.big=.*\nuser\.small="s"/);
    // raw getxattr(2)/listxattr(2): size 0 asks for the size, a too-small buffer is ERANGE
    const py = sh(`python3 -c "
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
p = b'${mnt}/x'
def call(f, *a):
    r = f(*a)
    return r if r >= 0 else errno.errorcode[ctypes.get_errno()]
buf = ctypes.create_string_buffer(8192)
print(call(libc.getxattr, p, b'user.big', None, 0))
print(call(libc.getxattr, p, b'user.big', buf, 10))
print(call(libc.getxattr, p, b'user.none', buf, 8192))
print(call(libc.listxattr, p, None, 0))
print(call(libc.listxattr, p, buf, 5))
print(call(libc.listxattr, p, buf, 8192), buf.raw[:22])
"`);
    assert.deepEqual(ok(py, 'python getxattr').trim().split('\n'), ['3000', 'ERANGE', 'ENODATA', '20', 'ERANGE', "20 b'user.big\\x00user.small\\x00\\x00\\x00'"]);
  });

  test('statfs answers from the filesystem', (t) => {
    if (!requireFuse(t)) return;
    assert.equal(ok(sh(`stat -f -c '%S %b %f %c %d %l' ${mnt}`), 'stat -f').trim(), '4096 1000 500 100 50 255');
  });

  test('errors arrive as errno', (t) => {
    if (!requireFuse(t)) return;
    assert.throws(() => readFileSync(join(mnt, 'absent')), { code: 'ENOENT' });
    mkdirSync(join(mnt, 'd'));
    writeFileSync(join(mnt, 'd', 'f'), '');
    assert.throws(() => rmSync(join(mnt, 'd')), { code: 'ERR_FS_EISDIR' });
    assert.match(sh(`rmdir ${mnt}/d`).stderr, /not empty/i);
    assert.match(sh(`touch ${mnt}/.wh.x`).stderr, /Invalid argument/);
  });

  test('lookups work again after the kernel drops its inodes (drop_caches -> FORGET/BATCH_FORGET)', async (t) => {
    if (!requireFuse(t)) return;
    // drop_caches makes the kernel evict unused inodes, each eviction a FORGET
    ok(sh('sync; echo 2 > /proc/sys/vm/drop_caches'), 'drop_caches');
    await new Promise((r) => setTimeout(r, 300));
    // the listing still works after ids were dropped and looked up anew
    assert.equal(readdirSync(join(mnt, 'many')).length, 1500);
    assert.equal(readFileSync(join(mnt, 'many', 'file-0007-xxxxxxx'), 'utf8'), 'file-0007-xxxxxxx');
  });
});

test('when the serving thread dies, the mount is detached, not left dead', async (t) => {
  if (!requireFuse(t)) return;
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-crash-')));
  const mnt = join(root, 'mnt');
  mkdirSync(mnt);
  const saved = process.env.LAYERFS_RUN_DIR;
  process.env.LAYERFS_RUN_DIR = join(root, 'run');
  t.after(() => {
    forceUnmount(mnt);
    if (saved === undefined) delete process.env.LAYERFS_RUN_DIR;
    else process.env.LAYERFS_RUN_DIR = saved;
    rmSync(root, { recursive: true, force: true });
  });
  const s = await startSession({ options: '', mountpoint: mnt, unionModule: new URL('./mem-union.js', import.meta.url).href });
  writeFileSync(join(mnt, 'f'), 'x');
  // async: the kernel frees the waiting stat only once this process closes /dev/fuse
  const status = await new Promise<number | null>((res) => {
    const c = spawn('stat', [`${mnt}/__crash_the_worker__`], { stdio: 'ignore' });
    const timer = setTimeout(() => c.kill('SIGKILL'), 20_000);
    c.on('exit', (code) => {
      clearTimeout(timer);
      res(code);
    });
  });
  assert.notEqual(status, 0);
  const end = await Promise.race([s.done, new Promise<null>((res) => setTimeout(() => res(null), 15_000))]);
  assert.ok(end, 'the session ended');
  assert.equal(end.reason, 'exit');
  assert.ok(!readFileSync('/proc/self/mounts', 'utf8').includes(` ${mnt} `), 'no dead mount left');
  assert.deepEqual(readdirSync(join(root, 'run')).filter((n) => n.startsWith('si_')), []);
});
