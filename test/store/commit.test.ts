/**
 * `LayerStore.commit`/`squash` copy layer trees (reflink / copy_file_range / read-write) instead of
 * exporting a tar and extracting it: the result must be what the tar round trip gave (tree, modes,
 * owners, times, xattrs, hard links, DiffID), a squash must be the merged view, a mounted container
 * is refused, and a failure half-way leaves no layer and no staging dir behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { UnionFS } from '../../src/api/index.js';
import { fdops } from '../../src/branch/index.js';
import { LayerStore } from '../../src/store/store.js';
import { exportLayer } from '../../src/store/tar-export.js';
import { extractLayer } from '../../src/store/tar-import.js';
import { readXattrs } from '../../src/store/xattr.js';
import { collect, makeTar, once, sha256, snapshot, tempDir } from './helpers.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');

function rootOrFail(t: { skip(msg: string): void }): boolean {
  if (process.getuid?.() === 0) return true;
  if (process.env.CI) assert.fail('needs root (devices, chown, trusted.* xattrs)');
  t.skip('needs root');
  return false;
}

/** Everything a user would compare: snapshot with times, xattrs, and which names share an inode. */
function fullView(dir: string): { tree: Record<string, string>; xattrs: Record<string, string>; links: string[][] } {
  const tree = snapshot(dir, { times: true });
  const xattrs: Record<string, string> = {};
  const byIno = new Map<number, string[]>();
  for (const rel of Object.keys(tree)) {
    const abs = path.join(dir, rel);
    const x = [...readXattrs(abs)].map(([k, v]) => `${k}=${v.toString('hex')}`).sort();
    if (x.length > 0) xattrs[rel] = x.join(',');
    const st = fs.lstatSync(abs);
    if (!st.isDirectory() && st.nlink > 1) byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), rel]);
  }
  return { tree, xattrs, links: [...byIno.values()].map((l) => l.sort()).sort() };
}

async function newStore(t: { after(fn: () => void): void }): Promise<{ store: LayerStore; top: string }> {
  const top = tempDir();
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const store = LayerStore.open(path.join(top, 'store'));
  await store.importTar(
    once(
      await makeTar([
        { name: 'dir/', type: 'directory' },
        { name: 'dir/old', body: 'old' },
        { name: 'gone', body: 'g' },
        { name: 'ovl-gone', body: 'g' },
        { name: 'opq/', type: 'directory' },
        { name: 'opq/hidden', body: 'h' },
        { name: 'ovlopq/', type: 'directory' },
        { name: 'ovlopq/hidden', body: 'h' },
      ]),
    ),
    { name: 'base' },
  );
  return { store, top };
}

/** A container rw dir with every kind of entry the store carries, in both whiteout formats. */
function fillRich(rw: string): void {
  const p = (r: string): string => path.join(rw, r);
  const t = new Date(1_650_000_000_123);
  fs.mkdirSync(p('dir'), { mode: 0o750 });
  fs.writeFileSync(p('dir/file'), 'contents\n', { mode: 0o640 });
  fs.chownSync(p('dir/file'), 1000, 1001);
  execFileSync('setfattr', ['-n', 'user.note', '-v', 'hello', p('dir/file')]);
  execFileSync('setfattr', ['-n', 'trusted.layerfs.origin', '-v', 'private', p('dir/file')]);
  fs.writeFileSync(p('dir/setuid'), '#!/bin/sh\n');
  fs.chmodSync(p('dir/setuid'), 0o4755);
  fs.writeFileSync(p('dir/hl1'), 'linked');
  fs.linkSync(p('dir/hl1'), p('dir/hl2'));
  fs.linkSync(p('dir/hl1'), p('hl3'));
  fs.symlinkSync('file', p('dir/sym'));
  fs.lchownSync(p('dir/sym'), 7, 8);
  execFileSync('mkfifo', ['-m', '0620', p('dir/fifo')]);
  execFileSync('mknod', ['-m', '0600', p('dir/tty'), 'c', '5', '0']);
  execFileSync('mknod', ['-m', '0660', p('dir/loop'), 'b', '7', '0']);
  const fd = fs.openSync(p('sparse'), 'w');
  fs.writeSync(fd, 'end', 0, 'utf8');
  fs.writeSync(fd, 'end', 3 << 20, 'utf8');
  fs.closeSync(fd);
  fs.writeFileSync(p('big'), Buffer.alloc(3 << 20, 0x5a));
  fs.writeFileSync(p('.wh.gone'), '');
  execFileSync('mknod', [p('ovl-gone'), 'c', '0', '0']);
  fs.mkdirSync(p('opq'));
  fs.writeFileSync(p('opq/.wh..wh..opq'), '');
  fs.writeFileSync(p('opq/new'), 'n');
  fs.mkdirSync(p('ovlopq'));
  execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', p('ovlopq')]);
  fs.writeFileSync(p('ovlopq/n'), 'n');
  fs.mkdirSync(p('.wh..wh.plnk'));
  fs.writeFileSync(p('.wh..wh.plnk/123'), 'private');
  fs.mkdirSync(p('deep/a/b/c'), { recursive: true });
  fs.writeFileSync(p('deep/a/b/c/leaf'), 'leaf');
  for (const r of ['dir/file', 'dir/hl1', 'big', 'sparse', 'deep/a/b/c/leaf', 'deep/a/b/c', 'deep/a/b', 'deep/a', 'deep', 'dir', 'opq']) {
    fs.utimesSync(p(r), t, t);
  }
}

