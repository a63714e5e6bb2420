/**
 * A daemon killed at each step of a rename (node-journal.ts MOVE records, rename-intent.ts),
 * without a mount: each "daemon" is a fresh union + FuseOps resumed from the journal the previous
 * one left (as supervise-serve.ts does); the test plays the kernel. A kill is modelled exactly:
 * at step k (a write to a branch, or the end of the engine's rename before the ops journal the
 * outcome) the journal file is copied as it is, the request stops, and that copy is what the next
 * daemon finds; the branches keep what steps 0..k-1 did. The kernel then resends the rename.
 *
 * What must hold whichever step the kill hit: the resent rename succeeds, the ids the kernel was
 * given for the source name the renamed node, and an id of the replaced target does not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Branch } from '../../src/branch/index.js';
import { Op } from '../../src/fuse/abi.js';
import { cstr, takeovers, type TakeoverDaemon } from '../helpers/takeover-daemons.js';

const WRITES = ['mkdir', 'rmdir', 'unlink', 'symlink', 'link', 'linkFrom', 'mknod', 'rename', 'renameFrom', 'chmod', 'lchown', 'setTimes', 'utimens', 'truncate', 'setxattr', 'removexattr', 'createEmpty', 'linkTmpfile'] as const;

class Killed extends Error {}

/** Counts branch writes while armed; throws Killed (after `onKill`) at step `at`. */
const steps = { armed: false, dead: false, n: 0, at: -1, onKill: (): void => {} };
function tick(): void {
  // killed: no write after it lands (the cleanup a catch block would do never runs)
  if (steps.dead) throw new Killed('dead');
  if (!steps.armed) return;
  if (steps.n++ === steps.at) {
    steps.armed = false;
    steps.dead = true;
    steps.onKill();
    throw new Killed('kill -9');
  }
}
const proto = Branch.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
for (const m of WRITES) {
  const orig = proto[m];
  if (typeof orig !== 'function') continue;
  proto[m] = function (this: unknown, ...a: unknown[]) {
    if (process.env.RN_TRACE && steps.armed) console.error(steps.n, m, a.filter((x) => typeof x !== 'object'));
    tick();
    return orig.apply(this, a);
  };
}

interface Daemon extends TakeoverDaemon {
  /** Whether LOOKUP finds the name. */
  has(dir: number, name: string): boolean;
  rmdir(dir: number, name: string): number;
  /** MKNOD of a regular file: 0 or a negative errno. */
  mkfile(dir: number, name: string, unique?: number, resent?: boolean): number;
  /** The file type bits GETATTR answers. */
  type(id: number): number;
  /** The inode number GETATTR answers, or a negative errno. */
  ino(id: number): number;
}

/** Overlay format (whiteouts are char devices 0/0), as `lowerdir=` mounts use. */
const OVERLAY = (root: string): string => `lowerdir=${join(root, 'lo')},upperdir=${join(root, 'up')},workdir=${join(root, 'work')}`;

function scenario(t: { after(fn: () => void): void }, layout: (up: string, lo: string) => void, spec?: (root: string) => string) {
  const hook = (union: object): void => {
    const u = union as { rename: (...a: unknown[]) => void };
    const engineRename = u.rename.bind(u);
    u.rename = (...a: unknown[]) => {
      engineRename(...a);
      tick(); // the last step: done in the engine, the outcome not yet journaled
    };
  };
  const { root, journal, start: next } = takeovers(t, 'rncrash', layout, hook, spec ? { spec } : {});
  const start = (): Daemon => {
    const k = next();
    const { req, out } = k;
    return {
      ...k,
      has(dir, name) {
        return req(Op.LOOKUP, dir, cstr(name)) > 0;
      },
      mkfile(dir, name, uq, resent) {
        const b = Buffer.alloc(16);
        b.writeUInt32LE(0o100644, 0);
        const r = req(Op.MKNOD, dir, Buffer.concat([b, cstr(name)]), uq, resent);
        return r < 0 ? r : 0;
      },
      type(id) {
        const r = k.attr(id);
        return r < 0 ? r : out.readUInt32LE(16 + 16 + 60) & 0o170000;
      },
      rmdir(dir, name) {
        return req(Op.RMDIR, dir, cstr(name));
      },
      ino(id) {
        const r = k.attr(id);
        return r < 0 ? r : Number(out.readBigUInt64LE(16 + 16));
      },
    };
  };
  /** Arm a kill at step `at` of the next request: the journal as it is then is what survives. */
  const killAt = (at: number): { fired: () => boolean; restore: () => void } => {
    let snap: Buffer | null = null;
    steps.armed = true;
    steps.n = 0;
    steps.at = at;
    steps.onKill = () => {
      snap = readFileSync(journal);
    };
    return {
      fired: () => snap !== null,
      restore: () => {
        steps.armed = false;
        steps.dead = false;
        if (snap) writeFileSync(journal, snap);
      },
    };
  };
  return { root, start, killAt };
}

