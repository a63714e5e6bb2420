import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { LayerStore } from '../../src/store/store.js';
import { FsError } from '../../src/errors/index.js';
import { listAll, makeTar, once, tempDir, type TarEntry } from './helpers.js';

/** Imports `archive` into a fresh store beside a canary dir; asserts a one-line error and no trace. */
async function refused(t: { after: (fn: () => void) => void }, archive: Buffer, code?: string, asRoot?: boolean): Promise<string> {
  const top = tempDir();
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const root = path.join(top, 'store');
  const outside = path.join(top, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'victim'), 'safe');
  const store = LayerStore.open(root);
  const baseLayer = await store.importTar(once(await makeTar([{ name: 'ok', body: 'ok' }])));
  const before = listAll(top);
  let err: unknown;
  try {
    if (asRoot === false) {
      const { extractLayer } = await import('../../src/store/tar-import.js');
      const { decompressed } = await import('../../src/store/compression.js');
      const dest = path.join(root, 'tmp', 'manual');
      fs.mkdirSync(dest);
      try {
        await extractLayer((await decompressed(once(archive))).stream, dest, { asRoot: false });
      } finally {
        fs.rmSync(dest, { recursive: true, force: true });
      }
    } else {
      await store.importTar(once(archive), { parent: baseLayer.id });
    }
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof FsError, `refused with an FsError (got ${String(err)})`);
  assert.ok(!err.message.includes('\n'), 'one-line error');
  if (code) assert.equal(err.code, code, err.message);
  assert.deepEqual(listAll(top), before, 'store and surroundings unchanged');
  assert.equal(fs.readFileSync(path.join(outside, 'victim'), 'utf8'), 'safe');
  assert.equal(store.list().length, 1);
  return err.message;
}

const dotdot: TarEntry[] = [{ name: '../outside/victim', body: 'pwned' }];
const abs: TarEntry[] = [{ name: '/etc/evil', body: 'pwned' }];

test('.. components are refused', async (t) => {
  assert.match(await refused(t, await makeTar(dotdot), 'EINVAL'), /escapes/);
  await refused(t, await makeTar([{ name: 'a/../../outside/victim', body: 'pwned' }]), 'EINVAL');
});

test('absolute paths are refused', async (t) => {
  assert.match(await refused(t, await makeTar(abs), 'EINVAL'), /absolute/);
});

test('a symlink then a file written through it is refused', async (t) => {
  const top = tempDir();
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const msg = await refused(
    t,
    await makeTar([
      { name: 'esc', type: 'symlink', linkname: '../../../outside' },
      { name: 'esc/victim', body: 'pwned' },
    ]),
    'ELOOP',
  );
  assert.match(msg, /symlink/);
  // also through an absolute symlink to a directory
  await refused(t, await makeTar([{ name: 'd', type: 'symlink', linkname: '/tmp' }, { name: 'd/evil', body: 'x' }]), 'ELOOP');
});

test('a hard link to outside the layer is refused', async (t) => {
  assert.match(await refused(t, await makeTar([{ name: 'h', type: 'link', linkname: '../outside/victim' }])), /escapes|outside/);
  assert.match(await refused(t, await makeTar([{ name: 'h', type: 'link', linkname: '/etc/passwd' }])), /absolute|outside/);
  // a link to a file of a lower layer (not in this archive) is not allowed either
  assert.match(await refused(t, await makeTar([{ name: 'h', type: 'link', linkname: 'ok' }]), 'EPERM'), /outside the layer/);
});

test('device nodes are refused when not root', async (t) => {
  const msg = await refused(
    t,
    await makeTar([{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }]),
    'EPERM',
    false,
  );
  assert.match(msg, /device/);
});

test('truncated and corrupt archives are refused', async (t) => {
  const good = await makeTar([{ name: 'big', body: Buffer.alloc(10_000, 7) }, { name: 'after', body: 'x' }]);
  await refused(t, good.subarray(0, 3000), 'EINVAL');
  const corrupt = Buffer.from(good);
  corrupt.fill(0x41, 512 * 21, 512 * 22); // overwrite the second header
  await refused(t, corrupt, 'EINVAL');
  const gz = gzipSync(good);
  await refused(t, gz.subarray(0, Math.floor(gz.length / 2)), 'EINVAL');
});

test('unknown compression is refused', async (t) => {
  assert.match(await refused(t, Buffer.from('PK\x03\x04 this is a zip file, not a tar'.padEnd(600, 'z'))), /unknown compression/);
  assert.match(await refused(t, Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3]), 'ENOTSUP'), /xz/);
});

test('a parent that does not exist and ids that are not ours are refused', async (t) => {
  const root = tempDir();
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const store = LayerStore.open(root);
  const tarBuf = await makeTar([{ name: 'a', body: 'a' }]);
  await assert.rejects(store.importTar(once(tarBuf), { parent: 'f'.repeat(64) }), { code: 'ENOENT' });
  await assert.rejects(store.importTar(once(tarBuf), { parent: '../../etc' }), { code: 'ENOENT' });
  await assert.rejects(store.remove('../../etc'), { code: 'ENOENT' });
  assert.throws(() => store.get('../x'), { code: 'ENOENT' });
  assert.deepEqual(fs.readdirSync(path.join(root, 'diff')), []);
  assert.deepEqual(fs.readdirSync(path.join(root, 'tmp')), []);
});
