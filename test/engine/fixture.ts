/** Shared set-up for engine tests: branches from specs in a temp dir, a Union over them. */
import type { TestContext } from 'node:test';
import * as fs from 'node:fs';
import { Union, type UnionNode } from '../../src/engine/index.js';
import { buildBranches, mkTemp, readTree, type Spec } from '../helpers/tree-spec.js';

export const ctx = { uid: 0, gid: 0 };
export const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND } = fs.constants;

export interface Fixture {
  u: Union;
  dir: string;
  /** abs path of each branch by name */
  br: Record<string, string>;
  /** A union node by merged path ('' = root). */
  node(p: string): UnionNode;
  /** Merged names of a dir. */
  ls(p?: string): string[];
  /** Whole file through the union. */
  cat(p: string): string;
  /** Raw tree of a branch (private state left out). */
  raw(name: string): Spec;
  /** A fresh Union over the same branches (remount). */
  remount(): Union;
}

/**
 * Branch names in `specs` order are topmost first; `opts` is appended to `dirs=...`.
 * `perms` overrides each branch's perm (default: first rw, rest ro).
 */
export function setup(t: TestContext, specs: Record<string, Spec>, opts = '', perms?: string[]): Fixture {
  const tmp = mkTemp('layerfs-engine-');
  t.after(() => tmp.cleanup());
  const br = buildBranches(tmp.dir, specs);
  const names = Object.keys(specs);
  const str = () =>
    'dirs=' + names.map((n, i) => `${br[n]}=${perms ? perms[i] : i === 0 ? 'rw' : 'ro'}`).join(':') + (opts ? ',' + opts : '');
  const unions: Union[] = [];
  t.after(() => unions.forEach((x) => x.close()));
  const mk = () => {
    const x = new Union(str());
    unions.push(x);
    return x;
  };
  const f: Fixture = {
    u: mk(),
    dir: tmp.dir,
    br,
    node(p: string) {
      let n = f.u.root;
      for (const part of p.split('/').filter((s) => s !== '')) n = f.u.lookup(n, part);
      return n;
    },
    ls(p = '') {
      return f.u.readdir(f.node(p)).map((e) => e.name);
    },
    cat(p: string) {
      const fh = f.u.open(f.node(p), O_RDONLY, ctx);
      const chunks: Buffer[] = [];
      let pos = 0;
      for (;;) {
        const b = Buffer.alloc(65536);
        const n = f.u.read(fh, b, 0, b.length, pos);
        if (n === 0) break;
        chunks.push(b.subarray(0, n));
        pos += n;
      }
      f.u.release(fh);
      return Buffer.concat(chunks).toString();
    },
    raw(name: string) {
      return readTree(br[name]!, { skipPrivate: true });
    },
    remount() {
      f.u.close();
      f.u = mk();
      return f.u;
    },
  };
  return f;
}

/** Assert that `fn` throws an errno error with `code`. */
export function throwsCode(fn: () => unknown, code: string): void {
  let threw: unknown;
  try {
    fn();
  } catch (e) {
    threw = e;
  }
  if (threw === undefined) throw new Error(`expected ${code}, nothing thrown`);
  const c = (threw as { code?: unknown }).code;
  if (c !== code) throw new Error(`expected ${code}, got ${String(c)}: ${String(threw)}`);
}

/** Write a whole file through the union (create or truncate). */
export function writeFile(u: Union, parent: UnionNode, name: string, data: string): UnionNode {
  const { node, fh } = u.create(parent, name, 0o644, O_WRONLY | O_CREAT | O_TRUNC, ctx);
  const b = Buffer.from(data);
  u.write(fh, b, 0, b.length, 0);
  u.release(fh);
  return node;
}