test('commit gives what the tar round trip gave: tree, modes, owners, times, xattrs, hard links, DiffID', async (t) => {
  if (!rootOrFail(t)) return;
  const { store, top } = await newStore(t);
  const c = await store.createContainer('base');
  fillRich(store.diffDir(c.id));
  // the old commit: export the rw dir as a tar and extract it into a fresh dir
  const ref = path.join(top, 'ref');
  fs.mkdirSync(ref);
  const old = await extractLayer(exportLayer(store.diffDir(c.id)), ref);

  const committed = await store.commit(c.id, { name: 'next' });
  const got = fullView(store.diffDir(committed.id));
  const want = fullView(ref);
  assert.deepEqual(got.tree, want.tree);
  assert.deepEqual(got.xattrs, want.xattrs);
  assert.deepEqual(got.links, want.links);
  assert.deepEqual(got.links, [['dir/hl1', 'dir/hl2', 'hl3']]);
  // the DiffID is the stored layer's export: the old path's stored layer exports to the same bytes
  assert.equal(sha256(await collect(exportLayer(ref))), committed.diffId);
  assert.equal(sha256(await collect(store.exportTar(committed.id))), committed.diffId);
  assert.equal(committed.size, old.size);
  assert.equal(committed.parent, store.get(c.id).parent);
  assert.equal(store.resolve('next'), committed.id);
  // holes stay holes, private state stays out, whiteouts are AUFS files
  const d = store.diffDir(committed.id);
  assert.ok(fs.statSync(path.join(d, 'sparse')).blocks * 512 < 2 << 20, 'sparse file kept sparse (3 MiB long, zeros not written)');
  assert.ok(!fs.existsSync(path.join(d, '.wh..wh.plnk')));
  assert.ok(got.tree['.wh.ovl-gone']?.startsWith('file 644 0:0'));
  assert.ok(got.tree['ovlopq/.wh..wh..opq']?.startsWith('file 644 0:0'));
  assert.equal(fs.readdirSync(store.paths.tmpRoot).length, 0);
});

/** A tree read through an fs-like API: type, mode, owner, whole-second mtime, contents. */
async function readView(api: {
  readdir(p: string): Promise<unknown>;
  lstat(p: string): Promise<fs.Stats>;
  readFile(p: string): Promise<Buffer>;
  readlink(p: string): Promise<unknown>;
}, root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    const names = ((await api.readdir(root + rel || '/')) as string[]).sort();
    for (const n of names) {
      const r = `${rel}/${n}`;
      const st = await api.lstat(root + r);
      const head = `${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${Math.floor(st.mtimeMs / 1000)}`;
      if (st.isDirectory()) {
        out[r] = head;
        await walk(r);
      } else if (st.isFile()) out[r] = `${head} ${sha256(await api.readFile(root + r))}`;
      else if (st.isSymbolicLink()) out[r] = `${head} -> ${String(await api.readlink(root + r))}`;
      else out[r] = `${head} ${st.rdev}`;
    }
  };
  await walk('');
  return out;
}

