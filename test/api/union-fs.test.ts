/**
 * UnionFS scenarios: the merged view through the fs.promises-like API, and where the changes
 * landed in the raw branches (copy-ups, whiteouts, opaque dirs; lower branches untouched).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as C } from 'node:fs';
import { FileHandle, UnionFS, type Dirent } from '../../src/api/index.js';
import { AUFS_OPAQUE, buildTree, mkTemp, readTree, type Spec } from '../helpers/tree-spec.js';

interface Fixture {
  ufs: UnionFS;
  upper: string;
  lower: string;
  lowerBefore: Spec;
}

function setup(t: { after(fn: () => unknown): void }, lower: Spec, upper: Spec = {}, extra = ''): Fixture {
  const tmp = mkTemp('layerfs-api-');
  t.after(() => tmp.cleanup());
  const up = tmp.path('upper');
  const low = tmp.path('lower');
  buildTree(up, upper);
  buildTree(low, lower);
  const ufs = new UnionFS(`dirs=${up}=rw:${low}=ro${extra}`);
  t.after(() => ufs.close());
  return { ufs, upper: up, lower: low, lowerBefore: readTree(low) };
}

function lowerUntouched(f: Fixture): void {
  assert.deepEqual(readTree(f.lower), f.lowerBefore, 'the lower branch changed');
}

const LOWER: Spec = {
  'a.txt': 'lower a\n',
  etc: { passwd: 'root:x:0:0\n', group: 'root:x:0:\n' },
  usr: { bin: { ls: { mode: 0o755, content: '#!/bin/sh\n' } } },
  link: { symlink: 'etc/passwd' },
};

test('reads the merged view: upper wins, dirs merge, whiteouts hide', async (t) => {
  const f = setup(t, LOWER, { 'a.txt': 'upper a\n', etc: { hosts: 'h\n', '.wh.group': '' }, 'new.txt': 'n' });
  const { ufs } = f;
  assert.equal(await ufs.readFile('/a.txt', 'utf8'), 'upper a\n');
  assert.equal(await ufs.readFile('etc/passwd', { encoding: 'utf8' }), 'root:x:0:0\n');
  assert.deepEqual(((await ufs.readdir('/etc')) as string[]).sort(), ['hosts', 'passwd']);
  assert.deepEqual(((await ufs.readdir('/')) as string[]).sort(), ['a.txt', 'etc', 'link', 'new.txt', 'usr']);
  const ents = (await ufs.readdir('/', { withFileTypes: true })) as Dirent[];
  const kinds = Object.fromEntries(ents.map((e) => [e.name, e.isDirectory() ? 'd' : e.isSymbolicLink() ? 'l' : e.isFile() ? 'f' : '?']));
  assert.deepEqual(kinds, { 'a.txt': 'f', etc: 'd', link: 'l', 'new.txt': 'f', usr: 'd' });
  assert.equal(ents.find((e) => e.name === 'etc')!.parentPath, '/');
  assert.deepEqual(((await ufs.readdir('/usr', { recursive: true })) as string[]).sort(), ['bin', 'bin/ls']);
  const buf = await ufs.readFile('/link');
  assert.ok(Buffer.isBuffer(buf));
  assert.equal(buf.toString(), 'root:x:0:0\n');
  await assert.rejects(ufs.readFile('/etc/group'), { code: 'ENOENT', syscall: 'open' });
  lowerUntouched(f);
});

test('appendFile copies up; the lower file is unchanged', async (t) => {
  const f = setup(t, LOWER);
  await f.ufs.appendFile('/etc/passwd', 'me:x:1000:1000\n');
  assert.equal(await f.ufs.readFile('/etc/passwd', 'utf8'), 'root:x:0:0\nme:x:1000:1000\n');
  assert.deepEqual(readTree(f.upper, { skipPrivate: true }), { etc: { passwd: 'root:x:0:0\nme:x:1000:1000\n' } });
  lowerUntouched(f);
});

test('writeFile, mkdir -p, readdir of new and merged dirs', async (t) => {
  const f = setup(t, LOWER);
  const { ufs } = f;
  assert.equal(await ufs.mkdir('/x/y/z', { recursive: true }), '/x');
  assert.equal(await ufs.mkdir('/x/y', { recursive: true }), undefined);
  await ufs.mkdir('/sg', 0o2755); // like mkdir(2): the mode's setgid bit is dropped
  assert.equal((await ufs.stat('/sg')).mode & 0o7777, 0o755 & ~process.umask());
  await ufs.writeFile('/x/y/z/f.bin', Buffer.from([1, 2, 3]));
  await ufs.writeFile('/etc/hosts', 'localhost\n', { mode: 0o600 });
  assert.deepEqual(((await ufs.readdir('/etc')) as string[]).sort(), ['group', 'hosts', 'passwd']);
  assert.deepEqual([...((await ufs.readFile('/x/y/z/f.bin')) as Buffer)], [1, 2, 3]);
  assert.equal((await ufs.stat('/etc/hosts')).mode & 0o777, 0o600 & ~process.umask());
  assert.deepEqual(readTree(f.upper, { skipPrivate: true }), {
    etc: { hosts: 'localhost\n' },
    sg: {},
    x: { y: { z: { 'f.bin': '\u0001\u0002\u0003' } } },
  });
  lowerUntouched(f);
});

test('unlink and rm -r leave whiteouts; re-created dir is opaque', async (t) => {
  const f = setup(t, LOWER);
  const { ufs } = f;
  await ufs.unlink('/a.txt');
  await ufs.rm('/etc', { recursive: true });
  await ufs.rm('/nope', { force: true });
  assert.deepEqual(((await ufs.readdir('/')) as string[]).sort(), ['link', 'usr']);
  await ufs.mkdir('/etc');
  assert.deepEqual(await ufs.readdir('/etc'), []);
  const raw = readTree(f.upper, { skipPrivate: true });
  assert.equal(raw['.wh.a.txt'], '');
  assert.deepEqual(Object.keys(raw['etc'] as Spec), [AUFS_OPAQUE]);
  await assert.rejects(ufs.stat('/a.txt'), { code: 'ENOENT', syscall: 'stat', path: '/a.txt' });
  lowerUntouched(f);
});

test('rename of a lower file and of a lower directory', async (t) => {
  const f = setup(t, LOWER);
  const { ufs } = f;
  await ufs.rename('/a.txt', '/b.txt');
  assert.equal(await ufs.readFile('/b.txt', 'utf8'), 'lower a\n');
  await assert.rejects(ufs.access('/a.txt'), { code: 'ENOENT', syscall: 'access' });
  await ufs.rename('/usr', '/opt');
  assert.deepEqual((await ufs.readdir('/opt', { recursive: true })) as string[], ['bin', 'bin/ls']);
  assert.equal((await ufs.stat('/opt/bin/ls')).mode & 0o777, 0o755);
  await assert.rejects(ufs.stat('/usr'), { code: 'ENOENT' });
  lowerUntouched(f);
});

test('rename in exdev mode: a lower directory answers EXDEV', async (t) => {
  const f = setup(t, LOWER, {}, ',dirrename=exdev');
  await assert.rejects(f.ufs.rename('/usr', '/opt'), { code: 'EXDEV', syscall: 'rename', path: '/usr', dest: '/opt' });
  lowerUntouched(f);
});

test('symlinks: readlink, realpath, lstat vs stat, following inside the union, ELOOP', async (t) => {
  const f = setup(t, LOWER);
  const { ufs } = f;
  assert.equal(await ufs.readlink('/link'), 'etc/passwd');
  assert.deepEqual(await ufs.readlink('/link', { encoding: 'buffer' }), Buffer.from('etc/passwd'));
  await ufs.symlink('/etc', '/abs');
  await ufs.symlink('../etc/../usr', '/usr/up');
  assert.equal(await ufs.realpath('/abs/passwd'), '/etc/passwd');
  assert.equal(await ufs.realpath('/usr/up/bin/../bin/ls'), '/usr/bin/ls');
  assert.ok((await ufs.lstat('/abs')).isSymbolicLink());
  assert.ok((await ufs.stat('/abs')).isDirectory());
  assert.ok((await ufs.stat('/abs/')).isDirectory());
  await ufs.writeFile('/abs/shadow', 's'); // creates through the link
  assert.equal(await ufs.readFile('/etc/shadow', 'utf8'), 's');
  await ufs.symlink('etc/motd', '/dangling');
  await ufs.writeFile('/dangling', 'hello'); // O_CREAT through a dangling link creates its target
  assert.equal(await ufs.readFile('/etc/motd', 'utf8'), 'hello');
  assert.ok((await ufs.lstat('/dangling')).isSymbolicLink());
  await assert.rejects(ufs.open('/dangling', 'wx'), { code: 'EEXIST' });
  await ufs.symlink('/l2', '/l1');
  await ufs.symlink('/l1', '/l2');
  await assert.rejects(ufs.stat('/l1'), { code: 'ELOOP', syscall: 'stat' });
  await assert.rejects(ufs.readFile('/l1/x'), { code: 'ELOOP', syscall: 'open' });
  assert.ok((await ufs.lstat('/l1')).isSymbolicLink());
  lowerUntouched(f);
});

test('hard links share the inode, also after copy-up', async (t) => {
  const f = setup(t, LOWER);
  const { ufs } = f;
  const before = await ufs.stat('/etc/passwd');
  await ufs.link('/etc/passwd', '/pw');
  const a = await ufs.stat('/etc/passwd');
  const b = await ufs.stat('/pw');
  assert.equal(a.ino, b.ino);
  assert.equal(a.ino, before.ino, 'copy-up kept the inode number');
  assert.equal(a.nlink, 2);
  await ufs.appendFile('/pw', 'more\n');
  assert.equal(await ufs.readFile('/etc/passwd', 'utf8'), 'root:x:0:0\nmore\n');
  lowerUntouched(f);
});

test('chmod, chown, utimes (nanoseconds), truncate, access', async (t) => {
  const f = setup(t, LOWER);
  const { ufs } = f;
  await ufs.chmod('/a.txt', 0o640);
  assert.equal((await ufs.stat('/a.txt')).mode & 0o7777, 0o640);
  await ufs.chmod('/a.txt', '600');
  assert.equal((await ufs.stat('/a.txt')).mode & 0o7777, 0o600);
  if (process.getuid?.() === 0) {
    await ufs.chown('/a.txt', 1234, 5678);
    const st = await ufs.stat('/a.txt');
    assert.deepEqual([st.uid, st.gid], [1234, 5678]);
  } else {
    // like node:fs for an unprivileged user: giving a file away is EPERM, to oneself is fine
    await assert.rejects(ufs.chown('/a.txt', 1234, 5678), { code: 'EPERM', syscall: 'chown', path: '/a.txt' });
    await ufs.chown('/a.txt', process.getuid!(), process.getgid!());
  }
  await ufs.utimes('/a.txt', 1_600_000_000.123456789, new Date('2020-01-02T03:04:05.678Z'));
  const big = await ufs.stat('/a.txt', { bigint: true });
  assert.equal(typeof big.ino, 'bigint');
  assert.equal(big.atimeNs / 1000n, 1_600_000_000_123_456n);
  assert.equal((await ufs.stat('/a.txt')).mtime.toISOString(), '2020-01-02T03:04:05.678Z');
  await ufs.truncate('/etc/passwd', 4);
  assert.equal(await ufs.readFile('/etc/passwd', 'utf8'), 'root');
  await ufs.access('/usr/bin/ls', C.X_OK);
  await ufs.lchown('/link', -1, -1);
  lowerUntouched(f);
});

test('open -> FileHandle: positional and sequential read/write, stat, truncate, readFile', async (t) => {
  const f = setup(t, LOWER);
  const { ufs } = f;
  const h = await ufs.open('/a.txt', 'r+');
  assert.ok(h instanceof FileHandle);
  const buf = Buffer.alloc(5);
  assert.deepEqual(await h.read(buf, 0, 5, 0), { bytesRead: 5, buffer: buf });
  assert.equal(buf.toString(), 'lower');
  assert.equal((await h.write('LOWER', 0)).bytesWritten, 5);
  assert.equal((await h.stat()).size, 8);
  await h.truncate(5);
  assert.equal(await h.readFile('utf8'), 'LOWER'); // positional calls leave the file position at 0
  await h.close();
  await h.close(); // twice is fine
  await assert.rejects(h.read(Buffer.alloc(1), 0, 1, 0), { code: 'EBADF' });
  assert.equal(await ufs.readFile('/a.txt', 'utf8'), 'LOWER');

  const w = await ufs.open('/seq.txt', 'w', 0o644);
  await w.write('one ');
  await w.write(Buffer.from('two '));
  await w.writeFile('three');
  await w.close();
  assert.equal(await ufs.readFile('/seq.txt', 'utf8'), 'one two three');

  const a = await ufs.open('/seq.txt', 'a+');
  await a.write('!', 0); // O_APPEND: position ignored
  assert.equal((await a.read(Buffer.alloc(20), 0, 20, 0)).bytesRead, 14);
  await a.close();
  assert.equal(await ufs.readFile('/seq.txt', 'utf8'), 'one two three!');
  await assert.rejects(ufs.open('/seq.txt', 'wx'), { code: 'EEXIST', syscall: 'open' });
  const r = await ufs.open('/seq.txt');
  await assert.rejects(r.write('x'), { code: 'EBADF', syscall: 'write' });
  await r.close();
  lowerUntouched(f);
});

test('copyFile keeps mode, COPYFILE_EXCL refuses to overwrite', async (t) => {
  const f = setup(t, LOWER);
  const { ufs } = f;
  await ufs.copyFile('/usr/bin/ls', '/ls2');
  assert.equal(await ufs.readFile('/ls2', 'utf8'), '#!/bin/sh\n');
  assert.equal((await ufs.stat('/ls2')).mode & 0o777, 0o755);
  await ufs.copyFile('/a.txt', '/ls2');
  assert.equal(await ufs.readFile('/ls2', 'utf8'), 'lower a\n');
  await assert.rejects(ufs.copyFile('/a.txt', '/ls2', C.COPYFILE_EXCL), { code: 'EEXIST', syscall: 'copyfile', dest: '/ls2' });
  lowerUntouched(f);
});

test('rmdir: ENOTEMPTY while merged entries remain, then works once all are gone', async (t) => {
  const f = setup(t, LOWER);
  const { ufs } = f;
  await assert.rejects(ufs.rmdir('/etc'), { code: 'ENOTEMPTY', syscall: 'rmdir' });
  await ufs.unlink('/etc/passwd');
  await ufs.unlink('/etc/group');
  await ufs.rmdir('/etc');
  await assert.rejects(ufs.readdir('/etc'), { code: 'ENOENT', syscall: 'scandir' });
  assert.equal(readTree(f.upper, { skipPrivate: true })['.wh.etc'], '');
  lowerUntouched(f);
});

test('names: .wh. refused, ENAMETOOLONG past 255 bytes, relative paths and ..', async (t) => {
  const f = setup(t, LOWER);
  const { ufs } = f;
  await assert.rejects(ufs.writeFile('/.wh.x', 'x'), { code: 'EINVAL', syscall: 'open' });
  await assert.rejects(ufs.mkdir('/' + 'n'.repeat(256)), { code: 'ENAMETOOLONG', syscall: 'mkdir' });
  await ufs.mkdir('/' + 'n'.repeat(255));
  assert.equal(await ufs.readFile('etc/../a.txt', 'utf8'), 'lower a\n');
  assert.equal(await ufs.readFile('/../../a.txt', 'utf8'), 'lower a\n');
  lowerUntouched(f);
});

test('a union without a writable branch answers EROFS', async (t) => {
  const tmp = mkTemp('layerfs-api-ro-');
  t.after(() => tmp.cleanup());
  buildTree(tmp.path('l'), LOWER);
  const ufs = new UnionFS(`dirs=${tmp.path('l')}=ro`);
  t.after(() => ufs.close());
  assert.equal(await ufs.readFile('/a.txt', 'utf8'), 'lower a\n');
  await assert.rejects(ufs.appendFile('/a.txt', 'x'), { code: 'EROFS', syscall: 'open', path: '/a.txt' });
  await assert.rejects(ufs.mkdir('/d'), { code: 'EROFS', syscall: 'mkdir' });
  await assert.rejects(ufs.unlink('/a.txt'), { code: 'EROFS', syscall: 'unlink' });
  await assert.rejects(ufs.chmod('/a.txt', 0o600), { code: 'EROFS', syscall: 'chmod' });
  await assert.rejects(ufs.access('/a.txt', C.W_OK), { code: 'EROFS', syscall: 'access' });
});

test('mkdtemp and statfs', async (t) => {
  const f = setup(t, LOWER);
  const { ufs } = f;
  const d = await ufs.mkdtemp('/etc/tmp-');
  assert.match(d, /^\/etc\/tmp-[A-Za-z0-9]{6}$/);
  assert.ok((await ufs.stat(d)).isDirectory());
  assert.equal((await ufs.stat(d)).mode & 0o777, 0o700 & ~process.umask());
  await assert.rejects(ufs.mkdtemp('/nope/x-'), { code: 'ENOENT', syscall: 'mkdtemp', path: /^\/nope\/x-[A-Za-z0-9]{6}$/ });
  const s = await ufs.statfs('/etc');
  assert.ok(s.bsize > 0 && s.blocks > 0 && s.bavail <= s.blocks, JSON.stringify(s));
  lowerUntouched(f);
});

test('chown(path, -1, -1) and fh.chown(-1, -1) copy a lower file up and update its ctime (as the kernel)', async (t) => {
  const f = setup(t, { a: 'a', b: 'b' }, { u: 'u' });
  const wait = (): unknown => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  const before = new Map<string, bigint>();
  for (const p of ['a', 'b', 'u']) before.set(p, (await f.ufs.lstat(p, { bigint: true })).ctimeNs);
  wait();
  await f.ufs.chown('a', -1, -1);
  await f.ufs.lchown('u', -1, -1);
  const fh = await f.ufs.open('b', 'r');
  await fh.chown(-1, -1);
  await fh.close();
  for (const p of ['a', 'b', 'u']) {
    const st = await f.ufs.lstat(p, { bigint: true });
    assert.ok(st.ctimeNs > before.get(p)!, `${p}: ctime moved`);
    assert.equal(Number(st.uid), 0);
  }
  assert.deepEqual(Object.keys(readTree(f.upper, { skipPrivate: true })).sort(), ['a', 'b', 'u'], 'copied up');
  lowerUntouched(f);
});
