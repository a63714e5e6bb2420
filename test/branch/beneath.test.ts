/**
 * A branch is held by a directory fd and every access resolves beneath it: no symlink inside the
 * branch (planted before, or swapped in for a directory while the branch is used) leads a read or a
 * change outside the branch root, and moving the branch's path away does not matter any more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Branch } from '../../src/branch/index.js';
import { branchScratch, codeOf } from '../helpers/branch-scratch.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL } = fs.constants;

function scratch(t: { after(fn: () => void): void }): { root: string; br: string; out: string } {
  return branchScratch(t, 'beneath', 'OUTSIDE\n');
}

function readAll(b: Branch, rel: string): string {
  const fd = b.open(rel, O_RDONLY);
  try {
    const buf = Buffer.alloc(64);
    return buf.subarray(0, fs.readSync(fd, buf, 0, 64, 0)).toString();
  } finally {
    fs.closeSync(fd);
  }
}

test('a symlink inside the branch never leads an open, listing, readlink, xattr or change outside', (t) => {
  const s = scratch(t);
  fs.symlinkSync(s.out, join(s.br, 'abs')); // absolute: to the outside dir
  fs.symlinkSync('../out', join(s.br, 'rel')); // relative, climbing out
  fs.symlinkSync('/', join(s.br, 'slash'));
  fs.mkdirSync(join(s.br, 'd'));
  fs.writeFileSync(join(s.br, 'd', 'f'), 'inside\n');
  const b = new Branch(s.br, 'rw', [], 0);
  t.after(() => b.close());
  const before = fs.statSync(join(s.out, 'canary'), { bigint: true });
  for (const via of ['abs', 'rel', `slash${s.out}`]) {
    const canary = `${via}/canary`;
    assert.notEqual(codeOf(() => readAll(b, canary)), 'ok', `open ${canary}`);
    assert.notEqual(codeOf(() => b.open(canary, O_WRONLY)), 'ok', `open for writing ${canary}`);
    assert.notEqual(codeOf(() => b.readdir(via)), 'ok', `readdir ${via}`);
    assert.notEqual(codeOf(() => b.readdirNames(via)), 'ok', `readdir ${via}`);
    assert.notEqual(codeOf(() => b.createEmpty(`${via}/new`, 0o644)), 'ok', `create in ${via}`);
    assert.notEqual(codeOf(() => b.mkdir(`${via}/newdir`, 0o755)), 'ok', `mkdir in ${via}`);
    assert.notEqual(codeOf(() => b.unlink(canary)), 'ok', `unlink ${canary}`);
    assert.notEqual(codeOf(() => b.rename(canary, 'stolen')), 'ok', `rename ${canary} out`);
    assert.notEqual(codeOf(() => b.rename('d/f', `${via}/planted`)), 'ok', `rename into ${via}`);
    assert.notEqual(codeOf(() => b.link('d/f', `${via}/linked`)), 'ok', `link into ${via}`);
    assert.notEqual(codeOf(() => b.symlink('x', `${via}/sym`)), 'ok', `symlink into ${via}`);
    assert.notEqual(codeOf(() => b.chmod(canary, 0o777)), 'ok', `chmod ${canary}`);
    assert.notEqual(codeOf(() => b.utimens(canary, 0, 0, 0, 0)), 'ok', `utimens ${canary}`);
    assert.notEqual(codeOf(() => b.truncate(canary, 0)), 'ok', `truncate ${canary}`);
    assert.notEqual(codeOf(() => b.setxattr(canary, 'user.x', Buffer.from('1'))), 'ok', `setxattr ${canary}`);
    assert.equal(b.tryGetxattr(canary, 'user.x'), undefined);
  }
  // the symlinks themselves are entries of the branch: seen, never followed
  assert.equal(b.lstat('abs')!.isSymbolicLink(), true);
  assert.equal(b.readlink('abs'), s.out);
  assert.equal(codeOf(() => b.open('abs', O_RDONLY)), 'ELOOP');
  assert.equal(codeOf(() => b.chmod('abs', 0o700)), 'EOPNOTSUPP', 'chmod never follows a symlink');
  b.utimens('abs', 1, 0, 1, 0); // the link's own times
  assert.equal(fs.lstatSync(join(s.br, 'abs')).mtimeMs, 1000);
  // nothing outside changed, nothing new there
  assert.deepEqual(fs.readdirSync(s.out), ['canary']);
  assert.equal(fs.readFileSync(join(s.out, 'canary'), 'utf8'), 'OUTSIDE\n');
  const after = fs.statSync(join(s.out, 'canary'), { bigint: true });
  assert.equal(after.mtimeNs, before.mtimeNs);
  assert.equal(after.mode, before.mode);
  assert.equal(after.ctimeNs, before.ctimeNs);
  // and inside it all works
  assert.equal(readAll(b, 'd/f'), 'inside\n');
  b.createEmpty('d/new', 0o644);
  b.rename('d/new', 'd/new2');
  assert.deepEqual(b.readdirNames('d').sort(), ['f', 'new2']);
});

test('the branch stays the directory it was opened as, whatever its path leads to later', (t) => {
  const s = scratch(t);
  fs.writeFileSync(join(s.br, 'f'), 'mine\n');
  const b = new Branch(s.br, 'rw', [], 0);
  t.after(() => b.close());
  // the path now names another directory (as when a mount covers it)
  fs.renameSync(s.br, join(s.root, 'moved'));
  fs.mkdirSync(s.br);
  fs.writeFileSync(join(s.br, 'f'), 'impostor\n');
  assert.equal(readAll(b, 'f'), 'mine\n');
  b.createEmpty('g', 0o644);
  b.mkdir('sub', 0o755);
  b.createEmpty('sub/h', 0o600);
  assert.deepEqual(fs.readdirSync(join(s.root, 'moved')).sort(), ['f', 'g', 'sub']);
  assert.deepEqual(fs.readdirSync(s.br), ['f']);
  assert.equal(b.lstat('sub/h')!.mode & 0o777, 0o600);
  assert.equal(b.sub('sub', 'rw', -1).readdirNames('').join(), 'h');
});

/**
 * A child process swaps directory `d` of the branch for a symlink to `/` (and back) in a tight
 * loop. `d/<path of out>/canary` inside the branch mirrors the canary outside, so whenever `d` is
 * the symlink the same relative name leads to the real canary.
 */
