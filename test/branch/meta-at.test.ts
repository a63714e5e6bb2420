/**
 * The branch's metadata reads from its root fd (native/meta-at.c): a directory's names and types
 * from one open beneath the root, xattrs through getxattrat/listxattrat. Each answers what the
 * node:fs / `/proc/self/fd` path answers, and a symlink on the way out of the branch stops them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Branch } from '../../src/branch/index.js';
import { branchScratch, codeOf } from '../helpers/branch-scratch.js';
import { mknod, makedev, lsetxattr } from '../../src/sys/index.js';
import { dtOfDirent } from '../../src/engine/lower-index.js';
import { xattrAtWorks } from '../../src/sys/meta-at.js';

function scratch(t: { after(fn: () => void): void }): { root: string; br: string; out: string } {
  return branchScratch(t, 'meta-at');
}

test('readdirTypes lists what readdir lists, with the same d_types, `.`/`..` left out', (t) => {
  const { br, out } = scratch(t);
  fs.mkdirSync(join(br, 'd'));
  fs.writeFileSync(join(br, 'd', 'file'), 'x');
  fs.mkdirSync(join(br, 'd', 'sub'));
  fs.symlinkSync('file', join(br, 'd', 'link'));
  mknod(join(br, 'd', 'wh'), fs.constants.S_IFCHR | 0o600, makedev(0, 0));
  mknod(join(br, 'd', 'fifo'), fs.constants.S_IFIFO | 0o600, 0);
  fs.writeFileSync(join(br, 'd', 'é ünïcode'), '');
  for (let i = 0; i < 3000; i++) fs.writeFileSync(join(br, 'd', `many-${i}-${'x'.repeat(40)}`), ''); // several getdents64 calls
  fs.symlinkSync(out, join(br, 'out'));
  const b = new Branch(br, 'ro', [], 0);
  t.after(() => b.close());
  for (const rel of ['', 'd']) {
    const want = new Map(b.readdir(rel).map((d) => [d.name, dtOfDirent(d)]));
    const got = b.readdirTypes(rel);
    assert.equal(got.size, want.size, rel);
    assert.deepEqual([...got].sort(), [...want].sort(), rel);
  }
  assert.equal(b.readdirTypes('d').get('wh'), 2, 'a whiteout is DT_CHR');
  assert.equal(codeOf(() => b.readdirTypes('nope')), 'ENOENT');
  assert.equal(codeOf(() => b.readdirTypes('d/file')), 'ENOTDIR');
  // a symlink to a directory outside the branch is not followed
  for (const rel of ['out', 'out/.']) {
    const code = codeOf(() => b.readdirTypes(rel));
    assert.ok(code === 'ELOOP' || code === 'ENOTDIR', `${rel}: ${code}`);
    assert.equal(code, codeOf(() => b.readdir(rel)), rel);
  }
});

test('xattr reads from the root fd: values, absence, the root itself, a symlink not followed', (t) => {
  assert.ok(xattrAtWorks(), 'this kernel (6.13+) has getxattrat: the fast path is what is tested');
  const { br } = scratch(t);
  fs.mkdirSync(join(br, 'd'));
  fs.writeFileSync(join(br, 'd', 'f'), 'x');
  fs.symlinkSync('f', join(br, 'd', 'l'));
  lsetxattr(join(br, 'd', 'f'), 'user.k', Buffer.from('v1'), 0);
  lsetxattr(join(br, 'd'), 'user.dir', Buffer.from('D'), 0);
  lsetxattr(br, 'user.root', Buffer.from('R'), 0);
  const big = Buffer.alloc(3000, 0x61);
  lsetxattr(join(br, 'd', 'f'), 'user.big', big, 0);
  const b = new Branch(br, 'ro', [], 0);
  t.after(() => b.close());
  assert.equal(b.tryGetxattr('d/f', 'user.k')?.toString(), 'v1');
  assert.ok(b.tryGetxattr('d/f', 'user.big')?.equals(big), 'a value larger than the first buffer');
  assert.equal(b.getxattr('d', 'user.dir').toString(), 'D');
  assert.equal(b.tryGetxattr('', 'user.root')?.toString(), 'R', 'the root, from its O_PATH fd');
  assert.equal(b.tryGetxattr('d/f', 'user.none'), undefined);
  assert.equal(b.tryGetxattr('d/missing', 'user.k'), undefined);
  assert.equal(b.tryGetxattr('d/l', 'user.k'), undefined, 'the symlink itself, not its target');
  assert.equal(codeOf(() => b.getxattr('d/f', 'user.none')), 'ENODATA');
  assert.equal(codeOf(() => b.getxattr('d/missing', 'user.k')), 'ENOENT');
  assert.deepEqual(b.listxattr('d/f').sort(), ['user.big', 'user.k']);
  assert.deepEqual(b.tryListxattr('d/l'), []);
  assert.deepEqual(b.tryListxattr(''), ['user.root']);
  assert.equal(b.tryListxattr('d/missing'), null);
});
