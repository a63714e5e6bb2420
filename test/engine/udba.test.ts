/**
 * udba without FUSE: what the engine drops for a change made directly in a branch (BranchChanges,
 * the events udba=notify hands it) and the re-check on access of udba=reval (Reval, with a clock
 * of the test's own).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, realpathSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseOptions } from '../../src/engine/index.js';
import { EV_CONTENT, EV_CREATE, EV_DELETE, EV_SELF, Reval, udbaModeOf } from '../../src/engine/udba.js';
import { lsetxattr } from '../../src/sys/native.js';
import { ctx, setup } from './fixture.js';

/** Set a directory's times (a change in the same clock tick could leave its mtime as it was). */
function touchDir(p: string, d: Date): void {
  utimesSync(p, d, d);
}

test('udba option: none by default, reval and notify parsed, anything else refused in one line', () => {
  assert.equal(parseOptions('dirs=/a=rw:/b=ro', { isWritable: () => true }).udba, undefined);
  assert.equal(parseOptions('dirs=/a=rw:/b=ro,udba=none', { isWritable: () => true }).udba, undefined);
  assert.equal(parseOptions('dirs=/a=rw:/b=ro,udba=reval', { isWritable: () => true }).udba, 'reval');
  assert.equal(parseOptions('dirs=/a=rw:/b=ro,udba=notify', { isWritable: () => true }).udba, 'notify');
  assert.throws(() => parseOptions('dirs=/a=rw,udba=inotify', { isWritable: () => true }), /udba must be none, reval or notify, not 'inotify'/);
  assert.equal(udbaModeOf('dirs=/a,udba=reval,ro'), 'reval');
  assert.equal(udbaModeOf('dirs=/a'), 'none');
});

test('udba=none: a name made in a lower branch after the directory was read stays unseen', (t) => {
  const f = setup(t, { up: {}, lo: { d: { a: '1' } } });
  assert.deepEqual(f.ls('d'), ['a']);
  writeFileSync(join(f.br.lo!, 'd', 'b'), '2');
  assert.deepEqual(f.ls('d'), ['a'], 'the listing of the lower branch is kept');
  assert.throws(() => f.u.lookup(f.node('d'), 'b'), { code: 'ENOENT' });
});

test('notify: a name made in a lower branch shows after its event; the kernel is told parent and name', (t) => {
  const f = setup(t, { up: {}, lo: { d: { a: '1' } } });
  const d = f.node('d');
  assert.deepEqual(f.ls('d'), ['a']);
  writeFileSync(join(f.br.lo!, 'd', 'b'), '2');
  const k = f.u.changes.event(d, 1, EV_CREATE, 'b', false);
  assert.equal(k.dir, d);
  assert.equal(k.name, 'b');
  assert.deepEqual(f.ls('d'), ['a', 'b']);
  assert.equal(f.cat('d/b'), '2');
});

test('notify: a lower file removed or renamed: the cached node goes, the new name comes', (t) => {
  const f = setup(t, { up: {}, lo: { d: { a: '1', b: '2' } } });
  const d = f.node('d');
  const a = f.node('d/a');
  f.node('d/b');
  rmSync(join(f.br.lo!, 'd', 'a'));
  const k = f.u.changes.event(d, 1, EV_DELETE, 'a', false);
  assert.equal(k.node, a, 'the attributes of the node the kernel holds are stale');
  assert.throws(() => f.u.lookup(d, 'a'), { code: 'ENOENT' });
  renameSync(join(f.br.lo!, 'd', 'b'), join(f.br.lo!, 'd', 'c'));
  f.u.changes.event(d, 1, EV_DELETE, 'b', false);
  f.u.changes.event(d, 1, EV_CREATE, 'c', false);
  assert.deepEqual(f.ls('d'), ['c']);
  assert.throws(() => f.u.lookup(d, 'b'), { code: 'ENOENT' });
});

test('notify: a lower file replaced by another: a new node with the new file\'s number, the old one unlinked', (t) => {
  const f = setup(t, { up: {}, lo: { d: { a: 'old', b: 'new' } } });
  const d = f.node('d');
  const a = f.node('d/a');
  const bIno = f.node('d/b').ino;
  renameSync(join(f.br.lo!, 'd', 'b'), join(f.br.lo!, 'd', 'a'));
  f.u.changes.event(d, 1, EV_DELETE, 'b', false);
  f.u.changes.event(d, 1, EV_CREATE, 'a', false);
  const now = f.node('d/a');
  assert.notEqual(now, a);
  assert.equal(now.ino, bIno, 'the number of the file the name leads to now');
  assert.equal(a.unlinked, true, 'the old node lives on only for open files');
  assert.equal(f.cat('d/a'), 'new');
  // a copy below an upper one going changes nothing visible: the node stays
  const g = setup(t, { up: { d: { x: 'up' } }, lo: { d: { x: 'low' } } });
  const x = g.node('d/x');
  rmSync(join(g.br.lo!, 'd', 'x'));
  g.u.changes.event(g.node('d'), 1, EV_DELETE, 'x', false);
  assert.equal(g.node('d/x'), x);
  assert.equal(x.unlinked, false);
});