test('racer: a directory swapped for a symlink to / in a loop never leads a read or a write outside', async (t) => {
  const s = scratch(t);
  const mirror = join(s.br, 'd', s.out); // br/d/<root>/out
  fs.mkdirSync(mirror, { recursive: true });
  fs.writeFileSync(join(mirror, 'canary'), 'inside\n');
  fs.writeFileSync(join(s.out, 'only-outside'), '');
  const inRel = `d${s.out}`; // rel of the mirrored dir
  const before = fs.statSync(join(s.out, 'canary'), { bigint: true });
  const b = new Branch(s.br, 'rw', [], 0);
  t.after(() => b.close());
  const script = `
    const fs = require('node:fs');
    const d = ${JSON.stringify(join(s.br, 'd'))}, aside = d + '.aside', end = Date.now() + 1500;
    let n = 0;
    // each state held a little while (busy wait), so that the other side's calls land in both
    const hold = () => { const t = process.hrtime.bigint() + 100000n; while (process.hrtime.bigint() < t); };
    while (Date.now() < end) {
      try { fs.renameSync(d, aside); fs.symlinkSync('/', d); hold(); fs.unlinkSync(d); fs.renameSync(aside, d); hold(); n++; } catch {}
    }
    try { fs.unlinkSync(d); } catch {}
    try { fs.renameSync(aside, d); } catch {}
    process.stdout.write(String(n));
  `;
  const racer = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let swaps = '';
  racer.stdout.on('data', (c: Buffer) => (swaps += c.toString()));
  const exited = new Promise<void>((resolve) => racer.once('exit', () => resolve()));
  t.after(() => {
    if (racer.exitCode === null) racer.kill('SIGKILL');
  });
  const seen = new Set<string>();
  let ops = 0;
  let okReads = 0;
  const deadline = Date.now() + 1400;
  while (Date.now() < deadline) {
    const i = ops++;
    const tryIt = (fn: () => void): void => {
      try {
        fn();
      } catch {
        /* the race may make any of these fail; it must never reach outside */
      }
    };
    tryIt(() => {
      seen.add(readAll(b, `${inRel}/canary`));
      okReads++;
    });
    tryIt(() => b.createEmpty(`${inRel}/new-${i}`, 0o644));
    tryIt(() => b.rename(`${inRel}/new-${i}`, `${inRel}/renamed-${i}`));
    tryIt(() => b.mkdir(`${inRel}/dir-${i}`, 0o755));
    tryIt(() => b.utimens(`${inRel}/canary`, 5, 0, 5, 0));
    tryIt(() => b.chmod(`${inRel}/canary`, 0o600));
    tryIt(() => b.setxattr(`${inRel}/canary`, 'user.racer', Buffer.from('x')));
    tryIt(() => {
      const fd = b.open(`${inRel}/canary`, O_WRONLY);
      fs.writeSync(fd, 'inside\n', 0);
      fs.closeSync(fd);
    });
    tryIt(() => b.readdirNames(inRel).forEach((n) => seen.add(`name:${n}`)));
    tryIt(() => b.unlink(`${inRel}/renamed-${i}`));
    tryIt(() => fs.closeSync(b.open(`${inRel}/x-${i}`, O_WRONLY | O_CREAT | O_EXCL, 0o644)));
  }
  await exited;
  assert.ok(Number(swaps) > 20, `the racer swapped (${swaps} times)`);
  assert.ok(okReads > 10, `reads went through between swaps (${okReads} of ${ops})`);
  assert.deepEqual([...seen].filter((v) => !v.startsWith('name:')), ['inside\n'], 'every read got the branch file');
  assert.ok(!seen.has('name:only-outside'), 'listings only of the branch');
  assert.deepEqual(fs.readdirSync(s.out).sort(), ['canary', 'only-outside'], 'nothing created outside');
  assert.equal(fs.readFileSync(join(s.out, 'canary'), 'utf8'), 'OUTSIDE\n');
  const after = fs.statSync(join(s.out, 'canary'), { bigint: true });
  assert.equal(after.mtimeNs, before.mtimeNs, 'canary mtime unchanged');
  assert.equal(after.ctimeNs, before.ctimeNs, 'canary ctime unchanged (no chmod, xattr, utimes)');
  assert.equal(after.mode, before.mode);
  assert.ok(fs.readdirSync(mirror).length > 1, 'the creates landed in the branch');
});

test('open takes the flags a FUSE OPEN passes as they are: __FMODE_EXEC (an execve) opens the file as open(2) would', (t) => {
  const s = scratch(t);
  fs.writeFileSync(join(s.br, 'prog'), 'inside\n', { mode: 0o755 });
  const b = new Branch(s.br, 'rw', [], 0);
  t.after(() => b.close());
  const FMODE_EXEC = 0o40; // not an O_ flag: open(2) ignores it, openat2 alone would refuse it (EINVAL)
  const fd = b.open('prog', O_RDONLY | FMODE_EXEC);
  try {
    const buf = Buffer.alloc(16);
    assert.equal(buf.subarray(0, fs.readSync(fd, buf, 0, 16, 0)).toString(), 'inside\n');
  } finally {
    fs.closeSync(fd);
  }
});
