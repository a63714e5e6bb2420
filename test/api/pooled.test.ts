/**
 * Several writable branches through the in-process fs.promises-like API: writeFile, mkdir -p,
 * rename, link, rm and copy-ups land where create=/cpup= say, ENOSPC on a full tmpfs moves on to
 * the other one (create=mfs), and the errors have node:fs's shapes (EXDEV, ENOSPC).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UnionFS } from '../../src/api/index.js';

function tmpDir(cleanups: Array<() => void>, size?: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-api-pool-'));
  if (size) {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},nr_inodes=64`, 'tmpfs', dir]);
    cleanups.push(() => {
      execFileSync('umount', [dir]);
      fs.rmdirSync(dir);
    });
  } else cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** d1, d2 writable (tmpfs of `size` when given), base read-only; clean-ups run last first. */
function pool(t: TestContext, opts: string, size?: string): { ufs: UnionFS; d1: string; d2: string; base: string } {
  const cleanups: Array<() => void> = [];
  t.after(() => {
    for (const f of cleanups.reverse()) f();
  });
  const d1 = tmpDir(cleanups, size);
  const d2 = tmpDir(cleanups, size);
  const base = tmpDir(cleanups);
  fs.mkdirSync(path.join(base, 'etc'));
  fs.writeFileSync(path.join(base, 'etc', 'conf'), 'lower conf\n');
  const ufs = new UnionFS(`dirs=${d1}=rw:${d2}=rw:${base}=ro${opts ? ',' + opts : ''}`);
  cleanups.push(() => ufs.close());
  return { ufs, d1, d2, base };
}

test('api: create=rr spreads new files, mkdir -p makes parents where the file goes, all readable', async (t) => {
  const { ufs, d1, d2 } = pool(t, 'create=rr');
  for (const n of ['a', 'b', 'c', 'd']) await ufs.writeFile(`/${n}`, n);
  assert.deepEqual(fs.readdirSync(d1).filter((n) => !n.startsWith('.wh.')).sort(), ['a', 'c']);
  assert.deepEqual(fs.readdirSync(d2).filter((n) => !n.startsWith('.wh.')).sort(), ['b', 'd']);
  await ufs.mkdir('/x/y/z', { recursive: true });
  await ufs.writeFile('/x/y/z/f', 'deep');
  assert.equal(await ufs.readFile('/x/y/z/f', 'utf8'), 'deep');
  assert.deepEqual((await ufs.readdir('/')).sort(), ['a', 'b', 'c', 'd', 'etc', 'x']);
  for (const n of ['a', 'b', 'c', 'd']) assert.equal(await ufs.readFile(`/${n}`, 'utf8'), n);
});

test('api: create=mfs sends each new file to the disk with the most room; create=tdp reports ENOSPC', async (t) => {
  const { ufs, d1, d2 } = pool(t, 'create=mfs:0', '256k');
  await ufs.writeFile('/first', Buffer.alloc(150 * 1024, 1));
  const firstOn = fs.existsSync(path.join(d1, 'first')) ? d1 : d2;
  await ufs.writeFile('/second', Buffer.alloc(150 * 1024, 2)); // the other disk has more room now
  const secondOn = fs.existsSync(path.join(d1, 'second')) ? d1 : d2;
  assert.notEqual(secondOn, firstOn);
  assert.ok(fs.existsSync(path.join(secondOn, 'second')));
  assert.equal((await ufs.readFile('/first')).length, 150 * 1024);
  assert.equal((await ufs.readFile('/second'))[0], 2);

  const q = pool(t, '', '256k');
  fs.writeFileSync(path.join(q.d1, 'fill'), Buffer.alloc(256 * 1024 - 4096 * 2, 1));
  await assert.rejects(q.ufs.writeFile('/big', Buffer.alloc(64 * 1024, 3)), (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, 'ENOSPC');
    assert.equal(e.syscall, 'write');
    return true;
  });
});

test('api: copy-up per cpup=bu, whiteout next to it, rename across branches EXDEV as AUFS', async (t) => {
  const { ufs, d1, d2, base } = pool(t, 'cpup=bu');
  await ufs.appendFile('/etc/conf', 'upper\n');
  assert.equal(fs.readFileSync(path.join(d2, 'etc', 'conf'), 'utf8'), 'lower conf\nupper\n');
  assert.equal(fs.readFileSync(path.join(base, 'etc', 'conf'), 'utf8'), 'lower conf\n');
  assert.equal(await ufs.readFile('/etc/conf', 'utf8'), 'lower conf\nupper\n');
  await ufs.rm('/etc/conf');
  assert.ok(fs.existsSync(path.join(d2, 'etc', '.wh.conf')));
  await assert.rejects(ufs.stat('/etc/conf'), { code: 'ENOENT' });
  // a file on d2 cannot replace a name that lives on d1 above it
  fs.writeFileSync(path.join(d1, 'top'), 'top');
  await ufs.writeFile('/etc/low', 'x'); // tdp create: etc is on d2 only -> d2
  assert.ok(fs.existsSync(path.join(d2, 'etc', 'low')));
  await assert.rejects(ufs.rename('/etc/low', '/top'), { code: 'EXDEV' });
  // into a dir of d1 only: the dir is made on d2, the file stays one file (a hard link works too)
  fs.mkdirSync(path.join(d1, 'only1'));
  await ufs.rename('/etc/low', '/only1/low');
  await ufs.link('/only1/low', '/etc/again');
  assert.equal((await ufs.stat('/only1/low')).nlink, 2);
  assert.equal((await ufs.stat('/only1/low')).ino, (await ufs.stat('/etc/again')).ino);
  assert.ok(fs.existsSync(path.join(d2, 'only1', 'low')));
});
