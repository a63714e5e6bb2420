/**
 * Error shapes: the same mistake made on a plain directory through node:fs/promises and on a
 * union (the same content in its lower branch) through UnionFS must fail alike: same code,
 * errno, syscall, and the same path/dest (as the caller wrote them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { constants as C } from 'node:fs';
import { UnionFS } from '../../src/api/index.js';
import { buildTree, mkTemp, type Spec } from '../helpers/tree-spec.js';

const SPEC: Spec = {
  f: 'x',
  dir: { g: 'y' },
  loop: { symlink: 'loop' },
  ln: { symlink: 'dir' },
  dangling: { symlink: 'dir/new' },
  dangling2: { symlink: 'nope/new' },
};

/** Operations with the same arguments as node:fs/promises, the path builder given. */
type Api = Pick<
  typeof fsp,
  | 'readFile' | 'writeFile' | 'appendFile' | 'readdir' | 'mkdir' | 'rm' | 'rmdir' | 'unlink' | 'rename'
  | 'symlink' | 'readlink' | 'link' | 'chmod' | 'chown' | 'lchown' | 'utimes' | 'truncate' | 'copyFile'
  | 'access' | 'stat' | 'lstat' | 'open' | 'realpath'
>;

const CASES: Record<string, (fs: Api, p: (s: string) => string) => Promise<unknown>> = {
  'readFile missing': (fs, p) => fs.readFile(p('nope')),
  'readFile of a dir': (fs, p) => fs.readFile(p('dir')),
  'readFile trailing slash on a file': (fs, p) => fs.readFile(p('f/')),
  'writeFile on a dir': (fs, p) => fs.writeFile(p('dir'), 'x'),
  'writeFile under a file': (fs, p) => fs.writeFile(p('f/x'), 'x'),
  'writeFile in a missing dir': (fs, p) => fs.writeFile(p('nope/x'), 'x'),
  'appendFile on a dir': (fs, p) => fs.appendFile(p('dir'), 'x'),
  'readdir of a file': (fs, p) => fs.readdir(p('f')),
  'readdir missing': (fs, p) => fs.readdir(p('nope')),
  'mkdir existing': (fs, p) => fs.mkdir(p('dir')),
  'mkdir recursive under a file': (fs, p) => fs.mkdir(p('f/a/b'), { recursive: true }),
  'mkdir recursive over a file': (fs, p) => fs.mkdir(p('f'), { recursive: true }),
  'mkdir in a missing dir': (fs, p) => fs.mkdir(p('nope/a')),
  'rm missing': (fs, p) => fs.rm(p('nope')),
  'rmdir not empty': (fs, p) => fs.rmdir(p('dir')),
  'rmdir of a file': (fs, p) => fs.rmdir(p('f')),
  'rmdir missing': (fs, p) => fs.rmdir(p('nope')),
  'unlink of a dir': (fs, p) => fs.unlink(p('dir')),
  'unlink missing': (fs, p) => fs.unlink(p('nope')),
  'rename missing': (fs, p) => fs.rename(p('nope'), p('x')),
  'rename dir over a file': (fs, p) => fs.rename(p('dir'), p('f')),
  'rename file over a dir': (fs, p) => fs.rename(p('f'), p('dir')),
  'rename dir into itself': (fs, p) => fs.rename(p('dir'), p('dir/sub')),
  'rename a file onto its own parent dir': (fs, p) => fs.rename(p('dir/g'), p('dir')),
  'rename a missing name to under a file': (fs, p) => fs.rename(p('dir/nope'), p('f/x')),
  'symlink over existing': (fs, p) => fs.symlink('t', p('f')),
  'readlink of a file': (fs, p) => fs.readlink(p('f')),
  'readlink missing': (fs, p) => fs.readlink(p('nope')),
  'link of a dir': (fs, p) => fs.link(p('dir'), p('dl')),
  'link over existing': (fs, p) => fs.link(p('f'), p('dir/g')),
  'link missing': (fs, p) => fs.link(p('nope'), p('x')),
  'chmod missing': (fs, p) => fs.chmod(p('nope'), 0o644),
  'chown missing': (fs, p) => fs.chown(p('nope'), 0, 0),
  'lchown missing': (fs, p) => fs.lchown(p('nope'), 0, 0),
  'utimes missing': (fs, p) => fs.utimes(p('nope'), 1, 1),
  'truncate of a dir': (fs, p) => fs.truncate(p('dir')),
  'truncate missing': (fs, p) => fs.truncate(p('nope')),
  'copyFile COPYFILE_EXCL over existing': (fs, p) => fs.copyFile(p('f'), p('dir/g'), C.COPYFILE_EXCL),
  'copyFile missing': (fs, p) => fs.copyFile(p('nope'), p('z')),
  'access missing': (fs, p) => fs.access(p('nope')),
  'stat symlink loop': (fs, p) => fs.stat(p('loop')),
  'stat through a file': (fs, p) => fs.stat(p('f/x')),
  'lstat in a missing dir': (fs, p) => fs.lstat(p('nope/x')),
  'open wx existing': (fs, p) => fs.open(p('f'), 'wx'),
  'open missing': (fs, p) => fs.open(p('nope')),
  'open a dir for writing': (fs, p) => fs.open(p('dir'), 'r+'),
  'realpath missing': (fs, p) => fs.realpath(p('nope')),
  'realpath loop': (fs, p) => fs.realpath(p('loop/x')),
  'writeFile through a symlink loop': (fs, p) => fs.writeFile(p('loop'), 'x'),
  'open wx on a dangling symlink': (fs, p) => fs.open(p('dangling'), 'wx'),
  'writeFile through a dangling symlink into a missing dir': (fs, p) => fs.writeFile(p('dangling2'), 'x'),
  'read of a closed FileHandle': async (fs, p) => {
    const h = await fs.open(p('f'));
    await h.close();
    return h.read(Buffer.alloc(1), 0, 1, 0);
  },
  'read of a dir FileHandle': async (fs, p) => {
    const h = await fs.open(p('dir'));
    try {
      return await h.read(Buffer.alloc(1), 0, 1, 0);
    } finally {
      await h.close();
    }
  },
};

