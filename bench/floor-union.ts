/**
 * The floor of the bench: our FUSE transport serving an in-memory tree (test/fuse/mem-union.ts)
 * of the same shape as a data set's merged view (`tree=DIR`: names, modes, sizes copied from the
 * plain directory DIR at mount). No engine, no syscalls per request: what is left is the kernel's
 * own cost per request plus our transport's. Loaded by the session worker as its `unionModule`.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fsErr } from '../src/errors/index.js';
import type { OpenedUnion } from '../src/fuse/open-union.js';
import { MemUnion, type MemNode } from '../test/fuse/mem-union.js';

const ROOT_CTX = { uid: 0, gid: 0 };

function copyTree(u: MemUnion, dir: MemNode, from: string): void {
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const p = join(from, e.name);
    const st = lstatSync(p);
    if (e.isDirectory()) {
      copyTree(u, u.mkdir(dir, e.name, st.mode & 0o7777, ROOT_CTX), p);
    } else {
      const { node } = u.create(dir, e.name, st.mode & 0o7777, 0, ROOT_CTX);
      node.data = Buffer.alloc(st.size);
    }
  }
}

export function openUnion(options: string, _cwd: string): OpenedUnion {
  const m = /(?:^|,)tree=([^,]+)/.exec(options);
  if (!m) throw fsErr('EINVAL', 'mount', 'floor: tree=DIR needed');
  const union = new MemUnion();
  copyTree(union, union.root, m[1]!);
  // as layerfs: the kernel keeps ACLs (absent here), so ls -l asks only security.selinux per name
  return { union, branches: [{ path: m[1]!, perm: 'ro' }], xiPath: '', posixAcl: true, close: () => union.close() };
}
