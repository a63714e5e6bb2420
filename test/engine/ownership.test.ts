/**
 * fuse-overlayfs's ownership options on the engine (no mount): uidmapping=/gidmapping= shift what
 * getattr shows and map chown and the owner of new files back; squash_to_* show one owner;
 * xattr_permissions keeps owner and mode in an xattr; static_nlink; and the option strings podman
 * passes parse.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { parseOptions, formatOptions, Union } from '../../src/engine/index.js';
import { Ownership, parseOverride } from '../../src/engine/ownership.js';
import { unknownMountOptions, unknownOptionsWarning } from '../../src/fuse/option-warnings.js';

const always = { cwd: '/base', isWritable: () => true };
const root = process.getuid?.() === 0;

test('podman option strings: empty options, trailing comma, volatile, context with a quoted comma', () => {
  const o = parseOptions(
    'lowerdir=/l/A:/l/B,upperdir=/u,workdir=/w,,volatile,context="system_u:object_r:container_file_t:s0:c1,c2",fsync=0,noacl,static_nlink,',
    always,
  );
  assert.deepEqual(o.branches.map((b) => b.path), ['/u', '/l/A', '/l/B']);
  assert.equal(o.volatile, true);
  assert.equal(o.staticNlink, true);
  assert.equal(o.noacl, true, 'noacl reaches the transport (no FUSE_POSIX_ACL)');
  assert.deepEqual(o.extra, {}, 'nothing left over for the transport to refuse');
  assert.equal(parseOptions('dirs=/a,fsync=0', always).volatile, true);
  assert.equal(parseOptions('dirs=/a,fsync=1', always).volatile, undefined);
  assert.throws(() => parseOptions('dirs=/a,fsync=maybe', always), /fsync must be 0 or 1/);
});

test('uidmapping/gidmapping triples, squash and xattr_permissions parse, round-trip and refuse nonsense', () => {
  const o = parseOptions('lowerdir=/l,uidmapping=0:100000:1000:1000:5000:10,gidmapping=0:200000:65536,xattr_permissions=2', always);
  assert.deepEqual(o.ownership, {
    uidMap: [
      { stored: 0, shown: 100000, count: 1000 },
      { stored: 1000, shown: 5000, count: 10 },
    ],
    gidMap: [{ stored: 0, shown: 200000, count: 65536 }],
    xattrPermissions: 2,
  });
  assert.deepEqual(parseOptions(formatOptions(o), always).ownership, o.ownership);
  assert.deepEqual(parseOptions('lowerdir=/l,squash_to_root', always).ownership, { squashUid: 0, squashGid: 0 });
  assert.deepEqual(parseOptions('lowerdir=/l,squash_to_uid=7,squash_to_root', always).ownership, { squashUid: 7, squashGid: 0 });
  assert.deepEqual(parseOptions('lowerdir=/l,squash_to_gid=9', always).ownership, { squashGid: 9 });
  assert.equal(parseOptions('lowerdir=/l,xattr_permissions=0', always).ownership, undefined);
  assert.throws(() => parseOptions('lowerdir=/l,uidmapping=0:100000', always), /uidmapping needs triples/);
  assert.throws(() => parseOptions('lowerdir=/l,gidmapping=0:x:1', always), /'x' in '0:x:1' is not an id/);
  assert.throws(() => parseOptions('lowerdir=/l,uidmapping=0:1:0', always), /empty range/);
  assert.throws(() => parseOptions('lowerdir=/l,uidmapping=0:4294967290:100', always), /past the largest id/);
  assert.throws(() => parseOptions('lowerdir=/l,squash_to_uid=-1', always), /squash_to_uid needs a numeric id/);
  assert.throws(() => parseOptions('lowerdir=/l,xattr_permissions=3', always), /xattr_permissions must be 0, 1 or 2/);
});

test('unknown options: warned about in one line, not refused', () => {
  assert.deepEqual(unknownMountOptions('lowerdir=/l,upperdir=/u,workdir=/w,,lazytime,volatile,frob=1,nodev,passthrough=off'), ['lazytime', 'frob']);
  assert.equal(unknownOptionsWarning('lowerdir=/l,lazytime'), "layerfs: ignoring unknown mount option 'lazytime'");
  assert.equal(unknownOptionsWarning('lowerdir=/l,uidmapping=0:1:2,squash_to_root,noacl'), null);
});

test('Ownership maps stored <-> shown ids; ids in no range are the overflow id both ways', () => {
  const m = new Ownership({ uidMap: [{ stored: 0, shown: 100000, count: 65536 }], gidMap: [{ stored: 0, shown: 200000, count: 10 }] });
  assert.equal(m.uidShown(0), 100000);
  assert.equal(m.uidShown(1000), 101000);
  assert.equal(m.uidShown(70000), m.overflowUid);
  assert.equal(m.uidStored(101000), 1000);
  assert.equal(m.uidStored(5), m.overflowUid);
  assert.equal(m.gidShown(9), 200009);
  assert.equal(m.gidShown(10), m.overflowGid);
  assert.equal(m.overflowUid, Number(fs.readFileSync('/proc/sys/kernel/overflowuid', 'utf8')));
  assert.deepEqual(parseOverride('1:2:755'), { uid: 1, gid: 2, mode: 0o755 });
  assert.equal(parseOverride('1:2'), null);
});

function tmp(): { dir: string; lo: string; up: string; done: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-own-'));
  const lo = path.join(dir, 'lo');
  const up = path.join(dir, 'up');
  fs.mkdirSync(lo);
  fs.mkdirSync(up);
  fs.mkdirSync(path.join(dir, 'work'));
  return { dir, lo, up, done: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test('uidmapping on a union: stored ids show shifted, chown and new files store the unshifted ids', { skip: !root && 'needs root (chown)' }, () => {
  const t = tmp();
  try {
    fs.writeFileSync(path.join(t.lo, 'f'), 'x');
    fs.chownSync(path.join(t.lo, 'f'), 1000, 1000);
    fs.mkdirSync(path.join(t.lo, 'd'));
    const u = new Union(`lowerdir=${t.lo},upperdir=${t.up},workdir=${path.join(t.dir, 'work')},uidmapping=0:100000:65536,gidmapping=0:100000:65536`);
    try {
      const f = u.lookup(u.root, 'f');
      assert.deepEqual([u.getattr(f).uid, u.getattr(f).gid], [101000, 101000]);
      assert.equal(u.lookupAttr(u.root, 'f')!.attr.uid, 101000);
      assert.equal(u.getattr(u.root).uid, 100000, 'root-owned dir shows as the mapped root');
      // chown through the mount (shown ids) stores container ids
      const after = u.setattr(f, { uid: 100005, gid: 100006 }, { uid: 100000, gid: 100000 });
      assert.deepEqual([after.uid, after.gid], [100005, 100006]);
      assert.deepEqual([fs.statSync(path.join(t.up, 'f')).uid, fs.statSync(path.join(t.up, 'f')).gid], [5, 6]);
      // a new file of the mapped root is stored as 0
      const { node, fh } = u.create(u.root, 'n', 0o100644, fs.constants.O_WRONLY, { uid: 100000, gid: 100000 });
      u.release(fh);
      assert.equal(fs.statSync(path.join(t.up, 'n')).uid, 0);
      assert.equal(u.getattr(node).uid, 100000);
      const d = u.mkdir(u.root, 'nd', 0o755, { uid: 101000, gid: 101000 });
      assert.equal(fs.statSync(path.join(t.up, 'nd')).uid, 1000);
      assert.equal(u.getattr(d).gid, 101000);
      // an id outside the mapping: overflow
      fs.chownSync(path.join(t.lo, 'd'), 70000, 70000);
      assert.equal(u.getattr(u.lookup(u.root, 'd')).uid, 65534);
    } finally {
      u.close();
    }
  } finally {
    t.done();
  }
});

test('squash_to_uid/gid: one owner shown; chown through the mount never fails', () => {
  const t = tmp();
  try {
    fs.writeFileSync(path.join(t.lo, 'f'), 'x');
    fs.mkdirSync(path.join(t.lo, 'd', 'e'), { recursive: true });
    const u = new Union(`lowerdir=${t.lo},upperdir=${t.up},workdir=${path.join(t.dir, 'work')},squash_to_uid=1234,squash_to_gid=4321,static_nlink`);
    try {
      const f = u.lookup(u.root, 'f');
      assert.deepEqual([u.getattr(f).uid, u.getattr(f).gid], [1234, 4321]);
      const a = u.setattr(f, { uid: 0, gid: 0, mode: 0o600 }, { uid: 0, gid: 0 });
      assert.deepEqual([a.uid, a.gid, a.mode & 0o7777], [1234, 4321, 0o600]);
      assert.equal(u.getattr(u.lookup(u.root, 'd')).nlink, 1, 'static_nlink');
    } finally {
      u.close();
    }
  } finally {
    t.done();
  }
});

test('xattr_permissions=2: chown/chmod go to user.containers.override_stat, getattr shows them', () => {
  const t = tmp();
  try {
    fs.writeFileSync(path.join(t.lo, 'f'), 'x');
    fs.chmodSync(path.join(t.lo, 'f'), 0o644);
    const u = new Union(`lowerdir=${t.lo},upperdir=${t.up},workdir=${path.join(t.dir, 'work')},xattr_permissions=2`);
    try {
      const f = u.lookup(u.root, 'f');
      const me = process.getuid?.() ?? 0;
      const a = u.setattr(f, { uid: 4242, gid: 4343 }, { uid: 0, gid: 0 });
      assert.deepEqual([a.uid, a.gid, a.mode & 0o7777], [4242, 4343, 0o644]);
      const b = u.setattr(f, { mode: 0o4711 }, { uid: 0, gid: 0 });
      assert.deepEqual([b.uid, b.gid, b.mode & 0o7777], [4242, 4343, 0o4711]);
      const st = fs.statSync(path.join(t.up, 'f'));
      assert.deepEqual([st.uid, st.mode & 0o7777], [me, 0o644], 'the file itself is untouched');
      assert.equal(u.getxattr(f, 'user.containers.override_stat').toString(), '4242:4343:4711');
    } finally {
      u.close();
    }
  } finally {
    t.done();
  }
});
