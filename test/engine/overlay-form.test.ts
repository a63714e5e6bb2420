/**
 * The overlay option form (`lowerdir=,upperdir=,workdir=`, as podman and Docker hand a mount program)
 * writes the overlay on-disk format into the upper dir, as kernel overlayfs and fuse-overlayfs do:
 * whiteouts are char devices 0/0, a dir made over a removed lower dir carries
 * `trusted.overlay.opaque=y`, and no `.wh.` file appears. Lower layers may hold either format
 * (containers/storage extracts layers with AUFS `.wh.` whiteouts when a mount program is set).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Union } from '../../src/engine/index.js';
import { parseOptions } from '../../src/engine/params.js';
import { buildBranches, getXattr, mkTemp, readTree } from '../helpers/tree-spec.js';
import { ctx, writeFile } from './fixture.js';

test('the overlay form writes overlay whiteouts by default, dirs= keeps aufs, whiteout= chooses', () => {
  const always = { isWritable: () => true };
  assert.equal(parseOptions('lowerdir=/l,upperdir=/u,workdir=/w', always).whiteout, 'overlay');
  assert.equal(parseOptions('lowerdir=/l1:/l2', always).whiteout, 'overlay');
  assert.equal(parseOptions('dirs=/u=rw:/l=ro', always).whiteout, 'aufs');
  assert.equal(parseOptions('lowerdir=/l,upperdir=/u,workdir=/w,whiteout=aufs', always).whiteout, 'aufs');
  assert.equal(parseOptions('whiteout=overlay,dirs=/u=rw:/l=ro', always).whiteout, 'overlay');
});

test('rm -r DIR && mkdir DIR over AUFS-format lowers leaves an overlay opaque dir in the upper, as the kernel', (t) => {
  const tmp = mkTemp('layerfs-ovlform-');
  t.after(() => tmp.cleanup());
  // two lower layers as containers/storage extracts them with a mount program: AUFS whiteouts
  const br = buildBranches(tmp.dir, {
    upper: {},
    work: {},
    l1: { data: { gone: { deep: { f: 'x' }, g: 'g' }, keep: 'k' }, etc: { old: { whiteout: true } } },
    l0: { data: { gone: { base: 'b' } }, etc: { passwd: 'root\n', old: 'o' } },
  });
  const u = new Union(`lowerdir=${br.l1}:${br.l0},upperdir=${br.upper},workdir=${br.work}`);
  t.after(() => u.close());
  const data = u.lookup(u.root, 'data');
  const gone = u.lookup(data, 'gone');
  // rm -r /data/gone
  u.unlink(u.lookup(gone, 'deep'), 'f');
  u.rmdir(gone, 'deep');
  u.unlink(gone, 'g');
  u.unlink(gone, 'base');
  u.rmdir(data, 'gone');
  // && mkdir /data/gone && echo new > /data/gone/n
  const again = u.mkdir(data, 'gone', 0o755, ctx);
  writeFile(u, again, 'n', 'new');
  u.unlink(data, 'keep');

  assert.deepEqual(readTree(br.upper!, { skipPrivate: true }), {
    data: { gone: { n: 'new' }, keep: { whiteout: true, format: 'overlay' } },
  });
  assert.equal(getXattr(path.join(br.upper!, 'data/gone'), 'trusted.overlay.opaque'), 'y');
  assert.equal(getXattr(path.join(br.upper!, 'data'), 'trusted.overlay.opaque'), undefined);
  assert.deepEqual(u.readdir(u.lookup(u.lookup(u.root, 'data'), 'gone')).map((e) => e.name), ['n']);

  // a fresh mount over the same dirs sees the same (the opaque xattr hides both lowers)
  const v = new Union(`lowerdir=${br.l1}:${br.l0},upperdir=${br.upper},workdir=${br.work}`);
  t.after(() => v.close());
  const vd = v.lookup(v.root, 'data');
  assert.deepEqual(v.readdir(v.lookup(vd, 'gone')).map((e) => e.name), ['n']);
  assert.deepEqual(v.readdir(vd).map((e) => e.name), ['gone']);
  assert.deepEqual(v.readdir(v.lookup(v.root, 'etc')).map((e) => e.name), ['passwd']);
});

test('mounting leaves the upper root times alone (our inode table and hidden work dir made there), as overlayfs', (t) => {
  const tmp = mkTemp('layerfs-ovlform-');
  t.after(() => tmp.cleanup());
  const br = buildBranches(tmp.dir, { upper: {}, upper2: {}, work: {}, low: { a: 'a' } });
  const old = new Date('2001-02-03T04:05:06Z');
  for (const d of [br.upper!, br.upper2!]) fs.utimesSync(d, old, old);
  for (const opts of [`lowerdir=${br.low},upperdir=${br.upper},workdir=${br.work}`, `dirs=${br.upper2}=rw:${br.low}=ro`]) {
    const u = new Union(opts);
    u.close();
  }
  for (const d of [br.upper!, br.upper2!]) {
    assert.ok(fs.readdirSync(d).length > 0, 'the private files are there');
    assert.equal(fs.statSync(d).mtime.toISOString(), old.toISOString(), d);
  }
});
