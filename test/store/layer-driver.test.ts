/**
 * The id-addressed layer driver: create / applyDiff / get (a real FUSE union) / put / diff /
 * changes / sizes / remove, with the store's aufs layout checked on disk.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LayerDriver } from '../../src/store/layer-driver.js';
import { fuseMounter } from '../../src/integrations/fuse-mounter.js';
import { isMountPoint } from '../../src/sys/mountinfo.js';
import { collect, listTar, makeTar, once, tempDir } from './helpers.js';

const ID = (n: number): string => n.toString(16).padStart(64, 'a');

describe('LayerDriver', { timeout: 120_000 }, () => {
  test('layers, a mounted rw union, diff, changes, sizes, remove', async (t) => {
    const root = tempDir('layerfs-driver-');
    const d = new LayerDriver(root, fuseMounter);
    t.after(async () => {
      await d.cleanup();
      fs.rmSync(root, { recursive: true, force: true });
    });
    d.create(ID(1));
    const base = await makeTar([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/passwd', body: 'root:x:0:0\n' },
      { name: 'etc/gone', body: 'bye\n' },
      { name: 'bin/', type: 'directory' },
    ]);
    assert.equal(await d.applyDiff(ID(1), once(base)), 15);
    d.create(ID(2), ID(1));
    assert.equal(await d.applyDiff(ID(2), once(await makeTar([{ name: 'etc/.wh.gone' }, { name: 'hello', body: 'hi' }]))), 2);
    d.createReadWrite(`${ID(3)}-init`, ID(2));
    assert.equal(fs.readFileSync(path.join(root, 'layers', `${ID(3)}-init`), 'utf8'), `${ID(2)}\n${ID(1)}\n`);
    assert.ok(d.exists(ID(2)) && !d.exists(ID(9)));

    // a read-only layer is handed out as its diff dir, whiteouts and all
    assert.equal(await d.get(ID(2)), path.join(root, 'diff', ID(2)));
    assert.ok(fs.existsSync(path.join(root, 'diff', ID(2), 'etc/.wh.gone')));
    await d.put(ID(2));
    assert.ok(!d.isReadWrite(ID(2)) && d.isReadWrite(`${ID(3)}-init`));

    const mnt = await d.get(`${ID(3)}-init`);
    assert.equal(mnt, path.join(root, 'mnt', `${ID(3)}-init`));
    assert.ok(isMountPoint(mnt));
    assert.equal(await d.get(`${ID(3)}-init`), mnt); // counted, not mounted twice
    assert.deepEqual(fs.readdirSync(path.join(mnt, 'etc')).sort(), ['passwd']);
    fs.appendFileSync(path.join(mnt, 'etc/passwd'), 'me:x:1:1\n');
    fs.writeFileSync(path.join(mnt, 'new'), 'new');
    fs.unlinkSync(path.join(mnt, 'hello'));
    await d.put(`${ID(3)}-init`);
    assert.ok(isMountPoint(mnt), 'one reference left');
    await assert.rejects(d.remove(`${ID(3)}-init`), /mounted/);
    await d.put(`${ID(3)}-init`);
    assert.ok(!isMountPoint(mnt));

    // copy-on-write: the lower layers are untouched
    assert.equal(fs.readFileSync(path.join(root, 'diff', ID(1), 'etc/passwd'), 'utf8'), 'root:x:0:0\n');
    assert.deepEqual(
      d.changes(`${ID(3)}-init`).map((c) => `${c.kind} ${c.path}`),
      ['C /etc', 'C /etc/passwd', 'D /hello', 'A /new'],
    );
    const tarList = (await listTar(await collect(d.diff(`${ID(3)}-init`)))).map((e) => e.name);
    assert.ok(tarList.includes('.wh.hello') && tarList.includes('new') && tarList.includes('etc/passwd'));
    assert.equal(d.diffSize(`${ID(3)}-init`), 'root:x:0:0\nme:x:1:1\n'.length + 3);

    await assert.rejects(d.remove(ID(1)), /parent of/);
    await d.remove(`${ID(3)}-init`);
    await d.remove(ID(2));
    await d.remove(ID(1));
    assert.deepEqual(fs.readdirSync(path.join(root, 'diff')), []);
    assert.deepEqual(fs.readdirSync(path.join(root, 'layers')), []);
  });

  test('bad ids and missing layers are one-line errors', async (t) => {
    const root = tempDir('layerfs-driver-');
    t.after(() => fs.rmSync(root, { recursive: true, force: true }));
    const d = new LayerDriver(root, fuseMounter);
    assert.throws(() => d.create('../x'), /invalid layer id: "\.\.\/x"/);
    assert.throws(() => d.create('a/b'), /invalid layer id/);
    assert.throws(() => d.create(ID(1), ID(5)), /no such layer/);
    d.create(ID(1));
    assert.throws(() => d.create(ID(1)), /already exists/);
    await assert.rejects(d.get(ID(7)), /no such layer/);
    await assert.rejects(d.applyDiff(ID(1), once(Buffer.from('not a tar at all, just text'.repeat(40)))), /./);
    assert.deepEqual(fs.readdirSync(path.join(root, 'diff', ID(1))), [], 'a failed apply leaves the layer as it was');
    assert.deepEqual(fs.readdirSync(path.join(root, 'tmp')), []);
  });
});
