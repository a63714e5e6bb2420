/**
 * The udba=notify watcher without a mount: a real engine union, node ids of the test's own, the
 * notifications it would send collected. Also what the kernel may do to it: refuse a watch past the
 * user's limit (ENOSPC), overflow the event queue.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FsError } from '../../src/errors/index.js';
import type { UnionNode } from '../../src/engine/node.js';
import { IN_Q_OVERFLOW, Inotify, type InotifyEvent } from '../../src/sys/inotify.js';
import { BranchWatcher, type InotifyLike, type Notice } from '../../src/fuse/udba-watch.js';
import { setup } from '../engine/fixture.js';

function harness(t: Parameters<typeof setup>[0], ino?: InotifyLike) {
  const f = setup(t, { up: {}, lo: { d: { a: '1' }, e: { b: '2' }, g: {} } });
  const ids = new Map<UnionNode, number>([[f.u.root, 1]]);
  const sent: Notice[] = [];
  let limits = 0;
  const w = new BranchWatcher({
    changes: f.u.changes,
    root: f.u.root,
    idsFor: (n) => (ids.has(n) ? [ids.get(n)!] : []),
    known: () => ids.keys(),
    names: (d) => f.u.readdir(d).map((e) => e.name),
    namesIn: (d, bi) => f.u.changes.namesIn(d, bi),
    send: (n) => sent.push(...n),
    onLimit: (isUnwatched) => {
      limits++;
      f.u.revalidate(isUnwatched);
    },
    ...(ino ? { inotify: ino } : {}),
  });
  t.after(() => w.close());
  /** The kernel looks a name up: it gets an id (and a directory its watches). */
  const known = (p: string): UnionNode => {
    const n = f.node(p);
    if (!ids.has(n)) {
      ids.set(n, ids.size + 1);
      w.added(n);
    }
    return n;
  };
  return { f, w, ids, sent, known, limits: () => limits };
}

test('watcher: a file written into a lower branch: the engine sees it, the kernel is told parent and name', (t) => {
  const h = harness(t);
  const d = h.known('d');
  assert.equal(h.w.count, 2 + 1, 'root in both branches, d in the lower one');
  assert.deepEqual(h.f.ls('d'), ['a']);
  writeFileSync(join(h.f.br.lo!, 'd', 'new'), 'x');
  h.w.handle();
  const id = h.ids.get(d)!;
  assert.deepEqual(h.sent, [[1, id, 1], [2, id, 'new']]);
  assert.deepEqual(h.f.ls('d'), ['a', 'new']);
  h.sent.length = 0;
  writeFileSync(join(h.f.br.lo!, 'd', 'new'), 'longer');
  h.w.handle();
  assert.deepEqual(h.sent, [], 'the file is not known to the kernel: nothing to drop');
  const n = h.known('d/new');
  writeFileSync(join(h.f.br.lo!, 'd', 'new'), 'longer still');
  h.w.handle();
  assert.deepEqual(h.sent, [[1, h.ids.get(n)!, 0]], 'known: its attributes are dropped, once for several events');
});

test('watcher: a directory forgotten by the kernel loses its watches', (t) => {
  const h = harness(t);
  const e = h.known('e');
  assert.equal(h.w.count, 3);
  h.w.forgotten(e);
  assert.equal(h.w.count, 2);
  writeFileSync(join(h.f.br.lo!, 'e', 'c'), '');
  h.w.handle();
  assert.deepEqual(h.sent, []);
});

test('watcher: past the watch limit, the directories without a watch are re-checked on access (reval)', (t) => {
  const real = new Inotify();
  let left = 2;
  const limited: InotifyLike = {
    fd: real.fd,
    add: (p, m) => {
      if (left-- <= 0) throw new FsError('ENOSPC', 'inotify_add_watch', p);
      return real.add(p, m);
    },
    remove: (wd) => real.remove(wd),
    read: () => real.read(),
    close: () => real.close(),
  };
  const h = harness(t, limited);
  const d = h.known('d');
  const e = h.known('e');
  assert.equal(h.limits(), 1, 'told once');
  assert.ok(h.w.limitHit);
  assert.deepEqual([h.w.unwatched.has(d), h.w.unwatched.has(e)], [true, true]);
  assert.ok(h.f.u.reval, 'the union re-checks');
  // the unwatched directory sees a change on access (after the re-check interval)
  assert.deepEqual(h.f.ls('d'), ['a']);
  writeFileSync(join(h.f.br.lo!, 'd', 'late'), '');
  const later = Date.now() + 600;
  while (Date.now() < later) { /* the re-check interval (0.5 s) */ }
  assert.deepEqual(h.f.ls('d'), ['a', 'late']);
});

test('watcher: an overflowed queue drops everything the kernel holds, names that appeared included', (t) => {
  const real = new Inotify();
  let queued: InotifyEvent[] = [];
  const fake: InotifyLike = {
    fd: real.fd,
    add: (p, m) => real.add(p, m),
    remove: (wd) => real.remove(wd),
    read: () => {
      const q = queued;
      queued = [];
      return q;
    },
    close: () => real.close(),
  };
  const h = harness(t, fake);
  const g = h.known('g');
  assert.deepEqual(h.f.ls('g'), []);
  writeFileSync(join(h.f.br.lo!, 'g', 'appeared'), '');
  queued = [{ wd: -1, mask: IN_Q_OVERFLOW, cookie: 0, name: '' }];
  h.w.handle();
  assert.equal(h.w.overflows, 1);
  const gid = h.ids.get(g)!;
  assert.ok(h.sent.some((n) => n[0] === 2 && n[1] === gid && n[2] === 'appeared'), 'the negative entry of the new name goes');
  assert.ok(h.sent.some((n) => n[0] === 1 && n[1] === 1), 'the root too');
  assert.deepEqual(h.f.ls('g'), ['appeared']);
});