/** Run `body` once per kill step until a run goes through with no kill (all steps covered). */
function everyStep(
  t: { after(fn: () => void): void },
  layout: (up: string, lo: string) => void,
  body: (s: ReturnType<typeof scenario>, at: number) => boolean,
  spec?: (root: string) => string,
): number {
  for (let at = 0; ; at++) {
    const s = scenario(t, layout, spec);
    if (!body(s, at)) return at;
    assert.ok(at < 100, 'too many steps');
  }
}

function renameKilled(s: ReturnType<typeof scenario>, d: Daemon, at: number, from: [number, string], to: [number, string]): { d: Daemon; fired: boolean } {
  const k = s.killAt(at);
  let r: number | undefined;
  try {
    r = d.rename(from[0], from[1], to[0], to[1]);
  } catch (e) {
    if (!(e instanceof Killed)) throw e;
  }
  const uq = d.lastUnique();
  const fired = k.fired();
  k.restore();
  if (!fired) {
    assert.equal(r, 0, 'the rename with no kill');
    return { d, fired };
  }
  d.crash();
  const d2 = s.start();
  assert.equal(d2.rename(from[0], from[1], to[0], to[1], uq, true), 0, `the resent rename after a kill at step ${at}`);
  return { d: d2, fired };
}

test('a dir renamed over an empty dir (both only in the rw branch), killed at each step: ids name the right nodes', (t) => {
  const n = everyStep(
    t,
    (up) => {
      mkdirSync(join(up, 'd3', 's1'), { recursive: true });
      writeFileSync(join(up, 'd3', 's1', 'c'), 'c\n');
      mkdirSync(join(up, 'd2'));
    },
    (s, at) => {
      let d = s.start();
      const D3 = d.lookup(1, 'd3');
      const S1 = d.lookup(D3, 's1');
      const C = d.lookup(S1, 'c');
      const D2 = d.lookup(1, 'd2');
      const s1Ino = d.ino(S1);
      const r = renameKilled(s, d, at, [D3, 's1'], [1, 'd2']);
      d = r.d;
      assert.equal(d.ino(S1), s1Ino, `kill at ${at}: the moved dir's id still names it`);
      assert.ok(d.ino(C) > 0, `kill at ${at}: its child's id too`);
      assert.equal(d.ino(d.lookup(1, 'd2')), s1Ino, `kill at ${at}: d2 is the moved dir`);
      assert.ok(d.lookup(S1, 'c') > 0, `kill at ${at}: the moved dir holds its child`);
      assert.notEqual(d.ino(D2), s1Ino, `kill at ${at}: the replaced dir's id does not name the moved dir`);
      return r.fired;
    },
  );
  assert.ok(n >= 2, `${n} steps`);
});

test('a file renamed over a file (rw branch), killed at each step: ids name the right nodes', (t) => {
  const n = everyStep(
    t,
    (up) => {
      writeFileSync(join(up, 'a'), 'A\n');
      writeFileSync(join(up, 'b'), 'B\n');
    },
    (s, at) => {
      let d = s.start();
      const A = d.lookup(1, 'a');
      const B = d.lookup(1, 'b');
      const aIno = d.ino(A);
      const r = renameKilled(s, d, at, [1, 'a'], [1, 'b']);
      d = r.d;
      assert.equal(d.ino(A), aIno, `kill at ${at}: the moved file's id still names it`);
      assert.equal(d.ino(d.lookup(1, 'b')), aIno, `kill at ${at}: b is the moved file`);
      assert.notEqual(d.ino(B), aIno, `kill at ${at}: the replaced file's id does not name the moved file`);
      return r.fired;
    },
  );
  assert.ok(n >= 2, `${n} steps`);
});

