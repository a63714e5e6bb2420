/**
 * Rootless mounts, as a normal user would make them (the test runs as root and becomes the test
 * user `layerfs-test` through setpriv; see helpers/rootless-user.ts):
 *  - a normal user mounts through fusermount3: the runtime dir is $XDG_RUNTIME_DIR/layerfs, reads
 *    see the lower files, a write copies up, a delete leaves a whiteout, `layerfs info` says what
 *    fell back, `layerfs umount` and `fusermount3 -u` both free the mount, the daemon exits when
 *    idle leaving no files, and the lower dir is byte-identical afterwards;
 *  - allow_other without `user_allow_other` and a runtime dir owned by someone else are refused
 *    with one clear line;
 *  - inside `unshare --user --map-root-user --mount` (as podman's rootless mode runs its mount
 *    program) the namespace's root mounts with mount(2) directly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forceUnmount, isMounted, requireFuse, residentDaemons, stopDaemons, waitFor } from '../helpers/mount.js';
import { diffSnapshots, snapshot } from '../helpers/fs-snapshot.js';
import { ensureTestUser, openDevFuse, runAs, type TestUser } from '../helpers/rootless-user.js';

/** The test user, or fail (CI) / skip with the reason. */
function user(t: { skip(m?: string): void }): TestUser | null {
  if (!requireFuse(t as Parameters<typeof requireFuse>[0])) return null;
  const u = ensureTestUser();
  if (typeof u === 'string') {
    if (process.env.CI) assert.fail(`rootless tests cannot run: ${u}`);
    t.skip(u);
    return null;
  }
  return u;
}

interface Scratch {
  root: string;
  lo: string;
  up: string;
  mnt: string;
  run: string;
  env: NodeJS.ProcessEnv;
}

/** A scratch tree the user owns: lo/ (filled), up/, mnt/, run/ (its XDG_RUNTIME_DIR, mode 0700). */
function scratch(u: TestUser, tag: string): Scratch {
  const root = mkdtempSync(join(tmpdir(), `layerfs-rootless-${tag}-`));
  chmodSync(root, 0o755);
  const s = { root, lo: join(root, 'lo'), up: join(root, 'up'), mnt: join(root, 'mnt'), run: join(root, 'run') };
  mkdirSync(join(s.lo, 'd', 'sub'), { recursive: true });
  writeFileSync(join(s.lo, 'a.txt'), 'lower a\n');
  // a second name: copying up a multiply linked file must not try the root-only hard-link index
  linkSync(join(s.lo, 'a.txt'), join(s.lo, 'a-link.txt'));
  writeFileSync(join(s.lo, 'd', 'b.txt'), 'lower b\n');
  writeFileSync(join(s.lo, 'd', 'sub', 'c.txt'), 'lower c\n');
  for (const d of [s.up, s.mnt, s.run]) mkdirSync(d);
  chmodSync(s.run, 0o700);
  for (const p of [s.lo, join(s.lo, 'd'), join(s.lo, 'd', 'sub'), join(s.lo, 'a.txt'), join(s.lo, 'd', 'b.txt'), join(s.lo, 'd', 'sub', 'c.txt'), s.up, s.mnt, s.run]) {
    chownSync(p, u.uid, u.gid);
  }
  // exactly what a user's session has: no LAYERFS_RUN_DIR, the runtime dir from XDG_RUNTIME_DIR
  return { ...s, env: { XDG_RUNTIME_DIR: s.run, LAYERFS_DAEMON_IDLE_MS: '1000' } };
}

/** Files the daemon leaves in the runtime dir (sockets, pid files, logs, si_ dirs, mount records). */
function leftovers(s: Scratch): string[] {
  const dir = join(s.run, 'layerfs');
  if (!existsSync(dir)) return [];
  const mounts = existsSync(join(dir, 'mounts')) ? readdirSync(join(dir, 'mounts')).map((n) => `mounts/${n}`) : [];
  return [...readdirSync(dir).filter((n) => n !== 'mounts'), ...mounts];
}

async function cleanup(s: Scratch): Promise<void> {
  forceUnmount(s.mnt); // as root: umount works on the user's FUSE mount too
  await stopDaemons(join(s.run, 'layerfs'));
  rmSync(s.root, { recursive: true, force: true });
}

