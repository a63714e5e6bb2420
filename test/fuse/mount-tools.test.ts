/**
 * Everyday tools on a real layerfs mount (one rw branch over two read-only ones): coreutils, tar
 * round trip, git, mkfifo, xattrs, hard links, an open file across its copy-up, parallel writers,
 * and the CLI's one-line errors that leave nothing mounted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, daemonPids, stopDaemons, forceUnmount, removeScratch, fuseUnavailable, isMounted, layerfsMounts, ok, requireFuse, sh, waitFor } from '../helpers/mount.js';

const canMount = fuseUnavailable() === null;

describe('tools on a layerfs mount', () => {
  let root = '';
  let mnt = '';
  let up = '';
  let lo1 = '';
  let lo2 = '';
  let env: NodeJS.ProcessEnv = {};

  before(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-tools-')));
    chmodSync(root, 0o755); // other users reach the mount (umask/permission test)
    up = join(root, 'up');
    lo1 = join(root, 'lo1');
    lo2 = join(root, 'lo2');
    mnt = join(root, 'mnt');
    for (const d of [up, lo1, lo2, mnt]) mkdirSync(d);
    writeFileSync(join(lo2, 'base.txt'), 'base\n');
    mkdirSync(join(lo2, 'dir', 'sub'), { recursive: true });
    writeFileSync(join(lo2, 'dir', 'sub', 'deep.txt'), 'deep\n');
    writeFileSync(join(lo1, 'l1.txt'), 'lower one\n');
    writeFileSync(join(lo1, 'shadow.txt'), 'from lo1\n');
    writeFileSync(join(lo2, 'shadow.txt'), 'from lo2\n');
    env = { ...process.env, LAYERFS_RUN_DIR: join(root, 'run') };
    if (!canMount) return;
    ok(cli(['mount', '-o', `dirs=${up}=rw:${lo1}=ro:${lo2}=ro`, mnt], { env }), 'mount');
  });

  after(async () => {
    if (root) await removeScratch(root, [mnt]);
  });

  const inMnt = (cmd: string): string => ok(sh(`set -e; ${cmd}`, { cwd: mnt }), cmd);

  test('merged view: topmost branch wins', (t) => {
    if (!requireFuse(t)) return;
    assert.deepEqual(readdirSync(mnt).sort(), ['base.txt', 'dir', 'l1.txt', 'shadow.txt']);
    assert.equal(readFileSync(join(mnt, 'shadow.txt'), 'utf8'), 'from lo1\n');
  });

  test('cp -a, mv, rm -r, ln -s, chmod, touch -d', (t) => {
    if (!requireFuse(t)) return;
    const src = join(root, 'cpsrc');
    mkdirSync(join(src, 'a', 'b'), { recursive: true });
    writeFileSync(join(src, 'a', 'b', 'f.txt'), 'payload\n');
    symlinkSync('b/f.txt', join(src, 'a', 'link'));
    inMnt(`cp -a ${src} ./copy && diff -r ${src} ./copy`);
    assert.equal(readFileSync(join(up, 'copy', 'a', 'b', 'f.txt'), 'utf8'), 'payload\n', 'new files land in the rw branch');
    inMnt('mv copy moved && test ! -e copy && test -f moved/a/b/f.txt');
    assert.equal(inMnt('readlink moved/a/link'), 'b/f.txt\n');
    inMnt('rm -r moved && test ! -e moved');
    // a lower directory removed through the union stays in its branch, hidden by a whiteout
    inMnt('cp -a dir dircopy && rm -r dir && test ! -e dir');
    assert.ok(statSync(join(lo2, 'dir', 'sub', 'deep.txt')).isFile(), 'lower branch untouched');
    inMnt('mv dircopy dir && cat dir/sub/deep.txt');
    inMnt('ln -s base.txt soft && test "$(cat soft)" = base');
    inMnt('chmod 640 base.txt');
    assert.equal(inMnt('stat -c %a base.txt'), '640\n');
    assert.equal(statSync(join(lo2, 'base.txt')).mode & 0o777, 0o644, 'chmod copied up, lower unchanged');
    inMnt("touch -d '2001-02-03 04:05:06.123456789' l1.txt");
    assert.equal(inMnt('stat -c %y l1.txt'), '2001-02-03 04:05:06.123456789 +0000\n');
  });

  test("the caller's umask shapes new files, dirs and nodes; owners come from the caller", (t) => {
    if (!requireFuse(t)) return;
    inMnt('umask 027; touch um-f; mkdir um-d; mkfifo um-p; umask 0; touch um-0');
    assert.equal(inMnt('stat -c %a um-f um-d um-p um-0'), '640\n750\n640\n666\n');
    assert.equal(statSync(join(up, 'um-d')).mode & 0o777, 0o750, 'as stored in the rw branch');
    inMnt('mkdir -m 777 pub');
    ok(sh(`setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'umask 022; echo n > ${mnt}/pub/nobody.txt'`), 'write as nobody');
    assert.equal(inMnt('stat -c "%u:%g %a" pub/nobody.txt'), '65534:65534 644\n');
    const denied = sh(`setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'echo x >> ${mnt}/um-f'`);
    assert.notEqual(denied.status, 0, 'default_permissions: nobody cannot write a 640 root file');
    assert.match(denied.stderr, /Permission denied/);
  });

  test('tar -x into the mount and back out is byte-identical', (t) => {
    if (!requireFuse(t)) return;
    const tree = join(root, 'tartree');
    mkdirSync(join(tree, 'x', 'y'), { recursive: true });
    writeFileSync(join(tree, 'x', 'small'), 'hello\n');
    writeFileSync(join(tree, 'x', 'y', 'big'), Buffer.alloc(3 * 1024 * 1024 + 17, 7));
    writeFileSync(join(tree, 'exec.sh'), '#!/bin/sh\n', { mode: 0o755 });
    symlinkSync('x/small', join(tree, 'sym'));
    ok(sh(`ln ${tree}/x/small ${tree}/hardlink && touch -d '2020-01-01 00:00:00' ${tree}/x/y ${tree}/x`), 'prepare tree');
    const tarIn = join(root, 'in.tar');
    ok(sh(`tar --sort=name -C ${tree} -cf ${tarIn} .`), 'tar c');
    inMnt(`mkdir t && tar -C t -xpf ${tarIn}`);
    const tarOut = join(root, 'out.tar');
    ok(sh(`tar --sort=name -C ${mnt}/t -cf ${tarOut} .`), 'tar c from mount');
    assert.ok(readFileSync(tarIn).equals(readFileSync(tarOut)), 'archives are byte-identical');
  });

  test('git init/add/commit on the mount', (t) => {
    if (!requireFuse(t)) return;
    const g = 'git -c user.email=t@example.com -c user.name=t -c init.defaultBranch=main';
    inMnt(`mkdir repo && cd repo && ${g} init -q && echo one > a && ${g} add a && ${g} commit -qm first && echo two >> a && ${g} commit -qam second && git fsck --no-progress`);
    assert.equal(inMnt('cd repo && git log --format=%s').trim(), 'second\nfirst');
    assert.equal(inMnt('cd repo && git status --porcelain'), '');
  });

  test('mkfifo makes a fifo that works through the mount', (t) => {
    if (!requireFuse(t)) return;
    inMnt('mkfifo ff');
    assert.equal(inMnt('stat -c %F ff'), 'fifo\n');
    assert.equal(inMnt('(echo through > ff &) ; cat ff'), 'through\n');
  });

  test('user.* xattrs with setfattr/getfattr, on lower files too', (t) => {
    if (!requireFuse(t)) return;
    inMnt('echo x > xa && setfattr -n user.color -v blue xa');
    assert.equal(inMnt('getfattr --only-values -n user.color xa'), 'blue');
    inMnt('setfattr -n user.k -v v l1.txt && setfattr -n user.k2 -v v2 l1.txt');
    assert.match(inMnt('getfattr -d l1.txt'), /user\.k="v"\nuser\.k2="v2"/);
    inMnt('setfattr -x user.k l1.txt');
    const r = sh('getfattr -n user.k l1.txt', { cwd: mnt });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /No such attribute/);
  });

  test('hard links share the inode and count links', (t) => {
    if (!requireFuse(t)) return;
    inMnt('ln base.txt hard1 && ln hard1 hard2');
    const [a, b, c] = ['base.txt', 'hard1', 'hard2'].map((n) => statSync(join(mnt, n)));
    assert.equal(a!.ino, b!.ino);
    assert.equal(b!.ino, c!.ino);
    assert.equal(c!.nlink, 3);
    inMnt('echo appended >> hard2');
    assert.equal(readFileSync(join(mnt, 'base.txt'), 'utf8').split('\n').pop(), '');
    assert.match(readFileSync(join(mnt, 'base.txt'), 'utf8'), /appended\n$/);
    inMnt('rm hard1');
    assert.equal(statSync(join(mnt, 'hard2')).nlink, 2);
  });

  test('a file opened before its copy-up keeps working', (t) => {
    if (!requireFuse(t)) return;
    // fd 3 reads the lower file; the append copies it up; fd 3 still reads
    const out = inMnt('exec 3< dir/sub/deep.txt; echo more >> dir/sub/deep.txt; cat <&3; echo ---; cat dir/sub/deep.txt; exec 3<&-');
    assert.match(out, /^deep\n/);
    assert.match(out, /---\ndeep\nmore\n$/);
    assert.equal(readFileSync(join(lo2, 'dir', 'sub', 'deep.txt'), 'utf8'), 'deep\n');
    // a write fd opened before another writer's copy-up
    inMnt('exec 4>> shadow.txt; echo one >&4; echo two >> shadow.txt; echo three >&4; exec 4>&-');
    assert.equal(readFileSync(join(mnt, 'shadow.txt'), 'utf8'), 'from lo1\none\ntwo\nthree\n');
  });

  test('parallel writers in several processes', (t) => {
    if (!requireFuse(t)) return;
    const n = 8;
    inMnt(`mkdir par && for i in $(seq ${n}); do (head -c 300000 /dev/urandom > ${root}/p$i; cp ${root}/p$i par/f$i; dd if=${root}/p$i of=par/g$i bs=4096 status=none) & done; wait`);
    for (let i = 1; i <= n; i++) {
      const want = readFileSync(join(root, `p${i}`));
      assert.ok(readFileSync(join(mnt, 'par', `f${i}`)).equals(want), `f${i}`);
      assert.ok(readFileSync(join(mnt, 'par', `g${i}`)).equals(want), `g${i}`);
    }
  });
});

describe('CLI errors leave nothing mounted', () => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-errs-')));
  const env = { ...process.env, LAYERFS_RUN_DIR: join(root, 'run') };
  const a = join(root, 'a');
  const mnt = join(root, 'mnt');
  mkdirSync(a);
  mkdirSync(mnt);
  after(async () => {
    forceUnmount(mnt);
    await stopDaemons(join(root, 'run'));
    rmSync(root, { recursive: true, force: true });
  });

  function failsWithOneLine(args: string[], pattern: RegExp): void {
    const r = cli(args, { env });
    assert.notEqual(r.status, 0, `expected failure: ${args.join(' ')}`);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
    assert.match(lines[0]!, /^layerfs: /);
    assert.match(lines[0]!, pattern);
    assert.ok(!isMounted(mnt), 'nothing mounted');
    const run = env.LAYERFS_RUN_DIR!;
    // the resident daemon's (and its supervisor's) own files stay until it idles out; nothing of the failed mount
    const left = existsSync(run) ? readdirSync(run).filter((n) => n !== 'mounts' && !n.startsWith('daemon-') && !n.startsWith('supervisor-')) : [];
    const meta = existsSync(join(run, 'mounts')) ? readdirSync(join(run, 'mounts')) : [];
    assert.deepEqual([...left, ...meta], [], 'nothing left in the runtime dir');
  }

  test('missing branch dir', (t) => {
    if (!requireFuse(t)) return;
    failsWithOneLine(['mount', '-o', `dirs=${a}=rw:${root}/nope=ro`, mnt], /nope/);
  });

  test('missing mount point', (t) => {
    if (!requireFuse(t)) return;
    failsWithOneLine(['mount', '-o', `dirs=${a}`, join(root, 'no-mnt')], /no-mnt.*does not exist/);
  });

  test('bad option', (t) => {
    if (!requireFuse(t)) return;
    failsWithOneLine(['mount', '-o', `dirs=${a},passthrough=maybe`, mnt], /passthrough/);
  });

  test('busy mount point', async (t) => {
    if (!requireFuse(t)) return;
    ok(cli(['mount', '-o', `dirs=${a}`, mnt], { env }), 'first mount');
    try {
      const r = cli(['mount', '-o', `dirs=${a}`, mnt], { env });
      assert.notEqual(r.status, 0);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1);
      assert.match(r.stderr, /busy/);
      assert.equal(layerfsMounts().filter((m) => m === mnt).length, 1, 'still mounted once');
    } finally {
      ok(cli(['umount', mnt], { env }), 'umount');
    }
    assert.ok(await waitFor(() => daemonPids(mnt, env.LAYERFS_RUN_DIR).length === 0), 'daemon gone');
  });

  test('umount of something that is not a layerfs mount', (t) => {
    if (!requireFuse(t)) return;
    failsWithOneLine(['umount', a], /not a layerfs mount point/);
  });
});
