/**
 * Live branch changes at the engine (no FUSE): AUFS's remount options add/ins/append/prepend/del/mod
 * through Union.changeBranches, the merged view after each, all-or-nothing on a bad piece, EBUSY
 * for a branch with open files, inode numbers of files that stay visible, and the parser's errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ctx, O_RDONLY, O_RDWR, setup, writeFile } from './fixture.js';
import { parseBranchChanges } from '../../src/engine/branch-changes.js';
import { Union } from '../../src/engine/index.js';

const perms = (u: Union) => u.info().branches.map((b) => `${b.path}=${b.perm}`);

function mkBranch(dir: string, name: string, files: Record<string, string>): string {
  const p = join(dir, name);
  fs.mkdirSync(p);
  for (const [k, v] of Object.entries(files)) {
    fs.mkdirSync(join(p, k, '..'), { recursive: true });
    fs.writeFileSync(join(p, k), v);
  }
  return p;
}

test('add/ins/append/prepend: the new branch shows at its place at once (lookups and listings cached before)', (t) => {
  const f = setup(t, { up: { u: 'up' }, low: { shared: 'low', d: { a: 'a' } } });
  assert.equal(f.cat('shared'), 'low');
  assert.deepEqual(f.ls('d').sort(), ['a']);
  assert.throws(() => f.node('mid-only'), /ENOENT/);
  const lowShared = f.node('shared');
  const held = f.u.open(lowShared, O_RDONLY, ctx);
  const mid = mkBranch(f.dir, 'mid', { shared: 'mid', 'mid-only': 'm', 'd/b': 'b' });
  f.u.changeBranches(`add:1:${mid}`);
  const midShared = f.node('shared');
  assert.notEqual(midShared, lowShared, 'the name leads to another file: a new node');
  assert.equal(midShared.ino, fs.statSync(join(mid, 'shared')).ino, 'with the new file\'s number');
  assert.equal(lowShared.unlinked, true);
  const b = Buffer.alloc(8);
  assert.equal(b.toString('utf8', 0, f.u.read(held, b, 0, 8, 0)), 'low', 'a file open before reads its own file');
  f.u.release(held);
  assert.deepEqual(perms(f.u), [`${f.br.up}=rw`, `${mid}=ro`, `${f.br.low}=ro`]);
  assert.equal(f.cat('shared'), 'mid', 'the new branch is above low');
  assert.equal(f.cat('mid-only'), 'm');
  assert.deepEqual(f.ls('d').sort(), ['a', 'b'], 'a merged dir lists the new branch');
  const bottom = mkBranch(f.dir, 'bottom', { shared: 'bottom', deep: 'deep' });
  f.u.changeBranches(`append:${bottom}`);
  assert.equal(f.cat('shared'), 'mid');
  assert.equal(f.cat('deep'), 'deep');
  const ins = mkBranch(f.dir, 'ins', { shared: 'ins' });
  f.u.changeBranches(`ins:1:${ins}=ro`);
  assert.equal(f.cat('shared'), 'ins');
  assert.deepEqual(
    f.u.info().branches.map((b) => b.path),
    [f.br.up, ins, mid, f.br.low, bottom],
  );
  // prepend a read-only branch over a rw one: AUFS's rule (rw only topmost) refuses it ...
  const top = mkBranch(f.dir, 'top', { shared: 'top' });
  assert.throws(() => f.u.changeBranches(`prepend:${top}`), /rw branch must be the topmost/);
  // ... unless the rw one turns ro in the same remount (a read-only mount may have no rw branch)
  const before = perms(f.u);
  assert.throws(() => f.u.changeBranches(`prepend:${top},mod:${f.br.up}=ro`), /no writable branch/);
  assert.deepEqual(perms(f.u), before, 'nothing changed');
});

test('prepend a new rw branch on a read-only union: writes go there, with its own work dir', (t) => {
  const f = setup(t, { a: { f: 'a' }, b: { g: 'b' } }, '', ['ro', 'ro']);
  assert.equal(f.u.writable, false);
  assert.throws(() => writeFile(f.u, f.u.root, 'n', 'x'), /EROFS/);
  const up = mkBranch(f.dir, 'newup', {});
  f.u.changeBranches(`prepend:${up}=rw`);
  assert.equal(f.u.writable, true);
  writeFile(f.u, f.u.root, 'n', 'new');
  assert.equal(fs.readFileSync(join(up, 'n'), 'utf8'), 'new');
  const fh = f.u.open(f.node('f'), O_RDWR, ctx);
  f.u.write(fh, Buffer.from('A'), 0, 1, 0);
  f.u.release(fh);
  assert.equal(fs.readFileSync(join(up, 'f'), 'utf8'), 'A', 'copied up into the new rw branch');
  assert.equal(fs.readFileSync(join(f.br.a!, 'f'), 'utf8'), 'a', 'lower untouched');
});

test('del: the branch leaves the view; mod: rw -> ro makes the union read-only, ro -> rw writable again', (t) => {
  const f = setup(t, { up: { u: 'u' }, mid: { m: 'm', shared: 'mid' }, low: { shared: 'low' } }, 'ro');
  assert.equal(f.cat('shared'), 'mid');
  f.u.changeBranches(`del:${f.br.mid}`);
  assert.equal(f.cat('shared'), 'low');
  assert.throws(() => f.node('m'), /ENOENT/);
  f.u.changeBranches(`mod:${f.br.up}=ro`);
  assert.equal(f.u.writable, false);
  assert.throws(() => writeFile(f.u, f.u.root, 'n', 'x'), /EROFS/);
  f.u.changeBranches(`mod:${f.br.up}=rw`);
  writeFile(f.u, f.u.root, 'n', 'x');
  assert.equal(fs.readFileSync(join(f.br.up!, 'n'), 'utf8'), 'x');
  // a mount made `ro` may drop its last writable branch
  f.u.changeBranches(`del:${f.br.up}`);
  assert.deepEqual(perms(f.u), [`${f.br.low}=ro`]);
  assert.equal(f.cat('shared'), 'low');
});

test('all or nothing: a bad piece anywhere changes nothing and names the problem', (t) => {
  const f = setup(t, { up: { u: 'u' }, low: { l: 'l' } });
  const x = mkBranch(f.dir, 'x', { xf: 'x' });
  const before = perms(f.u);
  const cases: Array<[string, RegExp]> = [
    [`add:1:${x},add:1:${f.dir}/missing`, /missing does not exist/],
    [`add:1:${x},add:7:${f.dir}`, /index 7 is out of range \(0\.\.3\)/],
    [`add:1:${x}=rx`, /unknown branch permission 'rx'/],
    [`add:1:${x},del:${f.dir}/nope`, /is not a branch of this mount/],
    [`add:1:${x},del:${f.br.up}`, /no writable branch on a read-write mount/],
    [`add:1:${x},mod:${f.br.up}=ro`, /no writable branch/],
    [`add:1:${x},add:2:${x}`, /is already branch 1/],
    [`add:1:${f.br.low}`, /already branch/],
    [`add:1:${join(f.br.low!, '..')}`, /is inside/],
    [`add:x:${x}`, /needs a branch index/],
    [`mod:${f.br.low}`, /needs a permission/],
    [`add:1:${x},mod:${f.br.low}=rw`, /more than one rw branch/],
    ['rw,relatime', /nothing to change/],
  ];
  for (const [opts, re] of cases) {
    assert.throws(() => f.u.changeBranches(opts), (e: Error) => {
      assert.match(e.message, re, opts);
      assert.equal(e.message.includes('\n'), false, 'one line');
      return true;
    });
    assert.deepEqual(perms(f.u), before, `unchanged after ${opts}`);
    assert.throws(() => f.node('xf'), /ENOENT/);
  }
  assert.equal(f.cat('l'), 'l');
});

test('del of a branch with an open file answers EBUSY; after close it goes', (t) => {
  const f = setup(t, { up: {}, low: { l: 'l' } }, 'ro');
  const fh = f.u.open(f.node('l'), O_RDONLY, ctx);
  assert.throws(() => f.u.changeBranches(`del:${f.br.low}`), (e: NodeJS.ErrnoException) => e.code === 'EBUSY' && /1 file open/.test(e.message));
  assert.equal(f.cat('l'), 'l');
  f.u.release(fh);
  f.u.changeBranches(`del:${f.br.low}`);
  assert.throws(() => f.node('l'), /ENOENT/);
});

test('an open file keeps working when branches move around it (its branch index follows)', (t) => {
  const f = setup(t, { up: { w: 'w0' }, low: { l: 'l' } });
  const fh = f.u.open(f.node('w'), O_RDWR, ctx);
  const mid = mkBranch(f.dir, 'mid', { m: 'm' });
  f.u.changeBranches(`add:1:${mid}`);
  f.u.write(fh, Buffer.from('W1'), 0, 2, 0);
  // ftruncate through the handle (setattr with fh) still finds it in the rw branch
  f.u.setattr(f.node('w'), { size: 1 }, ctx, fh);
  f.u.release(fh);
  assert.equal(fs.readFileSync(join(f.br.up!, 'w'), 'utf8'), 'W');
});

test('inode numbers of files that stay visible do not change (merged rw dir included)', (t) => {
  const f = setup(t, { up: { d: { u: 'u' }, top: 't' }, low: { d: { l: 'l' }, lo: 'lo' } });
  const names = ['d', 'd/u', 'd/l', 'top', 'lo'];
  const before = names.map((p) => f.u.getattr(f.node(p)).ino);
  // new branch on another filesystem (a tmpfs, when /dev/shm is one) and on the same one
  const shm = fs.mkdtempSync('/dev/shm/layerfs-br-');
  t.after(() => fs.rmSync(shm, { recursive: true, force: true }));
  fs.mkdirSync(join(shm, 'd'));
  fs.writeFileSync(join(shm, 'd', 'n'), 'n');
  const same = mkBranch(f.dir, 'same', { 'd/s': 's', other: 'o' });
  f.u.changeBranches(`add:1:${shm},append:${same}`);
  assert.deepEqual(names.map((p) => f.u.getattr(f.node(p)).ino), before, 'cached nodes');
  const nIno = f.u.getattr(f.node('d/n')).ino;
  assert.ok(!before.includes(nIno));
  if (fs.statSync(shm).dev !== fs.statSync(f.dir).dev) assert.ok(nIno >= 2 ** 44, 'a new filesystem gets a new slot');
  assert.equal(f.u.getattr(f.node('other')).ino, fs.statSync(join(same, 'other')).ino, 'same filesystem: real st_ino');
  // a fresh union over the final list (nothing cached) gives the same numbers
  f.u.changeBranches(`del:${shm}`);
  assert.deepEqual(names.map((p) => f.u.getattr(f.node(p)).ino), before, 'after del');
  f.remount();
  assert.deepEqual(names.map((p) => f.u.getattr(f.node(p)).ino), before, 'after a real remount');
});

test('parse: AUFS spellings, relative paths, escapes, others kept', () => {
  const r = parseBranchChanges('remount,rw,add:0:a=rw,ins:2:/x\\,y=ro+wh,append:/b,prepend:c,del:/d,mod:/e=rr,allow_other', '/base');
  assert.deepEqual(r.others, ['remount', 'rw', 'allow_other']);
  assert.deepEqual(
    r.changes.map((c) => [c.op, 'index' in c ? c.index : null, c.path, 'perm' in c ? (c.perm ?? null) : null]),
    [
      ['add', 0, '/base/a', 'rw'],
      ['add', 2, '/x,y', 'ro'],
      ['add', 'end', '/b', null],
      ['add', 0, '/base/c', null],
      ['del', null, '/d', null],
      ['mod', null, '/e', 'rr'],
    ],
  );
});

test('a permission change keeps a mount branch one: a merged rw dir first looked up after it still takes the lower number', (t) => {
  const f = setup(t, { up: { d: { u: 'u' } }, low: { d: { l: 'l' } } });
  f.u.changeBranches(`mod:${f.br.low}=rr`);
  const n = f.u.getattr(f.node('d')).ino;
  assert.equal(n, fs.statSync(join(f.br.low!, 'd')).ino, 'the lower directory\'s number, as at mount');
  f.remount();
  assert.equal(f.u.getattr(f.node('d')).ino, n, 'and the same after a real remount');
});

test('a directory whose topmost copy moves to a new branch keeps its number, also once forgotten and after a real mount', (t) => {
  const f = setup(t, { up: {}, low: { d: { l: 'l' } } });
  const dn = f.node('d');
  const before = f.u.getattr(dn).ino;
  const mid = mkBranch(f.dir, 'mid', { 'd/m': 'm' });
  f.u.changeBranches(`add:1:${mid}`);
  f.u.forget(dn); // the kernel forgot it before any use (its dentry was invalidated by the change)
  assert.equal(f.u.getattr(f.node('d')).ino, before, 'looked up again');
  assert.deepEqual(f.ls('d').sort(), ['l', 'm']);
  f.u.close();
  const again = new Union(`dirs=${f.br.up}=rw:${mid}=ro:${f.br.low}=ro`);
  t.after(() => again.close());
  assert.equal(again.getattr(again.lookup(again.root, 'd')).ino, before, 'a new union over the new list (inode table kept)');
});

test('a node replaced by a branch change is stale (ESTALE for a transport) unless a handle holds it; one merely gone is not', (t) => {
  const f = setup(t, { up: {}, low: { a: 'a', b: 'b', gone: 'g' } }, 'ro');
  const a = f.node('a');
  const b = f.node('b');
  const gone = f.node('gone');
  const held = f.u.open(b, O_RDONLY, ctx);
  const mid = mkBranch(f.dir, 'mid', { a: 'A', b: 'B' });
  f.u.changeBranches(`add:1:${mid}`);
  assert.equal(f.u.isStale(a), true, 'replaced, not open');
  assert.equal(f.u.isStale(b), false, 'replaced but open: its handle still reads its file');
  assert.equal(f.u.isStale(f.node('a')), false, 'the new node');
  f.u.release(held);
  f.u.changeBranches(`del:${f.br.low}`);
  assert.equal(f.u.isStale(gone), false, 'gone is ENOENT, not stale');
  assert.equal(gone.unlinked, true);
});
