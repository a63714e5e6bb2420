import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FsError } from '../../src/errors/index.js';
import * as sys from '../../src/sys/index.js';

const isRoot = process.getuid?.() === 0;
// Root-only checks run as root; elsewhere they are skipped, except in CI where they must run.
const rootOnly = !isRoot && !process.env.CI ? 'needs root' : false;

function tmp(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-sys-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Asserts `fn` throws an FsError shaped like node:fs's, with this code/syscall/path. */
function throwsErrno(fn: () => unknown, code: string, syscall: string, p?: string): FsError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof FsError, `expected FsError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.equal(caught.syscall, syscall);
  assert.equal(caught.errno, -(os.constants.errno as Record<string, number>)[code]!);
  assert.equal(caught.path, p);
  assert.ok(caught.message.startsWith(`${code}: `), caught.message);
  assert.ok(caught.message.includes(`, ${syscall}`), caught.message);
  if (p !== undefined) assert.ok(caught.message.includes(`'${p}'`), caught.message);
  return caught;
}

test('xattrs by path: set, get, list, remove, and their errnos', (t) => {
  const dir = tmp(t);
  const f = path.join(dir, 'f');
  fs.writeFileSync(f, 'x');
  sys.lsetxattr(f, 'user.a', Buffer.from('one'), 0);
  assert.deepEqual(sys.lgetxattr(f, 'user.a'), Buffer.from('one'));
  // values larger than the addon's stack buffer, and empty values
  const big = Buffer.alloc(3000, 7);
  sys.lsetxattr(f, 'user.big', big, 0);
  sys.lsetxattr(f, 'user.empty', Buffer.alloc(0), 0);
  assert.deepEqual(sys.lgetxattr(f, 'user.big'), big);
  assert.equal(sys.lgetxattr(f, 'user.empty').length, 0);
  assert.deepEqual(sys.llistxattr(f).filter((n) => n.startsWith('user.')).sort(), ['user.a', 'user.big', 'user.empty']);

  const e = throwsErrno(() => sys.lsetxattr(f, 'user.a', Buffer.from('two'), sys.XATTR_CREATE), 'EEXIST', 'lsetxattr', f);
  assert.equal(e.message, `EEXIST: file already exists, lsetxattr '${f}'`);
  assert.deepEqual(sys.lgetxattr(f, 'user.a'), Buffer.from('one'));
  throwsErrno(() => sys.lsetxattr(f, 'user.none', Buffer.from('v'), sys.XATTR_REPLACE), 'ENODATA', 'lsetxattr', f);
  sys.lsetxattr(f, 'user.a', Buffer.from('two'), sys.XATTR_REPLACE);
  assert.deepEqual(sys.lgetxattr(f, 'user.a'), Buffer.from('two'));

  assert.deepEqual(sys.tryLgetxattr(f, 'user.a'), Buffer.from('two'));
  sys.lremovexattr(f, 'user.a');
  throwsErrno(() => sys.lgetxattr(f, 'user.a'), 'ENODATA', 'lgetxattr', f);
  assert.equal(sys.tryLgetxattr(f, 'user.a'), undefined);
  throwsErrno(() => sys.lremovexattr(f, 'user.a'), 'ENODATA', 'lremovexattr', f);
  assert.ok(!sys.llistxattr(f).includes('user.a'));
  const missing = path.join(dir, 'missing');
  throwsErrno(() => sys.llistxattr(missing), 'ENOENT', 'llistxattr', missing);
  throwsErrno(() => sys.lgetxattr(missing, 'user.a'), 'ENOENT', 'lgetxattr', missing);
  throwsErrno(() => sys.tryLgetxattr(missing, 'user.a'), 'ENOENT', 'lgetxattr', missing);
});

test('l*xattr does not follow symlinks', { skip: rootOnly }, (t) => {
  const dir = tmp(t);
  const target = path.join(dir, 'target');
  const link = path.join(dir, 'link');
  fs.writeFileSync(target, 'x');
  fs.symlinkSync('target', link);
  // user.* is not allowed on symlinks: EPERM proves the link itself was addressed
  throwsErrno(() => sys.lsetxattr(link, 'user.a', Buffer.from('v'), 0), 'EPERM', 'lsetxattr', link);
  sys.lsetxattr(link, 'trusted.layerfs.t', Buffer.from('on-link'), 0);
  assert.deepEqual(sys.lgetxattr(link, 'trusted.layerfs.t'), Buffer.from('on-link'));
  assert.ok(sys.llistxattr(link).includes('trusted.layerfs.t'));
  assert.ok(!sys.llistxattr(target).includes('trusted.layerfs.t'));
  throwsErrno(() => sys.lgetxattr(target, 'trusted.layerfs.t'), 'ENODATA', 'lgetxattr', target);
  sys.lremovexattr(link, 'trusted.layerfs.t');
  assert.ok(!sys.llistxattr(link).includes('trusted.layerfs.t'));
});

test('xattrs by fd', (t) => {
  const dir = tmp(t);
  const f = path.join(dir, 'f');
  fs.writeFileSync(f, 'x');
  const fd = fs.openSync(f, 'r');
  try {
    sys.fsetxattr(fd, 'user.k', Buffer.from('v1'), sys.XATTR_CREATE);
    assert.deepEqual(sys.fgetxattr(fd, 'user.k'), Buffer.from('v1'));
    assert.deepEqual(sys.tryFgetxattr(fd, 'user.k'), Buffer.from('v1'));
    assert.deepEqual(sys.lgetxattr(f, 'user.k'), Buffer.from('v1'));
    assert.ok(sys.flistxattr(fd).includes('user.k'));
    throwsErrno(() => sys.fsetxattr(fd, 'user.k', Buffer.from('v2'), sys.XATTR_CREATE), 'EEXIST', 'fsetxattr');
    sys.fremovexattr(fd, 'user.k');
    throwsErrno(() => sys.fgetxattr(fd, 'user.k'), 'ENODATA', 'fgetxattr');
    assert.equal(sys.tryFgetxattr(fd, 'user.k'), undefined);
    throwsErrno(() => sys.fremovexattr(fd, 'user.k'), 'ENODATA', 'fremovexattr');
  } finally {
    fs.closeSync(fd);
  }
  throwsErrno(() => sys.flistxattr(fd), 'EBADF', 'flistxattr');
  throwsErrno(() => sys.tryFgetxattr(fd, 'user.k'), 'EBADF', 'fgetxattr');
});

test('mknod makes a fifo; makedev/major/minor use the st_rdev encoding', (t) => {
  const dir = tmp(t);
  const p = path.join(dir, 'fifo');
  sys.mknod(p, fs.constants.S_IFIFO | 0o640, 0);
  const st = fs.lstatSync(p);
  assert.ok(st.isFIFO());
  assert.equal(st.mode & 0o777, 0o640 & ~process.umask());
  throwsErrno(() => sys.mknod(p, fs.constants.S_IFIFO | 0o644, 0), 'EEXIST', 'mknod', p);
  const devnull = fs.statSync('/dev/null').rdev;
  assert.equal(sys.makedev(1, 3), devnull);
  assert.equal(sys.major(devnull), 1);
  assert.equal(sys.minor(devnull), 3);
  const d = sys.makedev(0x12345, 0x6789ab);
  assert.equal(sys.major(d), 0x12345);
  assert.equal(sys.minor(d), 0x6789ab);
});

test('mknod makes a char device 0/0 (a whiteout) as root', { skip: rootOnly }, (t) => {
  const dir = tmp(t);
  const p = path.join(dir, 'wh');
  sys.mknod(p, fs.constants.S_IFCHR | 0o600, sys.makedev(0, 0));
  const st = fs.lstatSync(p);
  assert.ok(st.isCharacterDevice());
  assert.equal(st.rdev, 0);
});

test('renameat2: NOREPLACE, EXCHANGE, WHITEOUT', { skip: rootOnly }, (t) => {
  const dir = tmp(t);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  fs.writeFileSync(a, 'A');
  fs.writeFileSync(b, 'B');
  const e = throwsErrno(() => sys.renameat2(a, b, sys.RENAME_NOREPLACE), 'EEXIST', 'renameat2', a);
  assert.equal(e.dest, b);
  assert.equal(e.message, `EEXIST: file already exists, renameat2 '${a}' -> '${b}'`);
  assert.equal(fs.readFileSync(b, 'utf8'), 'B');

  sys.renameat2(a, b, sys.RENAME_EXCHANGE);
  assert.equal(fs.readFileSync(a, 'utf8'), 'B');
  assert.equal(fs.readFileSync(b, 'utf8'), 'A');
  throwsErrno(() => sys.renameat2(a, path.join(dir, 'none'), sys.RENAME_EXCHANGE), 'ENOENT', 'renameat2', a);

  const c = path.join(dir, 'c');
  sys.renameat2(a, c, sys.RENAME_NOREPLACE);
  assert.equal(fs.readFileSync(c, 'utf8'), 'B');
  assert.equal(fs.existsSync(a), false);

  sys.renameat2(c, a, sys.RENAME_WHITEOUT);
  assert.equal(fs.readFileSync(a, 'utf8'), 'B');
  const wh = fs.lstatSync(c);
  assert.ok(wh.isCharacterDevice());
  assert.equal(wh.rdev, 0);
});

test('utimensat sets nanoseconds; UTIME_OMIT and UTIME_NOW; noFollow addresses the link', (t) => {
  const dir = tmp(t);
  const f = path.join(dir, 'f');
  fs.writeFileSync(f, 'x');
  sys.utimensat(f, 1000, 123456789, 2000, 987654321, false);
  let st = fs.statSync(f, { bigint: true });
  assert.equal(st.atimeNs, 1000_123456789n);
  assert.equal(st.mtimeNs, 2000_987654321n);

  sys.utimensat(f, 0, sys.UTIME_OMIT, 3000, 5, false);
  st = fs.statSync(f, { bigint: true });
  assert.equal(st.atimeNs, 1000_123456789n);
  assert.equal(st.mtimeNs, 3000_000000005n);

  const before = BigInt(Date.now() - 5000) * 1_000_000n;
  sys.utimensat(f, 0, sys.UTIME_NOW, 0, sys.UTIME_OMIT, false);
  st = fs.statSync(f, { bigint: true });
  assert.ok(st.atimeNs > before);
  assert.equal(st.mtimeNs, 3000_000000005n);

  const link = path.join(dir, 'link');
  fs.symlinkSync('f', link);
  sys.utimensat(link, 7, 7, 8, 8, true);
  assert.equal(fs.lstatSync(link, { bigint: true }).mtimeNs, 8_000000008n);
  assert.equal(fs.statSync(f, { bigint: true }).mtimeNs, 3000_000000005n);

  const missing = path.join(dir, 'missing');
  throwsErrno(() => sys.utimensat(missing, 1, 0, 1, 0, false), 'ENOENT', 'utimensat', missing);
  throwsErrno(() => sys.utimensat(f, 1, 2_000_000_000, 1, 0, false), 'EINVAL', 'utimensat', f);
});

test('futimens sets times of an open file', (t) => {
  const dir = tmp(t);
  const f = path.join(dir, 'f');
  fs.writeFileSync(f, 'x');
  const fd = fs.openSync(f, 'r+');
  try {
    sys.futimens(fd, 11, 22, 33, 44);
  } finally {
    fs.closeSync(fd);
  }
  const st = fs.statSync(f, { bigint: true });
  assert.equal(st.atimeNs, 11_000000022n);
  assert.equal(st.mtimeNs, 33_000000044n);
  throwsErrno(() => sys.futimens(fd, 1, 0, 1, 0), 'EBADF', 'futimens');
});

test('fallocate grows a file; KEEP_SIZE does not', (t) => {
  const dir = tmp(t);
  const f = path.join(dir, 'f');
  fs.writeFileSync(f, '');
  const fd = fs.openSync(f, 'r+');
  try {
    sys.fallocate(fd, 0, 0, 1 << 20);
    assert.equal(fs.fstatSync(fd).size, 1 << 20);
    sys.fallocate(fd, sys.FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20);
    assert.equal(fs.fstatSync(fd).size, 1 << 20);
    throwsErrno(() => sys.fallocate(fd, 0, 0, 0), 'EINVAL', 'fallocate');
  } finally {
    fs.closeSync(fd);
  }
  const ro = fs.openSync(f, 'r');
  try {
    throwsErrno(() => sys.fallocate(ro, 0, 0, 4096), 'EBADF', 'fallocate');
  } finally {
    fs.closeSync(ro);
  }
});

test('lseek: SEEK_DATA / SEEK_HOLE on a sparse file, offsets beyond 2^32', (t) => {
  const dir = tmp(t);
  const f = path.join(dir, 'sparse');
  const dataAt = 1 << 20;
  const fd = fs.openSync(f, 'w+');
  try {
    fs.writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, dataAt);
    fs.ftruncateSync(fd, 4 << 20);
    assert.equal(sys.lseek(fd, 0, sys.SEEK_DATA), dataAt);
    assert.equal(sys.lseek(fd, 0, sys.SEEK_HOLE), 0);
    assert.equal(sys.lseek(fd, dataAt, sys.SEEK_HOLE), dataAt + 4096);
    throwsErrno(() => sys.lseek(fd, dataAt + 4096, sys.SEEK_DATA), 'ENXIO', 'lseek');
    const far = 2 ** 40 + 3;
    assert.equal(sys.lseek(fd, far, sys.SEEK_SET), far);
    assert.equal(sys.lseek(fd, 0, sys.SEEK_CUR), far);
    throwsErrno(() => sys.lseek(fd, -1, sys.SEEK_SET), 'EINVAL', 'lseek');
  } finally {
    fs.closeSync(fd);
  }
});

test('copyFileRange copies bytes at offsets', (t) => {
  const dir = tmp(t);
  const src = path.join(dir, 'src');
  const dst = path.join(dir, 'dst');
  const data = Buffer.from('0123456789abcdef'.repeat(1000));
  fs.writeFileSync(src, data);
  fs.writeFileSync(dst, '');
  const fi = fs.openSync(src, 'r');
  const fo = fs.openSync(dst, 'r+');
  try {
    let done = 0;
    while (done < data.length) {
      const n = sys.copyFileRange(fi, done, fo, done, data.length - done);
      assert.ok(n > 0);
      done += n;
    }
    assert.equal(sys.copyFileRange(fi, data.length, fo, data.length, 100), 0);
    assert.deepEqual(fs.readFileSync(dst), data);
    assert.equal(sys.copyFileRange(fi, 10, fo, 0, 6), 6);
    assert.equal(fs.readFileSync(dst).subarray(0, 6).toString(), 'abcdef');
    throwsErrno(() => sys.copyFileRange(fo, 0, fi, 0, 10), 'EBADF', 'copy_file_range');
  } finally {
    fs.closeSync(fi);
    fs.closeSync(fo);
  }
});

test('ficlone shares data or reports why not as FsError', (t) => {
  const dir = tmp(t);
  const src = path.join(dir, 'src');
  const dst = path.join(dir, 'dst');
  fs.writeFileSync(src, Buffer.alloc(8192, 9));
  fs.writeFileSync(dst, '');
  const fi = fs.openSync(src, 'r');
  const fo = fs.openSync(dst, 'r+');
  try {
    try {
      sys.ficlone(fo, fi);
      assert.deepEqual(fs.readFileSync(dst), fs.readFileSync(src));
    } catch (e) {
      assert.ok(e instanceof FsError, String(e));
      assert.ok(['EOPNOTSUPP', 'EXDEV', 'EINVAL'].includes(e.code), e.code);
      assert.equal(e.syscall, 'ioctl');
    }
    throwsErrno(() => sys.ficlone(fo, -1), 'EBADF', 'ioctl');
  } finally {
    fs.closeSync(fi);
    fs.closeSync(fo);
  }
});

test('ioctl passes a Buffer in/out; a bad request gives ENOTTY', (t) => {
  const dir = tmp(t);
  const f = path.join(dir, 'f');
  fs.writeFileSync(f, '0123456789');
  const FIONREAD = 0x541b; // bytes left to read, written into the int the arg points to
  const fd = fs.openSync(f, 'r');
  try {
    fs.readSync(fd, Buffer.alloc(3), 0, 3, null);
    const out = Buffer.alloc(4);
    assert.equal(sys.ioctl(fd, FIONREAD, out), 0);
    assert.equal(out.readInt32LE(0), 7);
    throwsErrno(() => sys.ioctl(fd, 0x7fff1234, Buffer.alloc(8)), 'ENOTTY', 'ioctl');
  } finally {
    fs.closeSync(fd);
  }
  throwsErrno(() => sys.ioctl(fd, FIONREAD, Buffer.alloc(4)), 'EBADF', 'ioctl');
});

test('mount a tmpfs, then umount2', { skip: rootOnly }, (t) => {
  const dir = tmp(t);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const mounted = (): boolean =>
    fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === mnt);
  sys.mount('layerfs-test', mnt, 'tmpfs', sys.MS_NOSUID | sys.MS_NODEV, 'size=1m,mode=0755');
  t.after(() => {
    if (mounted()) sys.umount2(mnt, sys.MNT_DETACH);
  });
  assert.ok(mounted());
  fs.writeFileSync(path.join(mnt, 'inside'), 'x');
  assert.notEqual(fs.statSync(mnt).dev, fs.statSync(dir).dev);
  sys.umount2(mnt, 0);
  assert.equal(mounted(), false);
  assert.equal(fs.existsSync(path.join(mnt, 'inside')), false);
  throwsErrno(() => sys.umount2(mnt, 0), 'EINVAL', 'umount2', mnt);
  const missing = path.join(dir, 'missing');
  throwsErrno(() => sys.mount('x', missing, 'tmpfs', 0, ''), 'ENOENT', 'mount', missing);
});

test('bad argument types throw TypeError, not FsError', () => {
  assert.throws(() => sys.lgetxattr(42 as unknown as string, 'user.a'), TypeError);
  assert.throws(() => sys.lsetxattr('/tmp', 'user.a', 'str' as unknown as Buffer, 0), TypeError);
  assert.throws(() => sys.lgetxattr('/tmp\0x', 'user.a'), TypeError);
  assert.throws(() => sys.lseek('3' as unknown as number, 0, 0), TypeError);
});