test('a file that also exists below renamed over a lower file, killed at each step: ids name the right nodes', (t) => {
  const n = everyStep(
    t,
    (_up, lo) => {
      writeFileSync(join(lo, 'a'), 'A\n');
      writeFileSync(join(lo, 'b'), 'B\n');
    },
    (s, at) => {
      let d = s.start();
      const A = d.lookup(1, 'a');
      const B = d.lookup(1, 'b');
      const r = renameKilled(s, d, at, [1, 'a'], [1, 'b']);
      d = r.d;
      const now = d.ino(d.lookup(1, 'b'));
      assert.equal(d.ino(A), now, `kill at ${at}: the moved file's id names b`);
      assert.notEqual(d.ino(B), now, `kill at ${at}: the replaced file's id does not name the moved file`);
      return r.fired;
    },
  );
  assert.ok(n >= 2, `${n} steps`);
});

test('a dir that exists below renamed over a dir emptied of its lower file (random-io seed 66), killed at each step: the resent rename succeeds', (t) => {
  const n = everyStep(
    t,
    (_up, lo) => {
      mkdirSync(join(lo, 'd3', 's1'), { recursive: true });
      writeFileSync(join(lo, 'd3', 's1', 'f5'), 'f5\n');
      mkdirSync(join(lo, 'd2'));
      writeFileSync(join(lo, 'd2', 'f4'), 'f4\n');
    },
    (s, at) => {
      let d = s.start();
      const D3 = d.lookup(1, 'd3');
      const S1 = d.lookup(D3, 's1');
      const D2 = d.lookup(1, 'd2');
      assert.equal(d.unlink(D2, 'f4'), 0);
      const r = renameKilled(s, d, at, [D3, 's1'], [1, 'd2']);
      d = r.d;
      const d2 = d.lookup(1, 'd2');
      assert.ok(d.has(d2, 'f5'), `kill at ${at}: d2 holds the moved dir's file`);
      assert.ok(!d.has(d2, 'f4'), `kill at ${at}: the removed lower file stays hidden`);
      assert.ok(!d.has(D3, 's1'), `kill at ${at}: the old name is gone`);
      assert.ok(d.has(S1, 'f5'), `kill at ${at}: the moved dir's id names it`);
      return r.fired;
    },
  );
  assert.ok(n >= 2, `${n} steps`);
});

test('a file renamed over a name whose lower dir was removed, killed at each step: never a directory at the name', (t) => {
  const n = everyStep(
    t,
    (up, lo) => {
      mkdirSync(join(lo, 'd1'));
      writeFileSync(join(lo, 'd1', 'g'), 'g\n');
      writeFileSync(join(up, 'a'), 'A\n');
    },
    (s, at) => {
      let d = s.start();
      const D1 = d.lookup(1, 'd1');
      assert.equal(d.unlink(D1, 'g'), 0);
      assert.equal(d.rmdir(1, 'd1'), 0);
      const A = d.lookup(1, 'a');
      const aIno = d.ino(A);
      const r = renameKilled(s, d, at, [1, 'a'], [1, 'd1']);
      d = r.d;
      assert.equal(d.ino(d.lookup(1, 'd1')), aIno, `kill at ${at}: d1 is the moved file`);
      return r.fired;
    },
  );
  assert.ok(n >= 2, `${n} steps`);
});

test('a file made where a lower dir was removed (random-io seed 11), killed at each step: never a directory at the name', (t) => {
  const n = everyStep(t, lowerDirD1, (s, at) => {
    const { d, fired } = madeKilled(s, at, (d, uq, resent) => d.mkfile(1, 'd1', uq, resent));
    assert.equal(d.type(d.lookup(1, 'd1')), 0o100000, `kill at ${at}: d1 is the new file`);
    return fired;
  });
  assert.ok(n >= 2, `${n} steps`);
});

