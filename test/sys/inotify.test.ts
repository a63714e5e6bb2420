/** The inotify wrapper (native/inotify.c + sys/inotify.ts): watches, events, errors, the parser. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_IGNORED, IN_ISDIR, IN_MOVED_FROM, IN_MOVED_TO, IN_ONLYDIR, Inotify, maxUserWatches, parseEvents,
} from '../../src/sys/inotify.js';

test('inotify: events of a watched directory, with names; nothing queued reads empty', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'layerfs-inotify-'));
  const ino = new Inotify();
  t.after(() => {
    ino.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const wd = ino.add(dir, IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR);
  assert.ok(wd > 0);
  assert.deepEqual(ino.read(), [], 'non-blocking: nothing yet');
  writeFileSync(join(dir, 'a'), 'x');
  mkdirSync(join(dir, 'sub'));
  renameSync(join(dir, 'a'), join(dir, 'b'));
  rmSync(join(dir, 'b'));
  const evs = ino.read().map((e) => [e.wd, e.mask, e.name]);
  assert.deepEqual(evs, [
    [wd, IN_CREATE, 'a'],
    [wd, IN_CLOSE_WRITE, 'a'],
    [wd, IN_CREATE | IN_ISDIR, 'sub'],
    [wd, IN_MOVED_FROM, 'a'],
    [wd, IN_MOVED_TO, 'b'],
    [wd, IN_DELETE, 'b'],
  ]);
  ino.remove(wd);
  assert.deepEqual(ino.read().map((e) => e.mask), [IN_IGNORED]);
});

test('inotify: errors as FsError (a file with IN_ONLYDIR, a missing path)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'layerfs-inotify-'));
  const ino = new Inotify();
  t.after(() => {
    ino.close();
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(join(dir, 'f'), '');
  assert.throws(() => ino.add(join(dir, 'f'), IN_CREATE | IN_ONLYDIR), { code: 'ENOTDIR', syscall: 'inotify_add_watch' });
  assert.throws(() => ino.add(join(dir, 'none'), IN_CREATE), { code: 'ENOENT' });
  const max = maxUserWatches();
  assert.ok(max === null || max > 0);
});

test('parseEvents: records with padded names, one without a name', () => {
  const rec = (wd: number, mask: number, name: string, pad: number): Buffer => {
    const n = name === '' ? 0 : Buffer.byteLength(name) + pad;
    const b = Buffer.alloc(16 + n);
    b.writeInt32LE(wd, 0);
    b.writeUInt32LE(mask, 4);
    b.writeUInt32LE(7, 8);
    b.writeUInt32LE(n, 12);
    b.write(name, 16);
    return b;
  };
  const buf = Buffer.concat([rec(1, IN_CREATE, 'abc', 13), rec(2, IN_DELETE, '', 0), rec(3, IN_MOVED_TO, 'é', 6)]);
  assert.deepEqual(parseEvents(buf, buf.length), [
    { wd: 1, mask: IN_CREATE, cookie: 7, name: 'abc' },
    { wd: 2, mask: IN_DELETE, cookie: 7, name: '' },
    { wd: 3, mask: IN_MOVED_TO, cookie: 7, name: 'é' },
  ]);
});