test('a normal user mounts through fusermount3: reads, copy-up, whiteouts, info, umount and fusermount3 -u, idle exit leaving nothing', { timeout: 180_000 }, async (t) => {
  const u = user(t);
  if (!u) return;
  const restoreFuse = openDevFuse();
  const s = scratch(u, 'fm');
  const lowerBefore = snapshot(s.lo);
  try {
    const opts = `dirs=${s.up}=rw:${s.lo}=ro`;
    const m = runAs(u, [u.bin, 'mount', '-o', opts, s.mnt], s.env);
    assert.equal(m.status, 0, `mount as ${u.name}: ${m.stderr}`);
    assert.ok(isMounted(s.mnt), 'mounted');
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === s.mnt) ?? '';
    assert.match(line, / - fuse\.layerfs /, 'type fuse.layerfs (fusermount3 subtype=layerfs)');
    assert.match(line, new RegExp(`user_id=${u.uid},group_id=${u.gid}`), 'mounted by the user (fusermount3 sets user_id)');
    assert.ok(existsSync(join(s.run, 'layerfs')), 'runtime dir is $XDG_RUNTIME_DIR/layerfs');

    const w = runAs(u, ['/bin/sh', '-c', `set -e; cd "$1"; cat a.txt; echo more >> a.txt; cat a.txt; rm d/b.txt; echo new > d/n.txt; ls d | tr '\\n' ' '; echo; rm -r d/sub; mkdir d/sub; ls d/sub | wc -l`, 'sh', s.mnt], s.env);
    assert.equal(w.status, 0, `file operations as the user: ${w.stderr}`);
    assert.equal(w.stdout, 'lower a\nlower a\nmore\nn.txt sub \n0\n');
    // on the user's upper branch: the copy-up, the AUFS whiteout, the opaque dir
    assert.equal(readFileSync(join(s.up, 'a.txt'), 'utf8'), 'lower a\nmore\n');
    assert.ok(existsSync(join(s.up, 'd', '.wh.b.txt')), 'whiteout .wh.b.txt in the upper dir');
    assert.ok(existsSync(join(s.up, 'd', 'sub', '.wh..wh..opq')), 'recreated dir is opaque');

    const info = runAs(u, [u.bin, 'info'], s.env);
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stdout, /^rootless: fusermount3; passthrough off \(needs root\); xattrs user\.overlay\.\*/m);
    assert.match(info.stdout, new RegExp(`^${s.up}=rw$`, 'm'));

    // layerfs umount frees it (through fusermount3 -u: umount2 is root's)
    const um = runAs(u, [u.bin, 'umount', s.mnt], s.env);
    assert.equal(um.status, 0, `layerfs umount as the user: ${um.stderr}`);
    assert.ok(!isMounted(s.mnt), 'unmounted');

    // mount again; fusermount3 -u from outside frees it too
    const m2 = runAs(u, [u.bin, '-o', opts, s.mnt], s.env);
    assert.equal(m2.status, 0, `fuse-overlayfs-style mount as the user: ${m2.stderr}`);
    assert.equal(runAs(u, ['cat', join(s.mnt, 'a.txt')], s.env).stdout, 'lower a\nmore\n', 'the copy-up survives a remount');
    const fu = runAs(u, ['fusermount3', '-u', s.mnt], s.env);
    assert.equal(fu.status, 0, fu.stderr);
    assert.ok(!isMounted(s.mnt));

    // the daemon frees the mount and exits when idle: nothing left in the runtime dir
    assert.ok(await waitFor(() => leftovers(s).length === 0, 20_000), `runtime dir still holds: ${leftovers(s).join(' ')}`);
    assert.deepEqual(residentDaemons(join(s.run, 'layerfs')), []);
    assert.deepEqual(diffSnapshots(lowerBefore, snapshot(s.lo)), [], 'lower dir unchanged');
  } finally {
    await cleanup(s);
    restoreFuse();
  }
});