interface Shape {
  code: unknown;
  errno: unknown;
  syscall: unknown;
  path: unknown;
  dest: unknown;
}

async function shapeOf(fn: () => Promise<unknown>, prefix: string): Promise<Shape | 'ok'> {
  try {
    await fn();
    return 'ok';
  } catch (e) {
    const x = e as { code?: unknown; errno?: unknown; syscall?: unknown; path?: unknown; dest?: unknown };
    const strip = (v: unknown): unknown => (typeof v === 'string' && v.startsWith(prefix) ? '/' + v.slice(prefix.length) : v);
    return { code: x.code, errno: x.errno, syscall: x.syscall, path: strip(x.path), dest: strip(x.dest) };
  }
}

for (const [name, op] of Object.entries(CASES)) {
  test(`same error as node:fs: ${name}`, async (t) => {
    const tmp = mkTemp('layerfs-api-err-');
    t.after(() => tmp.cleanup());
    const plain = tmp.path('plain');
    buildTree(plain, SPEC);
    buildTree(tmp.path('lower'), SPEC);
    buildTree(tmp.path('upper'), {});
    const ufs = new UnionFS(`dirs=${tmp.path('upper')}=rw:${tmp.path('lower')}=ro`);
    t.after(() => ufs.close());

    const expected = await shapeOf(() => op(fsp, (s) => `${plain}/${s}`), `${plain}/`);
    const actual = await shapeOf(() => op(ufs as unknown as Api, (s) => `/${s}`), '/');
    assert.notEqual(expected, 'ok', 'the case must be a mistake on node:fs too');
    if (expected !== 'ok' && typeof expected.code === 'string' && expected.code === 'EBADF') {
      // node's closed-FileHandle error has no errno; compare code and syscall only
      assert.ok(actual !== 'ok');
      assert.equal((actual as Shape).code, expected.code);
      assert.equal((actual as Shape).syscall, expected.syscall);
      return;
    }
    assert.deepEqual(actual, expected);
  });
}

test('error messages read like node:fs', async (t) => {
  const tmp = mkTemp('layerfs-api-err-');
  t.after(() => tmp.cleanup());
  buildTree(tmp.path('lower'), SPEC);
  const ufs = new UnionFS(`dirs=${tmp.path('lower')}=ro`);
  t.after(() => ufs.close());
  await assert.rejects(ufs.readFile('/x'), { message: "ENOENT: no such file or directory, open '/x'" });
  await assert.rejects(ufs.rename('/nope', '/b'), { message: "ENOENT: no such file or directory, rename '/nope' -> '/b'" });
  await assert.rejects(ufs.rm('/dir'), { code: 'ERR_FS_EISDIR', syscall: 'rm', message: 'Path is a directory: rm returned EISDIR (is a directory) /dir' });
  await assert.rejects(ufs.writeFile('/new', 'x'), { code: 'EROFS', syscall: 'open', path: '/new' });
});
