/**
 * Random operation sequences on the engine (fast-check): whatever happens, lower branches are
 * never modified, nothing private shows in the merged view, every listed name can be looked up
 * with the listed inode, and a new Union over the same branches sees the same tree.
 * Longer runs: LAYERFS_INV_RUNS=5000 node --test dist/test/engine/invariants.test.js
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Union, type UnionNode } from '../../src/engine/index.js';
import { buildBranches, mkTemp, readTree, type Spec } from '../helpers/tree-spec.js';
import { O_CREAT, O_RDWR, O_TRUNC, O_WRONLY } from './fixture.js';

const ctx = { uid: 0, gid: 0 };
const names = ['a', 'b', 'c'];
const pathArb = fc.array(fc.constantFrom(...names), { minLength: 1, maxLength: 3 }).map((p) => p.join('/'));
const opArb = fc.oneof(
  fc.record({ op: fc.constant('write' as const), path: pathArb, data: fc.string({ maxLength: 8 }) }),
  fc.record({ op: fc.constant('mkdir' as const), path: pathArb }),
  fc.record({ op: fc.constant('unlink' as const), path: pathArb }),
  fc.record({ op: fc.constant('rmdir' as const), path: pathArb }),
  fc.record({ op: fc.constant('rename' as const), path: pathArb, to: pathArb }),
  fc.record({ op: fc.constant('link' as const), path: pathArb, to: pathArb }),
  fc.record({ op: fc.constant('chmod' as const), path: pathArb, mode: fc.constantFrom(0o600, 0o755) }),
  fc.record({ op: fc.constant('truncate' as const), path: pathArb, len: fc.nat(4) }),
  fc.record({ op: fc.constant('symlink' as const), path: pathArb, to: pathArb }),
);
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

const lowerA: Spec = { a: { b: 'ab', c: { a: 'aca' } }, b: 'b', '.wh.c': '' };
const lowerB: Spec = { a: { a: 'aa', c: { b: 'acb' } }, c: { a: 'ca' }, b: { a: 'hidden by file b above' } };

function walk(u: Union, p: string): { parent: UnionNode; name: string } {
  const parts = p.split('/');
  let n = u.root;
  for (const part of parts.slice(0, -1)) n = u.lookup(n, part);
  return { parent: n, name: parts[parts.length - 1]! };
}

function gone(u: Union, parent: UnionNode, name: string): void {
  assert.throws(() => u.lookup(parent, name), (e: { code?: string }) => e.code === 'ENOENT', `${name} still visible`);
  assert.ok(!u.readdir(parent).some((e) => e.name === name), `${name} still listed`);
}

function contents(u: Union, n: UnionNode): string {
  const fh = u.open(n, 0, ctx);
  const b = Buffer.alloc(64);
  const len = u.read(fh, b, 0, 64, 0);
  u.release(fh);
  return b.subarray(0, len).toString();
}

/** After `o` succeeded: what a user would then see. */
function check(u: Union, o: Op): void {
  const { parent, name } = walk(u, o.path);
  switch (o.op) {
    case 'write': assert.equal(contents(u, u.lookup(parent, name)), o.data); break;
    case 'mkdir': assert.deepEqual(u.readdir(u.lookup(parent, name)), [], 'a new dir is empty'); break;
    case 'unlink':
    case 'rmdir': gone(u, parent, name); break;
    case 'rename': {
      const d = walk(u, o.to);
      const target = u.lookup(d.parent, d.name);
      if (o.path === o.to) break;
      let still: UnionNode | undefined;
      try {
        still = u.lookup(parent, name);
      } catch {
        /* gone, as expected */
      }
      // POSIX: renaming one hard link onto another link of the same file does nothing.
      if (still) assert.equal(still.ino, target.ino, `${o.path} still there after rename`);
      else gone(u, parent, name);
      break;
    }
    case 'link': { const d = walk(u, o.to); assert.equal(u.lookup(d.parent, d.name).ino, u.lookup(parent, name).ino); break; }
    case 'symlink': assert.equal(u.readlink(u.lookup(parent, name)), o.to); break;
    case 'chmod': {
      const a = u.getattr(u.lookup(parent, name));
      if ((a.mode & 0o170000) !== 0o120000) assert.equal(a.mode & 0o777, o.mode); // symlinks have no mode of their own
      break;
    }
    case 'truncate': assert.equal(u.getattr(u.lookup(parent, name)).size, o.len); break;
  }
}

