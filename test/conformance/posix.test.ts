/**
 * POSIX behaviour through a mounted union, as ext4 gives it (issue 4 item 3). The same assertions run
 * against kernel overlayfs (a check of the tests themselves) and layerfs. Targets:
 * LAYERFS_POSIX_TARGETS=overlay,layerfs (default; also fuse-overlayfs).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  constants as C,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, fallocate, UTIME_NOW, UTIME_OMIT, utimensat } from '../../src/sys/native.js';
import { parseKind, requireMount, type UnionKind } from '../helpers/overlay.js';
import { deepRel, GROUP, makeFixture, USER, type Fixture } from './posix-fixture.js';
import { probe } from './probe.js';

const targets: UnionKind[] = (process.env.LAYERFS_POSIX_TARGETS ?? 'overlay,layerfs')
  .split(',')
  .map((s) => parseKind(s.trim(), 'layerfs'));

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (typeof e === 'object' && e !== null && 'code' in e) return String((e as { code: unknown }).code);
    throw e;
  }
  return 'no error';
}

for (const kind of targets) {
  describe(`POSIX through ${kind}`, { timeout: 120_000 }, () => {
    let fx: Fixture | undefined;
    /** The mounted fixture, made on first use; undefined when the test was skipped. */
    const need = (t: { skip(msg?: string): void }): Fixture | undefined => {
      if (!requireMount(t, kind)) return undefined;
      fx ??= makeFixture(kind);
      return fx;
    };
    after(() => fx?.close());

    test('names: 255 bytes work, 256 bytes give ENAMETOOLONG', (t) => {
      const f = need(t);
      if (!f) return;
      const ok = 'n'.repeat(255);
      const tooLong = 'n'.repeat(256);
      writeFileSync(f.p(ok), 'x');
      assert.equal(statSync(f.p(ok)).size, 1);
      assert.ok(readdirSync(f.mnt).includes(ok));
      const multibyte = `${'é'.repeat(127)}a`; // 255 bytes
      writeFileSync(f.p(multibyte), 'y');
      assert.ok(readdirSync(f.mnt).includes(multibyte));
      assert.equal(code(() => writeFileSync(f.p(tooLong), 'x')), 'ENAMETOOLONG');
      assert.equal(code(() => writeFileSync(f.p('é'.repeat(128)), 'x')), 'ENAMETOOLONG');
      assert.equal(code(() => mkdirSync(f.p(tooLong))), 'ENAMETOOLONG');
      assert.equal(code(() => lstatSync(f.p(tooLong))), 'ENAMETOOLONG');
      assert.equal(code(() => renameSync(f.p(ok), f.p(tooLong))), 'ENAMETOOLONG');
      assert.equal(code(() => symlinkSync('t', f.p(tooLong))), 'ENAMETOOLONG');
      unlinkSync(f.p(ok));
      assert.ok(!readdirSync(f.mnt).includes(ok));
    });

    test('paths up to PATH_MAX: 4095 bytes work, 4096 give ENAMETOOLONG; deep lower files copy up', (t) => {
      const f = need(t);
      if (!f) return;
      let d = f.p('pm');
      mkdirSync(d);
      while (d.length + 1 + 200 + 1 + 100 < 4095) {
        d = join(d, 'd'.repeat(200));
        mkdirSync(d);
      }
      const rest = 4095 - d.length - 1;
      assert.ok(rest > 0 && rest <= 255);
      const full = join(d, 'f'.repeat(rest));
      assert.equal(Buffer.byteLength(full), 4095);
      writeFileSync(full, 'at the limit');
      assert.equal(readFileSync(full, 'utf8'), 'at the limit');
      const over = join(d, 'f'.repeat(rest + 1));
      assert.equal(code(() => writeFileSync(over, 'x')), 'ENAMETOOLONG');
      // A lower file whose host path is longer than PATH_MAX: read it, then copy it up by appending.
      const deep = f.p(deepRel);
      assert.ok(Buffer.byteLength(deep) < 4096);
      assert.ok(Buffer.byteLength(join(f.layers.lowers[1]!, deepRel)) > 4096);
      assert.equal(readFileSync(deep, 'utf8'), 'deep lower\n');
      const fd = openSync(deep, 'a');
      writeSync(fd, 'appended\n');
      closeSync(fd);
      assert.equal(readFileSync(deep, 'utf8'), 'deep lower\nappended\n');
      f.remount();
      assert.equal(readFileSync(deep, 'utf8'), 'deep lower\nappended\n');
    });

    test('fstat of an open unlinked file reports nlink 0 (lower and upper files)', (t) => {
      const f = need(t);
      if (!f) return;
      writeFileSync(f.p('unl-new'), 'new\n');
      for (const name of ['unl-f', 'unl-new']) {
        const fd = openSync(f.p(name), 'r+');
        try {
          assert.equal(fstatSync(fd).nlink, 1);
          unlinkSync(f.p(name));
          assert.equal(fstatSync(fd).nlink, 0, `${name}: nlink after unlink`);
          writeSync(fd, 'Z', 0);
          const b = Buffer.alloc(3);
          assert.equal(readSync(fd, b, 0, 3, 0), 3);
          assert.equal(b.toString()[0], 'Z');
        } finally {
          closeSync(fd);
        }
        assert.equal(code(() => lstatSync(f.p(name))), 'ENOENT');
        assert.ok(!readdirSync(f.mnt).includes(name));
      }
    });

    test('hard-link counts right after copy-up', (t) => {
      const f = need(t);
      if (!f) return;
      // link() copies the lower file up; both names are then one inode with nlink 2
      linkSync(f.p('link-f'), f.p('link-g'));
      const a = lstatSync(f.p('link-f'));
      const b = lstatSync(f.p('link-g'));
      assert.equal(a.nlink, 2);
      assert.equal(b.nlink, 2);
      assert.equal(a.ino, b.ino);
      writeFileSync(f.p('link-g'), 'through g\n');
      assert.equal(readFileSync(f.p('link-f'), 'utf8'), 'through g\n');
      unlinkSync(f.p('link-f'));
      assert.equal(lstatSync(f.p('link-g')).nlink, 1);
      // copy-up by a write first, then two more links
      const p2 = f.p('link2-f');
      const before = lstatSync(p2).ino;
      const fd = openSync(p2, 'r+');
      writeSync(fd, 'W', 0);
      closeSync(fd);
      linkSync(p2, f.p('link2-g'));
      linkSync(p2, f.p('link2-h'));
      for (const n of ['link2-f', 'link2-g', 'link2-h']) {
        const s: Stats = lstatSync(f.p(n));
        assert.equal(s.nlink, 3, n);
        assert.equal(s.ino, before, `${n}: ino kept`);
      }
      // a fresh upper file
      writeFileSync(f.p('link-new'), 'n');
      linkSync(f.p('link-new'), f.p('link-new2'));
      assert.equal(lstatSync(f.p('link-new')).nlink, 2);
    });

    test('st_ino stable across copy-up and remount', (t) => {
      const f = need(t);
      if (!f) return;
      const file0 = lstatSync(f.p('ino-f')).ino;
      const dir0 = lstatSync(f.p('ino-d')).ino;
      const inner0 = lstatSync(f.p('ino-d/inner')).ino;
      writeFileSync(f.p('ino-f'), 'copied up\n');
      writeFileSync(f.p('ino-d/new'), 'forces the dir up\n');
      writeFileSync(f.p('ino-upper'), 'upper only\n');
      const upper0 = lstatSync(f.p('ino-upper')).ino;
      assert.equal(lstatSync(f.p('ino-f')).ino, file0, 'file ino after copy-up');
      assert.equal(lstatSync(f.p('ino-d')).ino, dir0, 'dir ino after copy-up');
      assert.equal(lstatSync(f.p('ino-d/inner')).ino, inner0, 'untouched lower file');
      f.remount();
      assert.equal(lstatSync(f.p('ino-f')).ino, file0, 'file ino after remount');
      assert.equal(lstatSync(f.p('ino-d')).ino, dir0, 'dir ino after remount');
      assert.equal(lstatSync(f.p('ino-d/inner')).ino, inner0, 'lower file after remount');
      assert.equal(lstatSync(f.p('ino-upper')).ino, upper0, 'upper file after remount');
      assert.equal(readFileSync(f.p('ino-f'), 'utf8'), 'copied up\n');
    });

    test('another user: permission checks (allow_other + default_permissions)', (t) => {
      const f = need(t);
      if (!f) return;
      const r = probe(
        [
          ['read', f.p('secret')],
          ['read', f.p('pub')],
          ['write', f.p('pub'), 'x'],
          ['create', f.p('user-in-root'), 0o644],
          ['create', f.p('shared/user-file'), 0o640],
          ['stat', f.p('shared/user-file')],
          ['mkdir', f.p('shared/user-dir'), 0o755],
          ['unlink', f.p('pub')],
          ['chmod', f.p('pub'), 0o777],
          ['rename', f.p('lower.txt'), f.p('shared/stolen')],
        ],
        USER,
      );
      assert.deepEqual(r.slice(0, 5), ['EACCES', 'public\n', 'EACCES', 'EACCES', 'ok']);
      const st = r[5] as { uid: number; gid: number; mode: number };
      assert.equal(st.uid, USER.uid);
      assert.equal(st.gid, USER.gid);
      assert.equal(st.mode & 0o777, 0o640);
      assert.deepEqual(r.slice(6), ['ok', 'EACCES', 'EPERM', 'EACCES']);
      assert.equal(readFileSync(f.p('pub'), 'utf8'), 'public\n');
      assert.equal(lstatSync(f.p('shared/user-dir')).uid, USER.uid);
    });

    test('sticky directory: only the owner (or root) removes or renames an entry', (t) => {
      const f = need(t);
      if (!f) return;
      const r = probe(
        [
          ['unlink', f.p('sticky/other')],
          ['rename', f.p('sticky/other'), f.p('sticky/taken')],
          ['write', f.p('sticky/other'), 'O'],
          ['create', f.p('sticky/new'), 0o644],
          ['rename', f.p('sticky/new'), f.p('sticky/new2')],
          ['unlink', f.p('sticky/mine')],
        ],
        USER,
      );
      assert.deepEqual(r, ['EPERM', 'EPERM', 'ok', 'ok', 'ok', 'ok']);
      assert.equal(readFileSync(f.p('sticky/other'), 'utf8'), 'Other\n');
      unlinkSync(f.p('sticky/other')); // root may
      assert.deepEqual(readdirSync(f.p('sticky')).sort(), ['new2']);
    });

    test('setgid directory: new entries take its group, subdirs inherit the bit', (t) => {
      const f = need(t);
      if (!f) return;
      writeFileSync(f.p('sgid/root-file'), 'r');
      mkdirSync(f.p('sgid/sub'), 0o755);
      assert.equal(lstatSync(f.p('sgid/root-file')).gid, GROUP);
      const sub = lstatSync(f.p('sgid/sub'));
      assert.equal(sub.gid, GROUP);
      assert.equal(sub.mode & 0o2000, 0o2000, 'subdir keeps S_ISGID');
      const r = probe(
        [
          ['create', f.p('sgid/user-file'), 0o755],
          ['stat', f.p('sgid/user-file')],
          ['chmod', f.p('sgid/user-file'), 0o2755],
          ['stat', f.p('sgid/user-file')],
        ],
        USER,
      );
      assert.equal(r[0], 'ok');
      assert.equal((r[1] as { gid: number }).gid, GROUP);
      assert.equal(r[2], 'ok');
      // not a member of the file's group: chmod silently drops S_ISGID
      assert.equal((r[3] as { mode: number }).mode & 0o7777, 0o755);
    });

    test('utimensat: explicit ns times, UTIME_OMIT and UTIME_NOW (lower file)', (t) => {
      const f = need(t);
      if (!f) return;
      const p = f.p('ut-f');
      const m0 = statSync(p, { bigint: true }).mtimeNs;
      utimensat(p, 1000, 250, 0, UTIME_OMIT, false);
      let s = statSync(p, { bigint: true });
      assert.equal(s.atimeNs, 1000_000_000_250n);
      assert.equal(s.mtimeNs, m0, 'UTIME_OMIT keeps mtime');
      utimensat(p, 0, UTIME_OMIT, 2000, 500, false);
      s = statSync(p, { bigint: true });
      assert.equal(s.atimeNs, 1000_000_000_250n, 'UTIME_OMIT keeps atime');
      assert.equal(s.mtimeNs, 2000_000_000_500n);
      const before = BigInt(Date.now() - 2000) * 1_000_000n;
      utimensat(p, 0, UTIME_NOW, 0, UTIME_OMIT, false);
      s = statSync(p, { bigint: true });
      assert.ok(s.atimeNs >= before, 'UTIME_NOW sets atime to now');
      assert.equal(s.mtimeNs, 2000_000_000_500n);
      assert.equal(readFileSync(p, 'utf8'), 'ut-f lower\n');
      // another user with write permission may set "now" but not explicit times
      const r = probe([['utime_now', f.p('ut-mine')], ['utime_now', f.p('pub')]], USER);
      assert.deepEqual(r, ['ok', 'EACCES']);
    });

    test('O_TRUNC, O_APPEND and O_EXCL on lower, upper and whited-out names', (t) => {
      const f = need(t);
      if (!f) return;
      closeSync(openSync(f.p('trunc-f'), C.O_WRONLY | C.O_TRUNC));
      assert.equal(statSync(f.p('trunc-f')).size, 0);
      assert.equal(readFileSync(join(f.layers.lowers[1]!, 'trunc-f'), 'utf8'), 'trunc-f lower\n', 'lower untouched');
      const fd = openSync(f.p('app-f'), C.O_WRONLY | C.O_APPEND);
      writeSync(fd, 'A', 0); // O_APPEND wins over the position
      writeSync(fd, 'B');
      closeSync(fd);
      assert.equal(readFileSync(f.p('app-f'), 'utf8'), 'app-f lower\nAB');
      const excl = C.O_CREAT | C.O_EXCL | C.O_WRONLY;
      assert.equal(code(() => openSync(f.p('excl-f'), excl)), 'EEXIST');
      assert.equal(code(() => openSync(f.p('top.txt'), excl)), 'EEXIST');
      assert.equal(code(() => lstatSync(f.p('gone'))), 'ENOENT');
      closeSync(openSync(f.p('gone'), excl, 0o600));
      assert.equal(statSync(f.p('gone')).size, 0, 'a new file, not the hidden one');
      closeSync(openSync(f.p('excl-new'), excl));
      assert.equal(code(() => openSync(f.p('excl-new'), excl)), 'EEXIST');
    });

    test('fallocate: allocate, keep size, punch a hole (lower file), and the fallocate command', (t) => {
      const f = need(t);
      if (!f) return;
      const p = f.p('falloc-f');
      const fd = openSync(p, 'r+');
      try {
        fallocate(fd, 0, 0, 8192);
        assert.equal(fstatSync(fd).size, 8192);
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 8192, 8192);
        assert.equal(fstatSync(fd).size, 8192);
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2);
      } finally {
        closeSync(fd);
      }
      const b = readFileSync(p);
      assert.equal(b.length, 8192);
      assert.deepEqual([...b.subarray(0, 4)], [0, 0, 'c'.charCodeAt(0), 0]);
      const r = spawnSync('fallocate', ['-l', '16384', f.p('falloc-cmd')], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(statSync(f.p('falloc-cmd')).size, 16384);
    });

    test('mmap reads and shared writes (lower files), persistent across remount', (t) => {
      const f = need(t);
      if (!f) return;
      const r = probe([
        ['mmap_read', f.p('mmap-f')],
        ['mmap_write', f.p('mmapw-f'), 2, 'AB'],
        ['read', f.p('mmapw-f')],
      ]);
      assert.deepEqual(r, ['0123456789', 'ok', '01AB456789']);
      assert.equal(readFileSync(f.p('mmapw-f'), 'utf8'), '01AB456789');
      assert.equal(readFileSync(join(f.layers.lowers[1]!, 'mmapw-f'), 'utf8'), '0123456789', 'lower untouched');
      f.remount();
      assert.equal(readFileSync(f.p('mmapw-f'), 'utf8'), '01AB456789');
    });
  });
}
