/**
 * A union rebuilt from the branch state a live one reached through branch changes (what a daemon
 * that takes a mount over does, engine/branch-state.ts): the same branches, permissions and branch
 * ids (ids not reused after), the same inode numbers for every visible name (copied-up files, merged
 * directories of mount branches and of added ones, files of a second filesystem whose slot was
 * given before the rw branch moved to it), and the same inode table file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Union, parseOptions, withBranchState, type UnionNode } from '../../src/engine/index.js';
import { ctx, O_RDWR } from './fixture.js';

function tree(root: string, files: Record<string, string>): string {
  fs.mkdirSync(root, { recursive: true });
  for (const [k, v] of Object.entries(files)) {
    const p = join(root, k);
    if (k.endsWith('/')) fs.mkdirSync(p, { recursive: true });
    else {
      fs.mkdirSync(join(p, '..'), { recursive: true });
      fs.writeFileSync(p, v);
    }
  }
  return root;
}

function node(u: Union, p: string): UnionNode {
  let n = u.root;
  for (const part of p.split('/').filter((s) => s !== '')) n = u.lookup(n, part);
  return n;
}

/** Every visible path -> its inode number (listing numbers and lookup numbers both). */
function numbers(u: Union): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (dir: UnionNode, rel: string): void => {
    for (const e of u.readdir(dir)) {
      if (e.name === '.' || e.name === '..') continue;
      const p = rel ? `${rel}/${e.name}` : e.name;
      const n = u.lookup(dir, e.name);
      out.set(p, u.getattr(n).ino);
      out.set(`${p} (listed)`, e.ino);
      if (u.getattr(n).mode & fs.constants.S_IFDIR) walk(n, p);
    }
  };
  walk(u.root, '');
  return out;
}

function appendTo(u: Union, p: string, data: string): void {
  const fh = u.open(node(u, p), O_RDWR, ctx);
  const b = Buffer.from(data);
  u.write(fh, b, 0, b.length, u.getattr(node(u, p)).size);
  u.release(fh);
}

test('rebuilt from its branch state after add/prepend/mod/del: same list, brids, numbers and inode table', (t) => {
  const tmp = fs.realpathSync(fs.mkdtempSync('/tmp/layerfs-brstate-'));
  const shm = fs.realpathSync(fs.mkdtempSync('/dev/shm/layerfs-brstate-'));
  t.after(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(shm, { recursive: true, force: true });
  });
  assert.notEqual(fs.statSync(tmp).dev, fs.statSync(shm).dev, '/dev/shm is another filesystem');
  const up = tree(join(tmp, 'up'), { 'd/': '', 'e/': '', 'k/': '', 'u.txt': 'u' });
  const lo = tree(join(tmp, 'lo'), { 'd/a': 'a', 'k/x': 'x', f: 'lower f', g: 'lower g', shared: 'lo' });
  const mid = tree(join(tmp, 'mid'), { 'd/b': 'b', 'e/m': 'm', 'p/y': 'y', shared: 'mid' });
  // p (of the rw branch to come) merges a dir of an added branch, first looked up at the end
  const up2 = tree(join(shm, 'up2'), { 'n.txt': 'on shm', 'p/': '' });
  const options = `dirs=${up}=rw:${lo}=ro`;
  const u = new Union(options);
  t.after(() => u.close());
  appendTo(u, 'f', ' + copied up'); // a copy-up: f keeps lo's number through the table
  u.changeBranches(`add:1:${mid}`);
  // e (rw) merges a dir of an ADDED branch: its own number; k merges one of a mount branch: lo's
  assert.equal(u.getattr(node(u, 'e')).ino, fs.statSync(join(up, 'e')).ino);
  assert.equal(u.getattr(node(u, 'k')).ino, fs.statSync(join(lo, 'k')).ino);
  // the rw branch moves to another filesystem (slot 1 given after tmp's slot 0); the table stays in up
  u.changeBranches(`prepend:${up2}=rw,mod:${up}=ro`);
  appendTo(u, 'g', ' + copied up to shm');
  u.changeBranches(`del:${lo}`);
  const before = numbers(u);
  const info = u.info();
  assert.deepEqual(
    info.branches.map((b) => `${b.path}=${b.perm}#${b.id}`),
    [`${up2}=rw#67`, `${up}=ro#64`, `${mid}=ro#66`],
  );
  assert.ok(before.has('g') && before.has('f') && before.has('n.txt') && before.has('d/b'));

  const state = u.branchState();
  assert.equal(state.xino, info.xinoPath);
  assert.equal(state.xino, join(up, '.wh..wh.layerfs.xino'), 'the table stays in the first rw branch the union had');
  // the state survives JSON (the supervisor keeps it as text)
  const copy = JSON.parse(JSON.stringify(state)) as typeof state;
  u.close();

  const plain = new Union(`dirs=${up2}=rw:${up}=ro:${mid}=ro`);
  const plainNumbers = numbers(plain);
  plain.close();
  assert.notDeepEqual(plainNumbers, before, 'a union made afresh from the list gives other numbers (the test can fail)');

  const r = new Union(withBranchState(parseOptions(options), copy));
  t.after(() => r.close());
  assert.deepEqual(r.info().branches, info.branches, 'same branches, permissions and ids');
  assert.equal(r.info().xinoPath, info.xinoPath);
  assert.deepEqual(numbers(r), before, 'every visible name has the number it had');
  assert.equal(fs.readFileSync(join(up2, 'g'), 'utf8'), 'lower g + copied up to shm');
  // ids of branches that left are not given again
  r.changeBranches(`append:${lo}`);
  assert.deepEqual(
    r.info().branches.map((b) => b.id),
    [67, 64, 66, 68],
  );
  // writes go to the rw branch of the rebuilt union
  appendTo(r, 'u.txt', '!');
  assert.equal(fs.readFileSync(join(up2, 'u.txt'), 'utf8'), 'u!');
});

test('withBranchState: a bad state is refused with one line; a workdir= stays only with its rw branch', () => {
  const o = parseOptions('dirs=/a=rw:/b=ro');
  assert.throws(() => withBranchState(o, { branches: [], lastBrid: 64, filesystems: [], mountRoots: [], xino: null }), /branch state: no branch/);
  assert.throws(
    () => withBranchState(o, { branches: [{ path: '/a', perm: 'xx', brid: 64 }], lastBrid: 64, filesystems: [], mountRoots: [], xino: null }),
    /branch state: bad branch/,
  );
  const w = { ...o, workdir: '/w' };
  const keep = withBranchState(w, { branches: [{ path: '/a', perm: 'rw', brid: 64 }], lastBrid: 65, filesystems: [], mountRoots: [], xino: null });
  assert.equal(keep.workdir, '/w');
  assert.equal(keep.branches[0]!.id, 64);
  const moved = withBranchState(w, { branches: [{ path: '/c', perm: 'rw', brid: 66 }, { path: '/a', perm: 'ro', brid: 64 }], lastBrid: 66, filesystems: [], mountRoots: [], xino: null });
  assert.equal(moved.workdir, undefined);
});
