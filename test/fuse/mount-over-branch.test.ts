/**
 * A mount may cover one of its own branches (`layerfs mount -o dirs=/srv/x /srv/x`, systemd-sysext's
 * `lowerdir=EXT:/usr /usr`, a lower dir or the upper's parent as the mount point): the daemon holds
 * every branch root as a directory fd opened before mount(2), so it never resolves a branch path into
 * its own mount. Each check has a hard timeout: a hang fails the test, and cleanup aborts a hung
 * connection through fusectl (/sys/fs/fuse/connections/N/abort) before unmounting.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, isMounted, requireFuse, sh, stopDaemons, type Run } from '../helpers/mount.js';

const CONNECTIONS = '/sys/fs/fuse/connections';
let mountedFusectl = false;

/** The FUSE connection number (device minor) of the mount at `mnt`, from the mount table. */
function connectionOf(mnt: string): string | null {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[4] === mnt) return f[2]!.split(':')[1]!;
  }
  return null;
}

/** Abort a FUSE connection (what frees a daemon stuck on its own mount). */
function abortConnection(n: string): void {
  if (!fs.existsSync(join(CONNECTIONS, n))) {
    const r = spawnSync('mount', ['-t', 'fusectl', 'fusectl', CONNECTIONS], { timeout: 5000 });
    if (r.status === 0) mountedFusectl = true;
  }
  try {
    fs.writeFileSync(join(CONNECTIONS, n, 'abort'), '1');
  } catch {
    /* gone meanwhile */
  }
}

/** Unmount for sure: plain umount with a timeout; if that hangs or fails, abort the connection, then lazy. */
function release(mnt: string): void {
  const conn = connectionOf(mnt);
  if (conn === null) return;
  spawnSync('umount', [mnt], { timeout: 5000, killSignal: 'SIGKILL' });
  if (!isMounted(mnt) && connectionOf(mnt) === null) return;
  abortConnection(conn);
  spawnSync('umount', ['-l', mnt], { timeout: 5000, killSignal: 'SIGKILL' });
}

after(() => {
  if (mountedFusectl) spawnSync('umount', [CONNECTIONS], { timeout: 5000 });
});

interface Scratch {
  root: string;
  run: string;
  mount(opts: string, mnt: string): void;
  /** mount --bind (undone in cleanup, before the scratch dir is removed). */
  bind(src: string, dst: string): void;
  /** A shell command that must finish within `ms` (a hang fails the test). */
  sh(cmd: string, ms?: number): Run;
  /** Like sh, and exit 0 required; returns stdout. */
  ok(cmd: string, ms?: number): string;
}

function scratch(t: { after(fn: () => Promise<void> | void): void }): Scratch {
  const root = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'layerfs-overbranch-')));
  const run = join(root, 'run');
  const mounts: string[] = [];
  t.after(async () => {
    for (const m of mounts.reverse()) release(m);
    await stopDaemons(run);
    fs.rmSync(root, { recursive: true, force: true });
  });
  const s: Scratch = {
    root,
    run,
    mount(opts, mnt) {
      mounts.push(mnt);
      const r = cli(['mount', '-o', opts, mnt], { env: { ...process.env, LAYERFS_RUN_DIR: run }, timeoutMs: 30_000 });
      assert.equal(r.status, 0, `mount -o ${opts} ${mnt}: ${r.stderr.trim()}`);
    },
    bind(src, dst) {
      fs.mkdirSync(dst, { recursive: true });
      mounts.push(dst);
      const r = spawnSync('mount', ['--bind', src, dst], { timeout: 10_000, encoding: 'utf8' });
      assert.equal(r.status, 0, `mount --bind ${src} ${dst}: ${r.stderr}`);
    },
    sh(cmd, ms = 10_000) {
      const r = sh(cmd, { cwd: root, timeoutMs: ms });
      assert.notEqual(r.signal, 'SIGKILL', `hung (no answer within ${ms} ms): ${cmd}`);
      return r;
    },
    ok(cmd, ms) {
      const r = s.sh(cmd, ms);
      assert.equal(r.status, 0, `${cmd}: ${r.stderr.trim()}`);
      return r.stdout;
    },
  };
  return s;
}

function tree(files: Record<string, string>, base: string): void {
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(join(base, rel, '..'), { recursive: true });
    fs.writeFileSync(join(base, rel), content);
  }
}

/** Names of a directory, sorted, without layerfs's private entries. */
function names(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => !n.startsWith('.wh..wh.')).sort();
}