test('without root: allow_other needs user_allow_other; a runtime dir of another user is refused; else /tmp/layerfs-UID, private', { timeout: 120_000 }, async (t) => {
  const u = user(t);
  if (!u) return;
  const restoreFuse = openDevFuse();
  const s = scratch(u, 'refuse');
  try {
    const userAllowOther = /^\s*user_allow_other\s*$/m.test(existsSync('/etc/fuse.conf') ? readFileSync('/etc/fuse.conf', 'utf8') : '');
    if (!userAllowOther) {
      const r = runAs(u, [u.bin, 'mount', '-o', `dirs=${s.up}=rw:${s.lo}=ro,allow_other`, s.mnt], s.env);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /allow_other needs a line 'user_allow_other' in \/etc\/fuse\.conf/);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
      assert.ok(!isMounted(s.mnt));
    }
    // a runtime dir that belongs to root (here: LAYERFS_RUN_DIR would bypass; use XDG_RUNTIME_DIR)
    const foreign = join(s.root, 'foreign');
    mkdirSync(join(foreign, 'layerfs'), { recursive: true, mode: 0o777 });
    chmodSync(join(foreign, 'layerfs'), 0o777);
    chmodSync(foreign, 0o755);
    const r2 = runAs(u, [u.bin, 'mount', '-o', `dirs=${s.up}=rw:${s.lo}=ro`, s.mnt], { ...s.env, XDG_RUNTIME_DIR: foreign });
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /runtime dir .*foreign\/layerfs belongs to uid 0 \(it must be a directory of uid \d+\)/);
    assert.ok(!isMounted(s.mnt));

    // no XDG_RUNTIME_DIR and no /run/user/UID: the private /tmp/layerfs-UID, refused when another user made it first
    if (!existsSync(`/run/user/${u.uid}`)) {
      const tmpRun = `/tmp/layerfs-${u.uid}`;
      const noXdg = { LAYERFS_DAEMON_IDLE_MS: '1000' };
      rmSync(tmpRun, { recursive: true, force: true });
      mkdirSync(tmpRun, { mode: 0o777 });
      try {
        const r3 = runAs(u, [u.bin, 'mount', '-o', `dirs=${s.up}=rw:${s.lo}=ro`, s.mnt], noXdg);
        assert.equal(r3.status, 1);
        assert.match(r3.stderr, new RegExp(`runtime dir ${tmpRun} belongs to uid 0`));
        rmSync(tmpRun, { recursive: true, force: true });
        const r4 = runAs(u, [u.bin, 'mount', '-o', `dirs=${s.up}=rw:${s.lo}=ro`, s.mnt], noXdg);
        assert.equal(r4.status, 0, r4.stderr);
        const st = statSync(tmpRun);
        assert.equal(st.uid, u.uid);
        assert.equal(st.mode & 0o777, 0o700, 'private runtime dir');
        assert.ok(readdirSync(join(tmpRun, 'mounts')).some((n) => n.endsWith('.json')), 'the mount is recorded there');
        assert.equal(runAs(u, [u.bin, 'umount', s.mnt], noXdg).status, 0);
        assert.ok(!isMounted(s.mnt));
      } finally {
        forceUnmount(s.mnt);
        await stopDaemons(tmpRun);
        rmSync(tmpRun, { recursive: true, force: true });
      }
    }
  } finally {
    await cleanup(s);
    restoreFuse();
  }
});

test("inside a user namespace (unshare --user --map-root-user --mount), the namespace's root mounts with mount(2)", { timeout: 180_000 }, async (t) => {
  const u = user(t);
  if (!u) return;
  const restoreFuse = openDevFuse();
  const s = scratch(u, 'ns');
  const lowerBefore = snapshot(s.lo);
  try {
    const script = [
      'set -e',
      'id -u',
      `"$1" mount -o "dirs=$2=rw:$3=ro" "$4"`,
      // the mount lives in this namespace: type fuse.layerfs, made by mount(2) (allow_other, user_id=0)
      `grep " $4 " /proc/self/mountinfo | sed 's/.* - //'`,
      'cat "$4/a.txt"',
      'echo ns >> "$4/a.txt"',
      'rm "$4/d/b.txt"',
      'ls "$4/d" | tr "\\n" " "; echo',
      `"$1" info "$4" | tail -n 1`,
      `"$1" umount "$4"`,
      `grep -c " $4 " /proc/self/mountinfo || true`,
    ].join('\n');
    const r = runAs(u, ['unshare', '--user', '--map-root-user', '--mount', '/bin/sh', '-c', script, 'sh', u.bin, s.up, s.lo, s.mnt], s.env);
    assert.equal(r.status, 0, `in the user namespace: ${r.stderr}`);
    const out = r.stdout.split('\n');
    assert.equal(out[0], '0', 'namespace root');
    assert.match(out[1]!, /^fuse\.layerfs layerfs rw,user_id=0,group_id=0,default_permissions,allow_other$/);
    assert.equal(out[2], 'lower a');
    assert.equal(out[3], 'sub ');
    assert.match(out[4]!, /^rootless: mount\(2\) in a user namespace; passthrough off \(needs root\); xattrs user\.overlay\.\*/);
    assert.equal(out[5], '0', 'unmounted');
    // what the namespace wrote is the user's
    assert.equal(readFileSync(join(s.up, 'a.txt'), 'utf8'), 'lower a\nns\n');
    assert.ok(existsSync(join(s.up, 'd', '.wh.b.txt')));
    // the namespace's daemon exits when idle, leaving nothing
    assert.ok(await waitFor(() => leftovers(s).length === 0, 20_000), `runtime dir still holds: ${leftovers(s).join(' ')}`);
    assert.deepEqual(diffSnapshots(lowerBefore, snapshot(s.lo)), [], 'lower dir unchanged');
  } finally {
    await cleanup(s);
    restoreFuse();
  }
});
