import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { LayerStore } from '../../src/store/store.js';
import { collect, makeTar, once, sha256, snapshot, tempDir, type TarEntry } from './helpers.js';

const base: TarEntry[] = [
  { name: 'etc/', type: 'directory', mode: 0o755 },
  { name: 'etc/hostname', body: 'box\n', mode: 0o644, uid: 1000, gid: 100 },
  { name: 'etc/secret', body: 'x', mode: 0o600 },
  { name: 'bin/', type: 'directory', mode: 0o755 },
  { name: 'bin/tool', body: '#!/bin/sh\necho hi\n', mode: 0o4755 },
  { name: 'bin/tool-link', type: 'link', linkname: 'bin/tool' },
  { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' },
  { name: 'var/', type: 'directory', mode: 0o1777 },
  { name: 'var/pipe', type: 'fifo', mode: 0o640 },
  { name: 'dev/', type: 'directory' },
  { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
  { name: 'opt/x', body: 'x', pax: { 'SCHILY.xattr.user.comment': 'hello', mtime: '1600000000.123456789' } },
];

test('import stores the layer in the aufs layout with metadata, and exports reproducibly', async (t) => {
  const root = tempDir();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const store = LayerStore.open(root);
  const tarBuf = await makeTar(base);
  const layer = await store.importTar(once(gzipSync(tarBuf)), { name: 'base' });
  assert.equal(layer.diffId, sha256(tarBuf), 'DiffID is the digest of the uncompressed tar');
  assert.equal(layer.chainId, layer.diffId);
  assert.equal(layer.parent, null);
  const diff = path.join(root, 'diff', layer.id);
  assert.equal(fs.readFileSync(path.join(diff, 'etc/hostname'), 'utf8'), 'box\n');
  const st = fs.lstatSync(path.join(diff, 'etc/hostname'));
  assert.equal(st.uid, 1000);
  assert.equal(st.gid, 100);
  assert.equal(st.mtimeMs, 1_600_000_000_000);
  assert.equal(fs.lstatSync(path.join(diff, 'bin/tool')).mode & 0o7777, 0o4755);
  assert.equal(fs.lstatSync(path.join(diff, 'bin/tool')).ino, fs.lstatSync(path.join(diff, 'bin/tool-link')).ino);
  assert.equal(fs.readlinkSync(path.join(diff, 'bin/sh')), '/bin/busybox');
  assert.equal(fs.lstatSync(path.join(diff, 'var')).mode & 0o7777, 0o1777);
  assert.ok(fs.lstatSync(path.join(diff, 'var/pipe')).isFIFO());
  assert.equal(fs.lstatSync(path.join(diff, 'dev/null')).rdev, fs.statSync('/dev/null').rdev);
  const xt = fs.lstatSync(path.join(diff, 'opt/x'), { bigint: true }).mtimeNs;
  assert.ok(xt > 1_600_000_000_123_000_000n && xt < 1_600_000_000_124_000_000n, `ns mtime kept (${xt})`);
  assert.equal(fs.readFileSync(path.join(root, 'layers', layer.id), 'utf8'), '');
  assert.ok(fs.statSync(path.join(root, 'mnt', layer.id)).isDirectory());
  assert.equal(store.images()['base:latest']?.layer, layer.id);

  // export -> import -> export: same bytes, and the imported layer's DiffID is that digest
  const e1 = await collect(store.exportTar(layer.id));
  const e1again = await collect(store.exportTar(layer.id));
  assert.ok(e1.equals(e1again), 'export is byte-for-byte reproducible');
  const again = await store.importTar(once(e1));
  assert.equal(again.diffId, sha256(e1));
  const e2 = await collect(store.exportTar(again.id));
  assert.equal(sha256(e2), sha256(e1), 'import -> export round trip keeps the DiffID');
  assert.deepEqual(snapshot(path.join(root, 'diff', again.id), { times: true }), snapshot(diff, { times: true }));
  for (const id of [layer.id, again.id]) {
    const x = execFileSync('getfattr', ['--only-values', '-n', 'user.comment', path.join(root, 'diff', id, 'opt/x')]);
    assert.equal(x.toString(), 'hello', 'xattr from PAX SCHILY.xattr kept');
  }
});

test('a child layer keeps OCI whiteouts and opaque markers as AUFS whiteouts; layers file lists ancestors', async (t) => {
  const root = tempDir();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const store = LayerStore.open(root);
  const l1 = await store.importTar(once(await makeTar(base)));
  const l2 = await store.importTar(
    once(
      await makeTar([
        { name: 'etc/', type: 'directory' },
        { name: 'etc/.wh.secret' },
        { name: 'opt/', type: 'directory' },
        { name: 'opt/new', body: 'n' },
        { name: 'opt/.wh..wh..opq' }, // opaque after a sibling: still applies to the lower layers only
        { name: '.wh..wh.plnk/', type: 'directory' }, // aufs private state: dropped
      ]),
    ),
    { parent: l1.id },
  );
  const l3 = await store.importTar(once(await makeTar([{ name: 'z', body: 'z' }])), { parent: l2.id.slice(0, 12) });
  assert.equal(fs.readFileSync(path.join(root, 'layers', l3.id), 'utf8'), `${l2.id}\n${l1.id}\n`);
  assert.notEqual(l2.chainId, l2.diffId);
  const d2 = path.join(root, 'diff', l2.id);
  assert.deepEqual(fs.readdirSync(path.join(d2, 'opt')).sort(), ['.wh..wh..opq', 'new']);
  assert.ok(fs.lstatSync(path.join(d2, 'etc/.wh.secret')).isFile());
  assert.ok(!fs.existsSync(path.join(d2, '.wh..wh.plnk')));

  // flattening applies the whiteouts: the merged tree has no secret and only opt/new
  const flat = path.join(root, 'flat-test');
  fs.mkdirSync(flat);
  await store.flattenInto(l3.id, flat);
  const snap = snapshot(flat);
  assert.equal(snap['etc/secret'], undefined);
  assert.ok(snap['etc/hostname']);
  assert.equal(snap['opt/x'], undefined);
  assert.ok(snap['opt/new']);
  assert.ok(snap['z']);
  fs.rmSync(flat, { recursive: true });

  // the exported child layer carries the whiteouts in OCI form, opaque first in its directory
  const names: string[] = [];
  const tarStream = (await import('tar-stream')).extract();
  const done = (async () => {
    for await (const e of tarStream) {
      names.push(e.header.name);
      e.resume();
    }
  })();
  tarStream.end(await collect(store.exportTar(l2.id)));
  await done;
  assert.deepEqual(names, ['etc/', 'etc/.wh.secret', 'opt/', 'opt/.wh..wh..opq', 'opt/new']);
});

test('squash flattens a chain into one base layer', async (t) => {
  const root = tempDir();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const store = LayerStore.open(root);
  const l1 = await store.importTar(once(await makeTar(base)));
  const l2 = await store.importTar(once(await makeTar([{ name: 'etc/.wh.secret' }, { name: 'etc/motd', body: 'hi' }])), {
    parent: l1.id,
  });
  const sq = await store.squash(l2.id, { name: 'flat:1' });
  assert.equal(sq.parent, null);
  assert.equal(sq.chainId, sq.diffId);
  const snap = snapshot(path.join(root, 'diff', sq.id));
  assert.equal(snap['etc/secret'], undefined);
  assert.equal(snap['etc/.wh.secret'], undefined);
  assert.ok(snap['etc/motd']);
  assert.equal(sha256(await collect(store.exportTar(sq.id))), sq.diffId);
  assert.equal(store.resolve('flat:1'), sq.id);
});

test('zstd layers are imported (magic bytes), with the DiffID of the uncompressed tar', async (t) => {
  const root = tempDir();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const store = LayerStore.open(root);
  const tarBuf = await makeTar([{ name: 'a/b', body: 'zstd body '.repeat(1000) }]);
  const zst = execFileSync('zstd', ['-q', '-c', '-'], { input: tarBuf });
  assert.deepEqual([...zst.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd]);
  const l = await store.importTar(once(zst));
  assert.equal(l.diffId, sha256(tarBuf));
  assert.equal(fs.readFileSync(path.join(root, 'diff', l.id, 'a/b'), 'utf8'), 'zstd body '.repeat(1000));
  // a truncated zstd stream is an error and leaves nothing
  await assert.rejects(store.importTar(once(zst.subarray(0, zst.length - 10))), { code: 'EINVAL' });
  assert.equal(store.list().length, 1);
});

test('binary xattr values survive import and export byte for byte; GNU tar reads our export', async (t) => {
  const root = tempDir();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const store = LayerStore.open(root);
  const { headerBlocks, padding, END_OF_ARCHIVE } = await import('../../src/store/tar-format.js');
  const value = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0x80, 0x0a, 0x3d, 0x20, 0xc3]);
  const body = Buffer.from('cap');
  const longName = `deep/${'n'.repeat(120)}/ünïcode-${'x'.repeat(90)}`;
  const archive = Buffer.concat([
    headerBlocks({ name: 'bin/', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1_600_000_000 }),
    headerBlocks({ name: 'bin/ping', type: 'file', mode: 0o755, uid: 0, gid: 0, size: 3, mtime: 1_600_000_000, xattrs: [['user.bin', value]] }),
    body,
    padding(3),
    headerBlocks({ name: longName, type: 'file', mode: 0o644, uid: 3_000_000, gid: 3_000_001, size: 0, mtime: 1_600_000_000 }),
    END_OF_ARCHIVE,
  ]);
  const l = await store.importTar(once(archive));
  const diff = path.join(root, 'diff', l.id);
  const hex = execFileSync('getfattr', ['--only-values', '-e', 'hex', '-n', 'user.bin', path.join(diff, 'bin/ping')]);
  assert.ok(hex.equals(value), `xattr bytes kept (${hex.toString('hex')})`);
  const st = fs.lstatSync(path.join(diff, longName));
  assert.equal(st.uid, 3_000_000);
  assert.equal(st.gid, 3_000_001);
  const out = await collect(store.exportTar(l.id));
  assert.ok(out.includes(Buffer.concat([Buffer.from(' SCHILY.xattr.user.bin='), value, Buffer.from('\n')])));
  const again = await store.importTar(once(out));
  assert.equal(sha256(await collect(store.exportTar(again.id))), sha256(out));
  // GNU tar lists and extracts what we write, xattrs included
  const list = execFileSync('tar', ['-tvf', '-'], { input: out }).toString();
  assert.match(list, /bin\/ping/);
  assert.ok(list.includes(longName));
  const x = path.join(root, 'gnu-x');
  fs.mkdirSync(x);
  execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-C', x, '-xf', '-'], { input: out });
  assert.equal(fs.readFileSync(path.join(x, 'bin/ping'), 'utf8'), 'cap');
  const gnuHex = execFileSync('getfattr', ['--only-values', '-n', 'user.bin', path.join(x, 'bin/ping')]);
  assert.ok(gnuHex.equals(value));
});