test('squash (layer squash and commit --squash) is the merged view, with one DiffID of its export', async (t) => {
  if (!rootOrFail(t)) return;
  const { store } = await newStore(t);
  const c1 = await store.createContainer('base');
  fillRich(store.diffDir(c1.id));
  const l2 = await store.commit(c1.id, { name: 'two' });
  const c2 = await store.createContainer('two');
  const rw = store.diffDir(c2.id);
  fs.mkdirSync(path.join(rw, 'dir'));
  fs.writeFileSync(path.join(rw, 'dir/.wh.hl2'), '');
  fs.writeFileSync(path.join(rw, 'dir/old'), 'changed');
  fs.writeFileSync(path.join(rw, '.wh.deep'), '');
  fs.mkdirSync(path.join(rw, 'opq'));
  fs.writeFileSync(path.join(rw, 'opq/.wh..wh..opq'), '');
  fs.writeFileSync(path.join(rw, 'top'), 'top');

  const merged = new UnionFS(store.branchString(c2.id).replace(/=rw/, '=ro'));
  let want: Record<string, string>;
  try {
    want = await readView(merged as unknown as Parameters<typeof readView>[0], '');
  } finally {
    await merged.close();
  }
  assert.ok(want['/top'] && !want['/deep'] && !want['/dir/hl2'] && want['/dir/hl1'] && !want['/opq/new'] && !want['/gone']);

  const flat = await store.commit(c2.id, { squash: true, name: 'flat' });
  assert.equal(flat.parent, null);
  assert.equal(flat.chainId, flat.diffId);
  assert.deepEqual(await readView(fs.promises as unknown as Parameters<typeof readView>[0], store.diffDir(flat.id)), want);
  assert.equal(sha256(await collect(store.exportTar(flat.id))), flat.diffId);
  assert.ok(!fs.readdirSync(store.diffDir(flat.id)).some((n) => n.startsWith('.wh.')), 'no whiteouts in a base layer');

  // `layer squash` of the image the container was made from: its own merged view
  const sq = await store.squash(l2.id, { name: 'sq' });
  const merged2 = new UnionFS(store.branchString(l2.id));
  try {
    assert.deepEqual(
      await readView(fs.promises as unknown as Parameters<typeof readView>[0], store.diffDir(sq.id)),
      await readView(merged2 as unknown as Parameters<typeof readView>[0], ''),
    );
  } finally {
    await merged2.close();
  }
  assert.equal(sha256(await collect(store.exportTar(sq.id))), sq.diffId);
});

test('a failure half-way (ENOSPC while copying) leaves no layer, no image name and no staging dir', async (t) => {
  const { store } = await newStore(t);
  const c = await store.createContainer('base');
  const rw = store.diffDir(c.id);
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(rw, `f${i}`), Buffer.alloc(100_000, i));
  const before = store.list().map((m) => m.id).sort();
  const diffsBefore = fs.readdirSync(store.paths.diffRoot).sort();
  const saved = { ...fdops.copySys };
  let reads = 0;
  fdops.copySys.ficlone = () => {
    throw Object.assign(new Error('no reflink here'), { code: 'EOPNOTSUPP' });
  };
  fdops.copySys.read = (fd, buf, len, pos) => {
    if (++reads === 10) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    return saved.read(fd, buf, len, pos);
  };
  try {
    await assert.rejects(store.commit(c.id, { name: 'never' }), (e: { code?: string }) => e.code === 'ENOSPC');
  } finally {
    Object.assign(fdops.copySys, saved);
  }
  assert.ok(reads >= 10);
  assert.deepEqual(store.list().map((m) => m.id).sort(), before);
  assert.deepEqual(fs.readdirSync(store.paths.diffRoot).sort(), diffsBefore);
  assert.deepEqual(fs.readdirSync(store.paths.tmpRoot), []);
  assert.equal(store.images()['never:latest'], undefined);
  assert.ok(!fs.existsSync(store.paths.lockFile), 'lock released');
  // and the same commit works afterwards
  const ok = await store.commit(c.id);
  assert.equal(sha256(await collect(store.exportTar(ok.id))), ok.diffId);
});

