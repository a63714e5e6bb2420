import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FsError, fsErr, toFsError, isCode, codeOf, errnoOf } from '../../src/errors/index.js';

test('FsError has the shape and message of a node:fs error', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-err-'));
  try {
    const p = path.join(dir, 'missing');
    let nodeErr: NodeJS.ErrnoException | undefined;
    try {
      fs.openSync(p, 'r');
    } catch (e) {
      nodeErr = e as NodeJS.ErrnoException;
    }
    assert.ok(nodeErr);
    const ours = fsErr('ENOENT', 'open', p);
    assert.equal(ours.code, nodeErr.code);
    assert.equal(ours.errno, nodeErr.errno);
    assert.equal(ours.syscall, nodeErr.syscall);
    assert.equal(ours.path, nodeErr.path);
    assert.equal(ours.message, nodeErr.message);
    assert.ok(ours instanceof Error);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('toFsError maps node:fs errors once and unknown throws to EIO', () => {
  let caught: unknown;
  try {
    fs.rmdirSync(os.tmpdir() + '/layerfs-definitely-missing-' + process.pid);
  } catch (e) {
    caught = e;
  }
  const mapped = toFsError(caught);
  assert.ok(mapped instanceof FsError);
  assert.equal(mapped.code, 'ENOENT');
  assert.equal(mapped.errnoNumber, 2);
  assert.equal(toFsError(new Error('boom')).code, 'EIO');
  assert.equal(toFsError('weird').code, 'EIO');
  const same = fsErr('EXDEV', 'rename');
  assert.equal(toFsError(same), same);
});

test('errno tables and isCode', () => {
  assert.equal(codeOf(2), 'ENOENT');
  assert.equal(codeOf(-18), 'EXDEV');
  assert.equal(codeOf(95), 'EOPNOTSUPP', 'the name Linux uses for files, not its alias ENOTSUP');
  assert.equal(errnoOf('EROFS'), 30);
  assert.equal(errnoOf('ENOTEMPTY'), 39);
  assert.equal(errnoOf('ENAMETOOLONG'), 36);
  assert.ok(isCode(fsErr('EEXIST'), 'ENOENT', 'EEXIST'));
  assert.ok(!isCode(null, 'ENOENT'));
  const e = fsErr('EROFS', 'mkdir', '/a').withContext('mkdir', '/mnt/a');
  assert.equal(e.message, "EROFS: read-only file system, mkdir '/mnt/a'");
  assert.equal(new FsError('NOTACODE').code, 'EIO');
});