/** A name whose lower dir (holding `g`) was removed through the union: an overlay whiteout in `up`. */
function removedLowerDir(d: Daemon): void {
  const D1 = d.lookup(1, 'd1');
  assert.equal(d.unlink(D1, 'g'), 0);
  assert.equal(d.rmdir(1, 'd1'), 0);
}

function lowerDirD1(_up: string, lo: string): void {
  mkdirSync(join(lo, 'd1'));
  writeFileSync(join(lo, 'd1', 'g'), 'g\n');
}

/** Run `make` (a create-type request over the whiteout) killed at step `at`, then resend it. */
function madeKilled(s: ReturnType<typeof scenario>, at: number, make: (d: Daemon, uq?: number, resent?: boolean) => number): { d: Daemon; fired: boolean } {
  let d = s.start();
  removedLowerDir(d);
  const k = s.killAt(at);
  let r: number | undefined;
  try {
    r = make(d);
  } catch (e) {
    if (!(e instanceof Killed)) throw e;
  }
  const uq = d.lastUnique();
  const fired = k.fired();
  k.restore();
  if (fired) {
    d.crash();
    d = s.start();
    assert.equal(make(d, uq, true), 0, `the resent request after a kill at step ${at}`);
  } else assert.equal(r, 0);
  return { d, fired };
}

test('overlay format: a file made over the whiteout of a removed lower dir, killed at each step: never the lower dir at the name', (t) => {
  const n = everyStep(
    t,
    lowerDirD1,
    (s, at) => {
      const { d, fired } = madeKilled(s, at, (d, uq, resent) => d.mkfile(1, 'd1', uq, resent));
      assert.equal(d.type(d.lookup(1, 'd1')), 0o100000, `kill at ${at}: d1 is the new file`);
      return fired;
    },
    OVERLAY,
  );
  assert.ok(n >= 2, `${n} steps`);
});

test('overlay format: a dir made over the whiteout of a removed lower dir, killed at each step: new, empty, never showing the lower names', (t) => {
  const n = everyStep(
    t,
    lowerDirD1,
    (s, at) => {
      const mkdir = (d: Daemon, uq?: number, resent?: boolean): number => {
        const b = Buffer.alloc(8);
        b.writeUInt32LE(0o755, 0);
        const r = d.req(Op.MKDIR, 1, Buffer.concat([b, cstr('d1')]), uq, resent);
        return r < 0 ? r : 0;
      };
      const { d, fired } = madeKilled(s, at, mkdir);
      const D1 = d.lookup(1, 'd1');
      assert.equal(d.type(D1), 0o040000, `kill at ${at}: d1 is a dir`);
      assert.equal(d.has(D1, 'g'), false, `kill at ${at}: the lower dir's g does not show in the new dir`);
      return fired;
    },
    OVERLAY,
  );
  assert.ok(n >= 2, `${n} steps`);
});

test('two writable branches: a file of the second one that also exists below renamed, killed at each step: the new name is that file, never the lower one', (t) => {
  const up2 = (root: string): string => join(root, 'up2');
  const n = everyStep(
    t,
    (up, lo) => {
      const u2 = join(up, '..', 'up2');
      mkdirSync(u2);
      writeFileSync(join(u2, 'a'), 'rw2\n');
      writeFileSync(join(lo, 'a'), 'lower\n');
    },
    (s, at) => {
      let d = s.start();
      const A = d.lookup(1, 'a');
      const aIno = d.ino(A);
      const r = renameKilled(s, d, at, [1, 'a'], [1, 'c']);
      d = r.d;
      assert.equal(d.ino(d.lookup(1, 'c')), aIno, `kill at ${at}: c is the renamed file`);
      assert.equal(d.has(1, 'a'), false, `kill at ${at}: a is gone`);
      assert.equal(readFileSync(join(s.root, 'up2', 'c'), 'utf8'), 'rw2\n');
      return r.fired;
    },
    (root) => `dirs=${join(root, 'up')}=rw:${up2(root)}=rw:${join(root, 'lo')}=ro`,
  );
  assert.ok(n >= 2, `${n} steps`);
});
