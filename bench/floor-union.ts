/**
 * The floor of the bench: our FUSE transport serving an in-memory tree (test/fuse/mem-union.ts)
 * of the same shape as the union it stands for: names, modes and sizes of the merged view of
 * `lowerdir=L1:L2...` (read once through the engine at mount) or of the plain directory `tree=DIR`.
 * No engine and no syscalls per request: what is left is the kernel's own cost per request plus
 * our transport's. With `io` (and upperdir=, workdir=: floor-io), each node is backed by its file
 * on disk and does floor-c-io's disk work (floor-io-union.ts). Loaded by the session worker as its
 * `unionModule`.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Union, type UnionNode } from '../src/engine/index.js';
import { fsErr } from '../src/errors/index.js';
import type { OpenedUnion } from '../src/fuse/open-union.js';
import { MemUnion, type MemNode } from '../test/fuse/mem-union.js';
import { IoUnion } from './floor-io-union.js';

const ROOT_CTX = { uid: 0, gid: 0 };
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

function copyDir(u: MemUnion, dir: MemNode, from: string): void {
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const p = join(from, e.name);
    const st = lstatSync(p);
    if (e.isDirectory()) copyDir(u, u.mkdir(dir, e.name, st.mode & 0o7777, ROOT_CTX), p);
    else u.create(dir, e.name, st.mode & 0o7777, 0, ROOT_CTX).node.data = Buffer.alloc(st.size);
  }
}

function copyUnion(u: MemUnion, dir: MemNode, src: Union, from: UnionNode, rel: string): void {
  for (const e of src.readdir(from)) {
    if (e.name === '.' || e.name === '..') continue;
    const got = src.lookupAttr(from, e.name);
    if (!got) continue;
    const { node, attr } = got;
    const r = rel ? `${rel}/${e.name}` : e.name;
    let made: MemNode;
    if ((attr.mode & S_IFMT) === S_IFDIR) copyUnion(u, (made = u.mkdir(dir, e.name, attr.mode & 0o7777, ROOT_CTX)), src, node, r);
    else (made = u.create(dir, e.name, attr.mode & 0o7777, 0, ROOT_CTX).node).data = Buffer.alloc(attr.size);
    // the engine's union is over the lower dirs alone: its branch i is lower i, topmost first
    if (u instanceof IoUnion) u.place(made, r, node.layers[0]!);
  }
}

/** `name=VALUE` of the mount options, if there. */
const opt = (options: string, name: string): string | undefined => new RegExp(`(?:^|,)${name}=([^,]+)`).exec(options)?.[1];

export function openUnion(options: string, _cwd: string): OpenedUnion {
  const tree = opt(options, 'tree');
  const lower = opt(options, 'lowerdir');
  const upper = opt(options, 'upperdir');
  const work = opt(options, 'workdir');
  // io (floor-io): the same tree, each node backed by its file on disk (floor-io-union.ts)
  const io = /(?:^|,)io(?:,|$)/.test(options);
  if (io && (!lower || !upper || !work)) throw fsErr('EINVAL', 'mount', 'floor: io needs lowerdir=, upperdir= and workdir=');
  const union = io ? new IoUnion({ lowers: lower!.split(':'), upper: upper!, work: work! }) : new MemUnion();
  if (tree) copyDir(union, union.root, tree);
  else if (lower) {
    const src = new Union(`lowerdir=${lower}`);
    try {
      copyUnion(union, union.root, src, src.root, '');
    } finally {
      src.close();
    }
  } else throw fsErr('EINVAL', 'mount', 'floor: tree=DIR or lowerdir= needed');
  // as layerfs: the kernel keeps ACLs (absent here), so ls -l asks only security.selinux per name
  return { union, branches: [{ path: '/floor', perm: 'ro' }], xiPath: '', posixAcl: true, close: () => union.close() };
}
