/**
 * What podman does through a mount program, request by request (docs/performance.md, "podman
 * through layerfs: where the time goes"): a container's shell making files (`echo x > f`: open,
 * dup2, close, close), podman's naive diff reading every file (lstat, getxattr of
 * security.capability, listxattr), and a process whose last mount ended.
 * Real mounts in this process (startSession); counts are the requests the mount served.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSession, type Session } from '../../src/fuse/session.js';
import { Fopen } from '../../src/fuse/abi.js';
import { noFlushBit } from '../../src/fuse/flush-policy.js';
import * as native from '../../src/sys/native.js';
import { forceUnmount, ok, requireFuse, sh } from '../helpers/mount.js';

function layers(t: TestContext, files: number): { root: string; opts: string; mnt: string } {
  const root = mkdtempSync(join(tmpdir(), 'layerfs-podpath-'));
  for (const d of ['lower', 'upper', 'work', 'mnt']) mkdirSync(join(root, d));
  for (let i = 0; i < files; i++) {
    const d = join(root, 'lower', `d${i % 10}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}`), `${i}\n`);
  }
  t.after(() => {
    forceUnmount(join(root, 'mnt'));
    rmSync(root, { recursive: true, force: true });
  });
  return { root, opts: `lowerdir=${join(root, 'lower')},upperdir=${join(root, 'upper')},workdir=${join(root, 'work')}`, mnt: join(root, 'mnt') };
}

async function unmount(s: Session): Promise<void> {
  await s.unmount();
  await s.done;
}

test('FOPEN_NOFLUSH: only a passthrough write open of a file with other names asks for FLUSH', () => {
  const O_RDONLY = 0;
  const O_WRONLY = 1;
  const O_RDWR = 2;
  assert.equal(noFlushBit(O_RDONLY, true, 3), Fopen.NOFLUSH, 'read-only');
  assert.equal(noFlushBit(O_WRONLY, false, 3), Fopen.NOFLUSH, 'writes reach the daemon (WRITE invalidates)');
  assert.equal(noFlushBit(O_WRONLY, true, 0), Fopen.NOFLUSH, 'no other name');
  assert.equal(noFlushBit(O_RDWR, true, 1), 0, 'a hard link the kernel knows by another name');
});

test('a shell making files through the mount: no FLUSH round trip per close', async (t) => {
  if (!requireFuse(t)) return;
  const l = layers(t, 0);
  const s = await startSession({ options: l.opts, mountpoint: l.mnt });
  t.after(() => unmount(s).catch(() => {}));
  const n = 300;
  // warm the directory first: what is counted is the files
  ok(sh('mkdir many', { cwd: l.mnt }), 'mkdir');
  const before = s.requests();
  ok(sh(`cd many && i=0; while [ $i -lt ${n} ]; do echo $i > f$i; i=$((i+1)); done`, { cwd: l.mnt }), 'make files');
  const per = (s.requests() - before) / n;
  // per file: GETATTR of the dir, LOOKUP (absent), CREATE, GETXATTR security.capability on the
  // write, RELEASE = 5; the shell's two closes were two FLUSHes more (7 per file before)
  assert.ok(per <= 5.2, `requests per file made: ${per.toFixed(2)} (7 with a FLUSH per close)`);
  assert.equal(readdirSync(join(l.mnt, 'many')).length, n);
  assert.equal(statSync(join(l.root, 'upper', 'many', `f${n - 1}`)).size, `${n - 1}\n`.length);
});

test('a hard link made while its file is open for writing sees the size after close', async (t) => {
  if (!requireFuse(t)) return;
  const l = layers(t, 0);
  const s = await startSession({ options: l.opts, mountpoint: l.mnt });
  t.after(() => unmount(s).catch(() => {}));
  writeFileSync(join(l.mnt, 'a'), 'one\n');
  ok(sh('exec 3>>a; ln a b; stat -c %s b >/dev/null; echo two >&3; exec 3>&-; stat -c %s b', { cwd: l.mnt }), 'link while open');
  // RELEASE comes after close returns: wait for it through a fresh stat of each name
  let size = 0;
  for (let i = 0; i < 50 && size !== 8; i++) {
    size = statSync(join(l.mnt, 'b')).size;
    if (size !== 8) await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(size, 'one\ntwo\n'.length);
  assert.equal(statSync(join(l.mnt, 'a')).size, 'one\ntwo\n'.length);
});

test("podman's naive diff walk: lstat + getxattr + listxattr of every file is 2 requests a file, and a set xattr shows at once", async (t) => {
  if (!requireFuse(t)) return;
  const files = 400;
  const l = layers(t, files);
  const s = await startSession({ options: l.opts, mountpoint: l.mnt });
  t.after(() => unmount(s).catch(() => {}));
  const walk = (): number => {
    let n = 0;
    for (const d of readdirSync(l.mnt)) {
      for (const f of readdirSync(join(l.mnt, d))) {
        const p = join(l.mnt, d, f);
        lstatSync(p);
        assert.equal(native.tryLgetxattr(p, 'security.capability'), undefined, 'ENODATA');
        assert.deepEqual(native.llistxattr(p), []);
        n++;
      }
    }
    return n;
  };
  readdirSync(l.mnt); // the root's entries (lookups) before counting
  const before = s.requests();
  assert.equal(walk(), files);
  const per = (s.requests() - before) / files;
  // GETXATTR + LISTXATTR per file; lstat is answered by the kernel from READDIRPLUS
  assert.ok(per <= 2.2, `requests per file walked: ${per.toFixed(2)}`);
  // the remembered empty listing never hides a name set through the mount
  const p = join(l.mnt, 'd1', 'f1');
  ok(sh(`setfattr -n user.x -v 1 ${p}`), 'setfattr');
  assert.deepEqual(native.llistxattr(p), ['user.x']);
  assert.deepEqual(native.llistxattr(join(l.mnt, 'd1', 'f11')), [], 'others still empty');
  linkSync(p, join(l.mnt, 'd1', 'f1-link'));
  assert.deepEqual(native.llistxattr(join(l.mnt, 'd1', 'f1-link')), ['user.x']);
});

test('a process whose last mount ended exits by itself (an idle serving thread does not hold it)', (t) => {
  if (!requireFuse(t)) return;
  const l = layers(t, 1);
  const session = new URL('../../src/fuse/session.js', import.meta.url).href;
  for (const how of ['return', 'process.exit(0)']) {
    const script = `const { startSession } = await import(${JSON.stringify(session)});
const s = await startSession({ options: ${JSON.stringify(l.opts)}, mountpoint: ${JSON.stringify(l.mnt)} });
await s.unmount(); await s.done; ${how === 'return' ? '' : how};`;
    const file = join(l.root, 'mount-once.mjs');
    writeFileSync(file, script);
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(r.status, 0, `${how}: status ${r.status} signal ${r.signal} ${r.stderr}`);
    assert.ok(performance.now() - t0 < 10_000, `${how}: exited in ${(performance.now() - t0).toFixed(0)} ms`);
  }
});