test('a real ENOSPC (store on a small tmpfs) leaves nothing behind', async (t) => {
  if (!rootOrFail(t)) return;
  const top = tempDir();
  const mnt = path.join(top, 'fs');
  fs.mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt]);
  t.after(() => {
    spawnSync('umount', [mnt]);
    fs.rmSync(top, { recursive: true, force: true });
  });
  const store = LayerStore.open(path.join(mnt, 'store'));
  await store.importTar(once(await makeTar([{ name: 'a', body: 'a' }])), { name: 'base' });
  const c = await store.createContainer('base');
  fs.writeFileSync(path.join(store.diffDir(c.id), 'big'), Buffer.alloc(4 << 20, 1));
  const before = store.list().length;
  await assert.rejects(store.commit(c.id), (e: { code?: string }) => e.code === 'ENOSPC');
  assert.equal(store.list().length, before);
  assert.deepEqual(fs.readdirSync(store.paths.tmpRoot), []);
  assert.equal(fs.readdirSync(store.paths.diffRoot).length, before);
});

test('a mounted container is refused with one line; after umount the commit works', { timeout: 120_000 }, async (t) => {
  if (!fs.existsSync('/dev/fuse') || process.getuid?.() !== 0) {
    if (process.env.CI) assert.fail('FUSE is not usable (need root and /dev/fuse)');
    t.skip('FUSE not usable here');
    return;
  }
  const { mountLayer, unmountLayer } = await import('../../src/cli/commands/container.js');
  const { store, top } = await newStore(t);
  const c = await store.createContainer('base');
  let mounted = false;
  t.after(async () => {
    if (mounted) await unmountLayer(store, c.id).catch(() => spawnSync('umount', ['-l', store.paths.mnt(c.id)], { timeout: 10_000 }));
  });
  // a mount elsewhere with the rw dir as its branch (what the daemon's table says) counts too
  await assert.rejects(store.commit(c.id, { mountedAt: (d) => (d === store.diffDir(c.id) ? path.join(top, 'elsewhere') : undefined) }), /EBUSY/);
  const mnt = await mountLayer(store, c.id);
  mounted = true;
  fs.writeFileSync(path.join(mnt, 'new'), 'written through the mount');
  const before = store.list().length;
  await assert.rejects(store.commit(c.id), (e: Error & { code?: string }) => e.code === 'EBUSY' && /is mounted at .*; unmount it before committing/.test(e.message));
  const r = await run(process.execPath, [CLI, 'container', 'commit', c.id, 'x'], { env: { ...process.env, LAYERFS_ROOT: store.root } }).then(
    () => assert.fail('commit of a mounted container succeeded'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^layerfs: container commit [0-9a-f]{64}: .*container [0-9a-f]{12} is mounted at .*; unmount it before committing\n$/);
  assert.equal(store.list().length, before);
  await unmountLayer(store, c.id);
  mounted = false;
  const committed = await store.commit(c.id);
  assert.equal(fs.readFileSync(path.join(store.diffDir(committed.id), 'new'), 'utf8'), 'written through the mount');
});

test('a container in the AUFS format (what the engine writes): the DiffID is the one the old tar path recorded', async (t) => {
  const { store, top } = await newStore(t);
  const c = await store.createContainer('base');
  const rw = store.diffDir(c.id);
  fs.mkdirSync(path.join(rw, 'dir'));
  fs.writeFileSync(path.join(rw, 'dir/.wh.old'), '');
  fs.writeFileSync(path.join(rw, 'dir/new'), 'new', { mode: 0o600 });
  fs.linkSync(path.join(rw, 'dir/new'), path.join(rw, 'link'));
  fs.symlinkSync('dir/new', path.join(rw, 'sym'));
  fs.mkdirSync(path.join(rw, 'opq'));
  fs.writeFileSync(path.join(rw, 'opq/.wh..wh..opq'), '');
  fs.writeFileSync(path.join(rw, '.wh.gone'), '');
  const ref = path.join(top, 'ref');
  fs.mkdirSync(ref);
  const old = await extractLayer(exportLayer(rw), ref);
  const committed = await store.commit(c.id);
  assert.equal(committed.diffId, old.diffId);
  assert.deepEqual(fullView(store.diffDir(committed.id)), fullView(ref));
});