describe('a mount over one of its own branches', () => {
  test('dirs=B rw mounted on B: stat answers, reads, writes, mkdir, rename, unlink; the branch keeps the changes', (t) => {
    if (!requireFuse(t)) return;
    const s = scratch(t);
    const b = join(s.root, 'b');
    tree({ a: 'hello\n', 'd/f': 'deep\n' }, b);
    s.mount(`dirs=${b}`, b);
    assert.equal(s.ok(`stat -c %F ${b}`).trim(), 'directory');
    assert.equal(s.ok(`cat ${b}/a ${b}/d/f`), 'hello\ndeep\n');
    s.ok(`echo new > ${b}/d/g && mkdir ${b}/n && mv ${b}/a ${b}/a2 && rm ${b}/d/f`);
    assert.equal(s.ok(`ls ${b} | tr '\\n' ' '`), 'a2 d n ');
    assert.equal(s.ok(`ls -l ${b}/d | wc -l; cat ${b}/d/g`), '2\nnew\n');
    release(b);
    assert.equal(isMounted(b), false);
    assert.deepEqual(names(b), ['a2', 'd', 'n']);
    assert.deepEqual(names(join(b, 'd')), ['g']);
    assert.equal(fs.readFileSync(join(b, 'a2'), 'utf8'), 'hello\n');
  });

  test('dirs=B=ro mounted on B: reads, listing and stat; writes answer EROFS', (t) => {
    if (!requireFuse(t)) return;
    const s = scratch(t);
    const b = join(s.root, 'b');
    tree({ a: 'ro data\n', 'x/y/z': 'z\n' }, b);
    s.mount(`dirs=${b}=ro`, b);
    assert.equal(s.ok(`stat -c %F ${b}/x/y`).trim(), 'directory');
    assert.equal(s.ok(`cat ${b}/a ${b}/x/y/z`), 'ro data\nz\n');
    assert.equal(s.ok(`find ${b} | sort | tr '\\n' ' '`), `${b} ${b}/a ${b}/x ${b}/x/y ${b}/x/y/z `);
    const w = s.sh(`touch ${b}/new`);
    assert.notEqual(w.status, 0);
    assert.match(w.stderr, /Read-only file system/);
  });

  test('lowerdir=L,upperdir=U,workdir=W mounted on L: copy-up goes to U, L is untouched', (t) => {
    if (!requireFuse(t)) return;
    const s = scratch(t);
    const [l, u, w] = ['l', 'u', 'w'].map((n) => join(s.root, n)) as [string, string, string];
    tree({ f: 'lower\n', 'sub/g': 'g\n' }, l);
    fs.mkdirSync(u);
    fs.mkdirSync(w);
    s.mount(`lowerdir=${l},upperdir=${u},workdir=${w}`, l);
    assert.equal(s.ok(`stat -c %s ${l}/f`).trim(), '6');
    s.ok(`echo more >> ${l}/f && echo h > ${l}/sub/h && rm ${l}/sub/g`);
    assert.equal(s.ok(`cat ${l}/f; ls ${l}/sub`), 'lower\nmore\nh\n');
    release(l);
    assert.equal(fs.readFileSync(join(l, 'f'), 'utf8'), 'lower\n', 'the lower file as it was');
    assert.deepEqual(names(join(l, 'sub')), ['g']);
    assert.equal(fs.readFileSync(join(u, 'f'), 'utf8'), 'lower\nmore\n', 'the copy-up in the upper');
    assert.equal(fs.readFileSync(join(u, 'sub', 'h'), 'utf8'), 'h\n');
  });

  test("the upper's parent as the mount point (M/upper, M/work mounted on M)", (t) => {
    if (!requireFuse(t)) return;
    const s = scratch(t);
    const m = join(s.root, 'm');
    const l = join(s.root, 'l');
    tree({ f: 'lower\n' }, l);
    fs.mkdirSync(join(m, 'upper'), { recursive: true });
    fs.mkdirSync(join(m, 'work'));
    s.mount(`lowerdir=${l},upperdir=${m}/upper,workdir=${m}/work`, m);
    assert.equal(s.ok(`ls ${m} | tr '\\n' ' '`), 'f ');
    s.ok(`echo x > ${m}/new && echo y >> ${m}/f && mkdir ${m}/dir`);
    assert.equal(s.ok(`cat ${m}/new ${m}/f`), 'x\nlower\ny\n');
    release(m);
    assert.deepEqual(names(join(m, 'upper')), ['dir', 'f', 'new']);
    assert.equal(fs.readFileSync(join(l, 'f'), 'utf8'), 'lower\n');
  });

  test('systemd-sysext style: lowerdir=EXT/usr:S/usr mounted on S/usr shows both, read-only', (t) => {
    if (!requireFuse(t)) return;
    const s = scratch(t);
    const usr = join(s.root, 's', 'usr');
    const ext = join(s.root, 'ext', 'usr');
    tree({ 'bin/base': 'base\n', 'lib/x': 'x\n' }, usr);
    tree({ 'bin/extra': 'extra\n' }, ext);
    s.mount(`lowerdir=${ext}:${usr}`, usr);
    assert.equal(s.ok(`ls ${usr}/bin | tr '\\n' ' '`), 'base extra ');
    assert.equal(s.ok(`cat ${usr}/bin/extra ${usr}/bin/base ${usr}/lib/x`), 'extra\nbase\nx\n');
    assert.notEqual(s.sh(`touch ${usr}/bin/new`).status, 0);
  });

  test('a mount point inside a branch (not its root) is refused with one line, nothing mounted', (t) => {
    if (!requireFuse(t)) return;
    const s = scratch(t);
    const b = join(s.root, 'b');
    tree({ 'sub/inner': 'x\n' }, b);
    const r = cli(['mount', '-o', `dirs=${b}=ro`, join(b, 'sub')], { env: { ...process.env, LAYERFS_RUN_DIR: s.run }, timeoutMs: 30_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr.trim(), /^layerfs: .*inside branch 0/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.equal(connectionOf(join(b, 'sub')), null, 'nothing mounted');
  });

  test('racer: a branch directory swapped for a symlink to / in a loop never lets the mount read or write outside', async (t) => {
    if (!requireFuse(t)) return;
    const s = scratch(t);
    const out = join(s.root, 'out');
    tree({ canary: 'OUTSIDE\n', 'only-outside': '' }, out);
    const up = join(s.root, 'up');
    const lo = join(s.root, 'lo');
    // d/<path of out>/ mirrors the outside dir: with d a symlink to /, the same names lead outside
    tree({ [`d${out}/canary`]: 'inside\n', [`d${out}/lower-only`]: 'lower\n' }, lo);
    tree({ [`d${out}/upper-only`]: 'upper\n' }, up);
    const before = fs.statSync(join(out, 'canary'), { bigint: true });
    // the rw branch is about to be covered by the mount: the racer reaches it through a bind mount
    const upRaw = join(s.root, 'up-raw');
    s.bind(up, upRaw);
    // mounted over its own rw branch, kernel caches off: every access reaches the daemon
    s.mount(`dirs=${up}=rw:${lo}=ro,entry_timeout=0,attr_timeout=0,negative_timeout=0`, up);
    const dir = `${up}/d${out}`;
    assert.equal(s.ok(`cat ${dir}/canary`), 'inside\n');
    const script = `
      const fs = require('node:fs');
      const dirs = ${JSON.stringify([join(lo, 'd'), join(upRaw, 'd')])};
      // each state held a little while (busy wait), so that the daemon's calls land in both
      const hold = () => { const t = process.hrtime.bigint() + 200000n; while (process.hrtime.bigint() < t); };
      for (;;) for (const d of dirs) {
        try { fs.renameSync(d, d + '.aside'); fs.symlinkSync('/', d); hold(); fs.unlinkSync(d); fs.renameSync(d + '.aside', d); hold(); } catch {}
      }
    `;
    const racer = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    t.after(() => {
      if (racer.exitCode === null) racer.kill('SIGKILL');
    });
    const reads = new Set<string>();
    const deadline = Date.now() + 4000;
    let i = 0;
    while (Date.now() < deadline) {
      i++;
      const ops = [
        `cat ${dir}/canary`,
        `cat ${dir}/lower-only`,
        `echo w${i} >> ${dir}/lower-only`, // copy-up
        `echo c${i} > ${dir}/new-${i}`,
        `mv ${dir}/new-${i} ${dir}/moved-${i}`,
        `touch ${dir}/canary`,
        `chmod 600 ${dir}/canary`,
        `ls ${dir}`,
      ].join(' 2>/dev/null; ');
      // When the racer's symlink shows through the mount, the kernel follows it on the client's side
      // (as for any symlink in a union): run the client in its own mount namespace where the outside
      // dir is an empty tmpfs, so only what the daemon itself reads or writes can reach the canary.
      const r = s.sh(`unshare -m --propagation private sh -c 'mount -t tmpfs none ${out} && { ${ops} 2>/dev/null; true; }'`, 20_000);
      for (const line of r.stdout.split('\n')) reads.add(line);
    }
    racer.kill('SIGKILL');
    assert.ok(reads.has('inside'), 'the branch canary was read');
    assert.ok(!reads.has('OUTSIDE'), 'the outside canary was never read');
    assert.ok(!reads.has('only-outside'), 'the outside dir was never listed');
    assert.deepEqual(fs.readdirSync(out).sort(), ['canary', 'only-outside'], 'nothing created outside');
    assert.equal(fs.readFileSync(join(out, 'canary'), 'utf8'), 'OUTSIDE\n');
    const now = fs.statSync(join(out, 'canary'), { bigint: true });
    assert.equal(now.mtimeNs, before.mtimeNs, 'outside canary mtime unchanged');
    assert.equal(now.ctimeNs, before.ctimeNs, 'outside canary ctime unchanged');
    assert.equal(now.mode, before.mode);
    assert.equal(s.ok(`stat -c %F ${up}`).trim(), 'directory', 'the mount still answers');
  });
});
