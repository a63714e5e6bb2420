/**
 * What the transport negotiates for POSIX ACLs (posix-acl.ts) and what it hands the engine: with
 * posixAcl, INIT asks POSIX_ACL and DONT_MASK, and create-type requests carry the caller's umask
 * (the engine applies it or a default ACL); without (noacl, nodefault_permissions, an ownership
 * translation), neither flag, and the mode the kernel already masked goes as it is. openUnion
 * allows ACLs unless `noacl` or an ownership translation.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Ctx } from '../../src/engine/types.js';
import { Init } from '../../src/fuse/abi.js';
import type { InHeader } from '../../src/fuse/codec.js';
import { openUnion } from '../../src/fuse/open-union.js';
import { FuseOps } from '../../src/fuse/ops.js';
import { MemUnion, type MemNode } from './mem-union.js';

class Recording extends MemUnion {
  ctxs: Ctx[] = [];
  override mkdir(p: MemNode, name: string, mode: number, ctx: Ctx): MemNode {
    this.ctxs.push(ctx);
    return super.mkdir(p, name, mode, ctx);
  }
}

const offered = { major: 7, minor: 45, maxReadahead: 131072, flags: 0xffffffff, flags2: 0 };
const hd = (nodeid: number): InHeader => ({ len: 0, opcode: 9, unique: 1, nodeid, uid: 1000, gid: 1000, pid: 1, extlen: 0 });

for (const posixAcl of [true, false]) {
  test(`posixAcl ${posixAcl}: INIT ${posixAcl ? 'asks' : 'does not ask'} POSIX_ACL + DONT_MASK; mkdir ${posixAcl ? 'carries' : 'has no'} umask`, () => {
    const u = new Recording();
    const ops = new FuseOps(u, { entryTimeout: 1, attrTimeout: 1, negativeTimeout: 0, maxWrite: 1 << 17, posixAcl });
    const r = ops.init(offered)!;
    assert.equal((r.flags & Init.POSIX_ACL) !== 0, posixAcl);
    assert.equal((r.flags & Init.DONT_MASK) !== 0, posixAcl);
    ops.mkdir(hd(1), { name: 'd', mode: 0o777, umask: 0o022 });
    assert.equal(u.ctxs[0]!.umask, posixAcl ? 0o022 : undefined);
  });
}

test('a kernel that grants POSIX_ACL without DONT_MASK: the umask is not handed on (the kernel applied it)', () => {
  const u = new Recording();
  const ops = new FuseOps(u, { entryTimeout: 1, attrTimeout: 1, negativeTimeout: 0, maxWrite: 1 << 17, posixAcl: true });
  ops.init({ ...offered, flags: offered.flags & ~Init.DONT_MASK });
  ops.mkdir(hd(1), { name: 'd', mode: 0o755, umask: 0o022 });
  assert.equal(u.ctxs[0]!.umask, undefined);
});

test('openUnion: ACLs allowed unless noacl or an ownership translation', (t) => {
  const base = mkdtempSync(join(tmpdir(), 'layerfs-posixacl-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  for (const d of ['l', 'u', 'w']) mkdirSync(join(base, d));
  const o = (extra: string): boolean | undefined => {
    const opened = openUnion(`lowerdir=${join(base, 'l')},upperdir=${join(base, 'u')},workdir=${join(base, 'w')}${extra}`, base);
    try {
      return opened.posixAcl;
    } finally {
      opened.close();
    }
  };
  assert.equal(o(''), true);
  assert.equal(o(',noacl'), false);
  assert.equal(o(',uidmapping=0:100000:65536,gidmapping=0:100000:65536'), false);
  assert.equal(o(',squash_to_root'), false);
});