function run(u: Union, o: Op): void {
  const { parent, name } = walk(u, o.path);
  switch (o.op) {
    case 'write': {
      const { fh } = u.create(parent, name, 0o644, O_WRONLY | O_CREAT | O_TRUNC, ctx);
      u.write(fh, Buffer.from(o.data), 0, Buffer.byteLength(o.data), 0);
      u.release(fh);
      break;
    }
    case 'mkdir': u.mkdir(parent, name, 0o755, ctx); break;
    case 'unlink': u.unlink(parent, name); break;
    case 'rmdir': u.rmdir(parent, name); break;
    case 'rename': { const d = walk(u, o.to); u.rename(parent, name, d.parent, d.name, 0); break; }
    case 'link': { const d = walk(u, o.to); u.link(u.lookup(parent, name), d.parent, d.name); break; }
    case 'symlink': u.symlink(parent, name, o.to, ctx); break;
    case 'chmod': u.setattr(u.lookup(parent, name), { mode: o.mode }, ctx); break;
    case 'truncate': { const fh = u.open(u.lookup(parent, name), O_RDWR, ctx); u.setattr(fh.node, { size: o.len }, ctx, fh); u.release(fh); break; }
  }
}

/** The merged tree: names, types, inos, file contents; checks lookups match readdir. */
function view(u: Union, n: UnionNode = u.root, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const e of u.readdir(n)) {
    assert.ok(!e.name.startsWith('.wh.'), `private name visible: ${e.name}`);
    const c = u.lookup(n, e.name);
    assert.equal(c.ino, e.ino, `d_ino of ${e.name}`);
    const a = u.getattr(c);
    const type = a.mode & 0o170000;
    if (type === 0o040000) out[e.name] = depth < 5 ? view(u, c, depth + 1) : 'dir';
    else if (type === 0o120000) out[e.name] = { symlink: u.readlink(c) };
    else {
      const fh = u.open(c, 0, ctx);
      const b = Buffer.alloc(64);
      const len = u.read(fh, b, 0, 64, 0);
      u.release(fh);
      out[e.name] = { data: b.subarray(0, len).toString(), mode: a.mode & 0o777, ino: a.ino };
    }
  }
  return out;
}

for (const format of ['aufs', 'overlay'] as const) {
  test(`random operations never touch lower branches and survive a remount (${format} whiteouts)`, () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 12 }), (ops) => {
        const tmp = mkTemp('layerfs-inv-');
        try {
          const br = buildBranches(tmp.dir, { up: {}, la: lowerA, lb: lowerB });
          const before = [readTree(br.la!), readTree(br.lb!)];
          const opts = `dirs=${br.up}=rw:${br.la}=ro:${br.lb}=ro,whiteout=${format}`;
          const u = new Union(opts);
          for (const o of ops) {
            try {
              run(u, o);
            } catch (e) {
              const code = (e as { code?: string }).code;
              assert.ok(code && /^E[A-Z]+$/.test(code) && code !== 'EIO', `unexpected error ${String(e)}`);
              continue;
            }
            check(u, o);
          }
          const v1 = view(u);
          u.close();
          assert.deepEqual([readTree(br.la!), readTree(br.lb!)], before, 'lower branches unchanged');
          const u2 = new Union(opts);
          try {
            assert.deepEqual(view(u2), v1, 'same tree and inode numbers after a remount');
          } finally {
            u2.close();
          }
        } finally {
          tmp.cleanup();
        }
      }),
      { numRuns: Number(process.env.LAYERFS_INV_RUNS ?? 120) },
    );
  });
}