test('notify: a whiteout or an opaque marker made in the upper branch hides what is below', (t) => {
  const f = setup(t, { up: { d: {} }, lo: { d: { a: '1', b: '2' }, e: { x: '1' } } });
  const d = f.node('d');
  f.node('d/a');
  writeFileSync(join(f.br.up!, 'd', '.wh.a'), '');
  const k = f.u.changes.event(d, 0, EV_CREATE, '.wh.a', false);
  assert.equal(k.name, 'a', 'the dentry of the hidden name is dropped');
  assert.deepEqual(f.ls('d'), ['b']);
  assert.throws(() => f.u.lookup(d, 'a'), { code: 'ENOENT' });
  // opaque: the directory stops merging with the lower one
  f.node('e/x');
  mkdirSync(join(f.br.up!, 'e'));
  f.u.changes.event(f.u.root, 0, EV_CREATE, 'e', true);
  writeFileSync(join(f.br.up!, 'e', '.wh..wh..opq'), '');
  f.u.changes.event(f.node('e'), 0, EV_CREATE, '.wh..wh..opq', false);
  assert.deepEqual(f.ls('e'), []);
});

test('notify: an opaque xattr set on an upper directory: the kernel drops its children, the lower ones hide', (t) => {
  const f = setup(t, { up: { d: { u: '1' } }, lo: { d: { a: '1' } } });
  const d = f.node('d');
  f.node('d/a');
  f.node('d/u');
  assert.deepEqual(f.ls('d'), ['a', 'u']);
  const chmodOnly = f.u.changes.event(d, 0, EV_SELF, '', true);
  assert.equal(chmodOnly.dir, null, 'attributes alone: only the directory itself');
  assert.equal(chmodOnly.node, d);
  lsetxattr(join(f.br.up!, 'd'), f.u.core.markers.opaque, Buffer.from('y'), 0);
  const k = f.u.changes.event(d, 0, EV_SELF, '', true);
  assert.equal(k.dir, d);
  assert.deepEqual([...(k.names ?? [])].sort(), ['a', 'u']);
  assert.deepEqual(f.ls('d'), ['u']);
  assert.throws(() => f.u.lookup(d, 'a'), { code: 'ENOENT' });
});

test('notify: a directory made in a branch under a known one merges (the cached subtree re-resolves)', (t) => {
  const f = setup(t, { up: { a: { u: '1' } }, lo: {} });
  const a = f.node('a');
  assert.deepEqual(f.ls('a'), ['u']);
  mkdirSync(join(f.br.lo!, 'a'));
  writeFileSync(join(f.br.lo!, 'a', 'l'), '2');
  f.u.changes.event(f.u.root, 1, EV_CREATE, 'a', true);
  assert.deepEqual(f.ls('a'), ['l', 'u']);
  assert.deepEqual([...f.u.changes.layersOf(a)], [0, 1]);
});

test('notify: the union\'s own creates and removes in the rw branch ask the kernel for nothing', (t) => {
  const f = setup(t, { up: {}, lo: { d: { a: '1' } } });
  const d = f.node('d');
  f.u.mkdir(f.u.root, 'n', 0o755, ctx);
  assert.equal(f.u.changes.event(f.u.root, 0, EV_CREATE, 'n', true).dir, null, 'mkdir through the union');
  const { fh } = f.u.create(d, 'c', 0o644, 0, ctx);
  f.u.release(fh);
  assert.equal(f.u.changes.event(d, 0, EV_CREATE, 'c', false).dir, null, 'create through the union');
  f.u.unlink(d, 'c');
  assert.equal(f.u.changes.event(d, 0, EV_DELETE, 'c', false).dir, null, 'unlink through the union');
  f.u.unlink(d, 'a');
  assert.equal(f.u.changes.event(d, 0, EV_CREATE, '.wh.a', false).dir, null, 'the whiteout of an unlink');
  // the same name made from outside is a change
  writeFileSync(join(f.br.up!, 'd', 'out'), 'x');
  assert.equal(f.u.changes.event(d, 0, EV_CREATE, 'out', false).dir, d);
  assert.deepEqual(f.ls('d'), ['out']);
  // a rename through the union: known; a file moved over a cached name from outside (an atomic
  // replace, as editors and config tools do): a change
  f.u.rename(d, 'out', d, 'moved', 0);
  assert.equal(f.u.changes.event(d, 0, EV_CREATE, 'moved', false).dir, null, 'rename through the union');
  const moved = f.node('d/moved');
  writeFileSync(join(f.br.up!, 'd', 'tmp'), 'replaced');
  renameSync(join(f.br.up!, 'd', 'tmp'), join(f.br.up!, 'd', 'moved'));
  const k = f.u.changes.event(d, 0, EV_CREATE, 'moved', false);
  assert.equal(k.dir, d);
  assert.equal(k.node, moved, 'the kernel drops the old file\'s attributes too');
  assert.equal(f.cat('d/moved'), 'replaced');
});

test('notify: a content event names the node (attributes to drop), a private name nothing', (t) => {
  const f = setup(t, { up: {}, lo: { d: { a: '1' } } });
  const a = f.node('d/a');
  const k = f.u.changes.event(f.node('d'), 1, EV_CONTENT, 'a', false);
  assert.equal(k.node, a);
  assert.equal(k.dir, null);
  const p = f.u.changes.event(f.u.root, 0, EV_CREATE, '.wh..wh.layerfs.work', true);
  assert.equal(p.dir, null);
  assert.equal(p.node, null);
});

test('notify: after an overflow everything is read again', (t) => {
  const f = setup(t, { up: {}, lo: { d: { a: '1' }, e: {} } });
  assert.deepEqual(f.ls('d'), ['a']);
  assert.deepEqual(f.ls('e'), []);
  writeFileSync(join(f.br.lo!, 'd', 'b'), '2');
  writeFileSync(join(f.br.lo!, 'e', 'c'), '3');
  rmSync(join(f.br.lo!, 'd', 'a'));
  f.u.changes.everything();
  assert.deepEqual(f.ls('d'), ['b']);
  assert.deepEqual(f.ls('e'), ['c']);
});

test('reval: a directory is re-checked at most once per interval, and sees the change after it', (t) => {
  const f = setup(t, { up: {}, l1: {}, l2: {}, l3: { d: { a: '1' } }, l4: {} });
  let now = 0;
  const r = new Reval(f.u.changes, 500, () => now);
  f.u.core.udbaCheck = (dir) => r.check(dir);
  const d = f.node('d');
  assert.deepEqual(f.ls('d'), ['a']);
  const checks = r.checks;
  for (let i = 0; i < 100; i++) f.u.lookupAttr(d, 'a');
  assert.equal(r.checks, checks, 'no re-check within the interval');
  writeFileSync(join(f.br.l3!, 'd', 'b'), '2');
  // make the directory's mtime differ for sure (same-tick writes on coarse clocks)
  const later = new Date(Date.now() + 5000);
  touchDir(join(f.br.l3!, 'd'), later);
  assert.deepEqual(f.ls('d'), ['a'], 'within the interval: the kept view');
  now += 600;
  assert.deepEqual(f.ls('d'), ['a', 'b'], 'after it: re-checked, changed');
  assert.equal(r.changes, 1);
  // stamps: only the branch the directory lives in, plus the writable one (2 of 5 branches)
  const st = f.u.changes.stamps(d);
  assert.deepEqual([st[0], st[6]], [3, 0]);
  assert.equal(st.length, 6 + 2, 'lower: 6 numbers; absent in the rw branch: 2');
});

test('reval: a file made in the writable branch over a cached lower one shows after the interval', (t) => {
  const f = setup(t, { up: { d: {} }, lo: { d: { a: 'lower' } } });
  let now = 0;
  const r = new Reval(f.u.changes, 500, () => now);
  f.u.core.udbaCheck = (dir) => r.check(dir);
  assert.equal(f.cat('d/a'), 'lower');
  writeFileSync(join(f.br.up!, 'd', 'a'), 'upper');
  touchDir(join(f.br.up!, 'd'), new Date(Date.now() + 5000));
  now += 600;
  assert.equal(f.cat('d/a'), 'upper');
});

test('notify: where a directory is watched is reached beneath its branch: a dir swapped for a symlink to outside is not watched', (t) => {
  const f = setup(t, { up: {}, lo: { d: { e: { a: '1' } } } });
  const e = f.node('d/e');
  const watched = (): string => f.u.changes.atWatchPath(e, 1, (p) => realpathSync(p));
  assert.equal(watched(), join(f.br.lo!, 'd', 'e'));
  const outside = join(f.dir, 'outside');
  mkdirSync(outside);
  rmSync(join(f.br.lo!, 'd'), { recursive: true });
  mkdirSync(join(f.br.lo!, 'd'));
  symlinkSync(outside, join(f.br.lo!, 'd', 'e'));
  assert.throws(watched, (err: NodeJS.ErrnoException) => ['ELOOP', 'ENOTDIR', 'EXDEV'].includes(err.code ?? ''), 'the symlink is not followed');
  rmSync(join(f.br.lo!, 'd'), { recursive: true });
  symlinkSync(f.dir, join(f.br.lo!, 'd'));
  mkdirSync(join(f.dir, 'e'));
  assert.throws(watched, (err: NodeJS.ErrnoException) => ['ELOOP', 'ENOTDIR', 'EXDEV'].includes(err.code ?? ''), 'nor a symlinked parent');
});
