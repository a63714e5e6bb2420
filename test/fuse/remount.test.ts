/**
 * Live branch changes through real mounts: every AUFS remount option (add, ins, append, prepend,
 * del, mod) by `layerfs mount -o remount,...` and by mount(8) (`mount -o remount,...` runs
 * mount.fuse3, which runs /usr/local/bin/layerfs: in a private mount namespace that name is this
 * checkout's bin/layerfs, the host's stays untouched). The kernel's caches are filled first and the
 * default one-hour timeouts stay in effect, so what the tests see after a remount is what the
 * daemon told the kernel. Also: EBUSY for a branch with an open file, all-or-nothing on a bad
 * piece, inode numbers that stay, the si_ files and `layerfs info`, and a foreground mount's refusal.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, CLI_MAIN, cli, daemonPids, forceUnmount, isMounted, ok, requireFuse, sh, stopDaemons, waitFor, type Run } from '../helpers/mount.js';

describe('remount: live branch changes', () => {
  let root = '';
  let run = '';
  let env: NodeJS.ProcessEnv = {};
  let n = 0;
  const mounts: string[] = [];

  before(() => {
    root = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'layerfs-remount-')));
    run = join(root, 'run');
    env = { ...process.env, LAYERFS_RUN_DIR: run };
  });

  afterEach(async () => {
    for (const m of mounts.splice(0)) {
      forceUnmount(m);
      await waitFor(() => daemonPids(m, run).length === 0);
    }
  });

  after(async () => {
    if (!root) return;
    await stopDaemons(run);
    fs.rmSync(root, { recursive: true, force: true });
  });

  /** A fresh dir with branches made from `spec` (name -> files) and a mount point. */
  function fresh(spec: Record<string, Record<string, string>>): { dir: string; br: Record<string, string>; mnt: string } {
    const dir = join(root, `t${++n}`);
    const br: Record<string, string> = {};
    for (const [name, files] of Object.entries(spec)) {
      br[name] = join(dir, name);
      fs.mkdirSync(br[name]!, { recursive: true });
      for (const [p, v] of Object.entries(files)) {
        fs.mkdirSync(join(br[name]!, p, '..'), { recursive: true });
        if (p.endsWith('/')) fs.mkdirSync(join(br[name]!, p), { recursive: true });
        else fs.writeFileSync(join(br[name]!, p), v);
      }
    }
    const mnt = join(dir, 'mnt');
    fs.mkdirSync(mnt);
    return { dir, br, mnt };
  }

  function mount(opts: string, mnt: string): void {
    ok(cli(['mount', '-o', opts, mnt], { env }), `mount ${opts}`);
    mounts.push(mnt);
  }

  const remount = (opts: string, mnt: string): Run => cli(['mount', '-o', `remount,${opts}`, mnt], { env });
  const cat = (p: string): string => fs.readFileSync(p, 'utf8');
  const ls = (p: string): string[] => fs.readdirSync(p).sort();
  const ino = (p: string): number => fs.statSync(p).ino;
  const siBranches = (): string[] => {
    const si = fs.readdirSync(run).filter((x) => x.startsWith('si_'));
    assert.equal(si.length, 1, 'one mount');
    const d = join(run, si[0]!);
    return fs.readdirSync(d).filter((x) => /^br\d+$/.test(x)).sort((a, b) => Number(a.slice(2)) - Number(b.slice(2))).map((x) => cat(join(d, x)).trim());
  };
  const infoLines = (mnt: string): string[] => ok(cli(['info', mnt], { env }), 'info').trim().split('\n');

  test('add/ins/append/prepend via layerfs mount -o remount: the view changes at once, numbers stay, si_ and info follow', (t) => {
    if (!requireFuse(t)) return;
    const { br, mnt } = fresh({
      up: { 'd/u': 'u', top: 'top' },
      lo: { shared: 'lo', 'd/l': 'l', only: 'lo-only', 'ld/x': 'x' },
      mid: { shared: 'mid', 'd/m': 'm', 'mid-only': 'x', 'ld/y': 'y' },
      bot: { 'bot-only': 'b', shared: 'bot' },
      ins: { shared: 'ins' },
      pre: { 'pre-only': 'p' },
    });
    mount(`dirs=${br.up}=rw:${br.lo}=ro`, mnt);
    // fill the kernel's caches: names, attributes, a negative entry, a listing (timeouts 1 h)
    assert.equal(cat(join(mnt, 'shared')), 'lo');
    assert.deepEqual(ls(join(mnt, 'd')), ['l', 'u']);
    assert.equal(fs.existsSync(join(mnt, 'mid-only')), false);
    assert.deepEqual(ls(mnt), ['d', 'ld', 'only', 'shared', 'top']);
    const stay = ['d', 'd/u', 'd/l', 'top', 'only', 'ld', 'ld/x'];
    const before = stay.map((p) => ino(join(mnt, p)));

    const r = remount(`add:1:${br.mid}`, mnt);
    ok(r, 'remount add');
    assert.equal(r.stderr, '');
    assert.equal(cat(join(mnt, 'shared')), 'mid', 'cached name now reads the new branch');
    assert.equal(cat(join(mnt, 'mid-only')), 'x', 'negative entry dropped');
    assert.deepEqual(ls(join(mnt, 'd')), ['l', 'm', 'u'], 'cached listing dropped');
    assert.deepEqual(ls(mnt), ['d', 'ld', 'mid-only', 'only', 'shared', 'top']);
    assert.deepEqual(ls(join(mnt, 'ld')), ['x', 'y']);
    assert.deepEqual(stay.map((p) => ino(join(mnt, p))), before, 'numbers of files that stay visible');
    assert.deepEqual(siBranches(), [`${br.up}=rw`, `${br.mid}=ro`, `${br.lo}=ro`]);
    assert.deepEqual(infoLines(mnt), [`${br.up}=rw`, `${br.mid}=ro`, `${br.lo}=ro`, '64', '66', '65', `${br.up}/.wh..wh.layerfs.xino`]);

    ok(remount(`append:${br.bot},ins:1:${br.ins}=ro`, mnt), 'remount append+ins');
    assert.equal(cat(join(mnt, 'shared')), 'ins');
    assert.equal(cat(join(mnt, 'bot-only')), 'b');
    assert.deepEqual(siBranches(), [`${br.up}=rw`, `${br.ins}=ro`, `${br.mid}=ro`, `${br.lo}=ro`, `${br.bot}=ro`]);

    // prepend: a new rw branch on top, the old one turned ro in the same remount
    ok(remount(`prepend:${br.pre}=rw,mod:${br.up}=ro`, mnt), 'remount prepend+mod');
    assert.equal(cat(join(mnt, 'pre-only')), 'p');
    fs.writeFileSync(join(mnt, 'new'), 'n');
    assert.equal(cat(join(br.pre!, 'new')), 'n', 'new files land in the new rw branch');
    fs.appendFileSync(join(mnt, 'top'), '+');
    assert.equal(cat(join(br.pre!, 'top')), 'top+', 'copy-up from the old rw branch, now ro');
    assert.equal(cat(join(br.up!, 'top')), 'top', 'old rw branch untouched');
    assert.deepEqual(stay.map((p) => ino(join(mnt, p))), before, 'numbers stay, copy-up included');
    assert.deepEqual(siBranches().slice(0, 2), [`${br.pre}=rw`, `${br.up}=ro`]);
  });

  test('a file replaced by one of the same size and mtime in a new branch reads new (page cache, passthrough off); one open before keeps its file', (t) => {
    if (!requireFuse(t)) return;
    const { br, mnt } = fresh({ up: {}, lo: { same: 'aaaa' }, mid: { same: 'bbbb' } });
    const when = new Date('2020-01-02T03:04:05Z');
    fs.utimesSync(join(br.lo!, 'same'), when, when);
    fs.utimesSync(join(br.mid!, 'same'), when, when);
    mount(`dirs=${br.up}=rw:${br.lo}=ro,passthrough=off`, mnt);
    assert.equal(cat(join(mnt, 'same')), 'aaaa');
    const fd = fs.openSync(join(mnt, 'same'), 'r');
    try {
      ok(remount(`add:1:${br.mid}`, mnt), 'add');
      assert.equal(cat(join(mnt, 'same')), 'bbbb', 'a new open reads the new branch');
      const b = Buffer.alloc(4);
      fs.readSync(fd, b, 0, 4, 0);
      assert.equal(b.toString(), 'aaaa', 'the file open before the change is still the file it opened');
    } finally {
      fs.closeSync(fd);
    }
  });

  test('xattrs of a directory whose topmost copy is now in a new branch show at once (absences the transport remembered are dropped)', (t) => {
    if (!requireFuse(t)) return;
    const { br, mnt } = fresh({ up: {}, lo: { 'd/': '' }, mid: { 'd/': '' } });
    ok(sh(`setfattr -n user.tag -v mid ${br.mid}/d`), 'setfattr');
    mount(`dirs=${br.up}=rw:${br.lo}=ro`, mnt);
    const get = (): Run => sh(`getfattr --only-values -n user.tag ${mnt}/d`);
    // held open: the kernel keeps its inode (no FORGET), so the daemon's node and what it remembered stay
    const fd = fs.openSync(join(mnt, 'd'), 'r');
    try {
      assert.notEqual(get().status, 0, 'absent before');
      assert.notEqual(get().status, 0, 'absent, asked again (remembered)');
      ok(remount(`add:1:${br.mid}`, mnt), 'add');
      assert.equal(ok(get(), 'getfattr after the change'), 'mid');
    } finally {
      fs.closeSync(fd);
    }
  });

  test('del and mod via layerfs mount -o remount', (t) => {
    if (!requireFuse(t)) return;
    const { br, mnt } = fresh({ up: { u: 'u' }, mid: { shared: 'mid', m: 'm' }, lo: { shared: 'lo', l: 'l' } });
    mount(`dirs=${br.up}=rw:${br.mid}=ro:${br.lo}=ro`, mnt);
    assert.equal(cat(join(mnt, 'shared')), 'mid');
    assert.equal(cat(join(mnt, 'm')), 'm');
    const lIno = ino(join(mnt, 'l'));
    ok(remount(`del:${br.mid}`, mnt), 'del');
    assert.equal(cat(join(mnt, 'shared')), 'lo');
    assert.equal(fs.existsSync(join(mnt, 'm')), false, 'cached name gone');
    assert.deepEqual(ls(mnt), ['l', 'shared', 'u']);
    assert.equal(ino(join(mnt, 'l')), lIno);
    // rw moves down: the top leaves, the next one becomes writable
    ok(remount(`del:${br.up},mod:${br.lo}=rw`, mnt), 'del+mod');
    assert.deepEqual(siBranches(), [`${br.lo}=rw`]);
    assert.equal(fs.existsSync(join(mnt, 'u')), false);
    fs.writeFileSync(join(mnt, 'w'), 'w');
    assert.equal(cat(join(br.lo!, 'w')), 'w');
    // rw -> ro is refused on a read-write mount when it leaves no writable branch
    const r = remount(`mod:${br.lo}=ro`, mnt);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no writable branch on a read-write mount/);
  });

  test('mod ro -> rw on a union mounted without a writable branch', (t) => {
    if (!requireFuse(t)) return;
    const { br, mnt } = fresh({ a: { f: 'a' }, b: { g: 'b' } });
    mount(`dirs=${br.a}=ro:${br.b}=ro`, mnt);
    assert.throws(() => fs.writeFileSync(join(mnt, 'n'), 'x'), /EROFS/);
    ok(remount(`mod:${br.a}=rw`, mnt), 'mod');
    fs.writeFileSync(join(mnt, 'n'), 'x');
    assert.equal(cat(join(br.a!, 'n')), 'x');
    assert.deepEqual(siBranches(), [`${br.a}=rw`, `${br.b}=ro`]);
  });

  test('del of a branch with a file open through the mount: EBUSY, nothing changed; after close it goes', async (t) => {
    if (!requireFuse(t)) return;
    const { br, mnt } = fresh({ up: {}, lo: { l: 'l' }, lo2: { k: 'k' } });
    mount(`dirs=${br.up}=rw:${br.lo}=ro:${br.lo2}=ro`, mnt);
    const fd = fs.openSync(join(mnt, 'l'), 'r');
    let r: Run;
    try {
      r = remount(`del:${br.lo}`, mnt);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /EBUSY: branch 1 \(.*\/lo\) has 1 file open/);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
      assert.equal(cat(join(mnt, 'l')), 'l');
      assert.deepEqual(siBranches(), [`${br.up}=rw`, `${br.lo}=ro`, `${br.lo2}=ro`]);
      // another branch may go meanwhile; the open file still reads
      ok(remount(`del:${br.lo2}`, mnt), 'del of another branch');
      const b = Buffer.alloc(1);
      assert.equal(fs.readSync(fd, b, 0, 1, 0), 1);
      assert.equal(b.toString(), 'l');
    } finally {
      fs.closeSync(fd);
    }
    // RELEASE reaches the daemon after close returns: allow it a moment
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      r = remount(`del:${br.lo}`, mnt);
      gone = r.status === 0;
      if (!gone) await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(gone, `del after close: ${r!.stderr}`);
    assert.equal(fs.existsSync(join(mnt, 'l')), false);
  });

  test('all or nothing: a bad piece changes nothing, one line naming it, exit not 0', (t) => {
    if (!requireFuse(t)) return;
    const { dir, br, mnt } = fresh({ up: { u: 'u' }, lo: { l: 'l' }, x: { xf: 'x' } });
    mount(`dirs=${br.up}=rw:${br.lo}=ro`, mnt);
    assert.equal(fs.existsSync(join(mnt, 'xf')), false);
    const good = `add:1:${br.x}`;
    const cases: Array<[string, RegExp]> = [
      [`${good},add:1:${dir}/missing`, /missing does not exist/],
      [`${good},add:9:${dir}/lo`, /index 9 is out of range/],
      [`${good},append:${br.lo}`, /already branch 2/],
      [`${good},add:1:${br.x}=rx`, /unknown branch permission 'rx'/],
      [`${good},del:${dir}/elsewhere`, /is not a branch of this mount/],
      [`${good},del:${br.up}`, /no writable branch on a read-write mount/],
      [`${good},append:${mnt}`, /is the mount point/],
      [`${good},append:${mnt}/u`, /inside the mount|does not exist/],
      [`${good},append:${dir}`, /the mount point .* is inside/],
      [`${good},dirs=${br.x}`, /'dirs' cannot change on a live mount/],
      ['rw,relatime', /nothing to change/],
    ];
    fs.mkdirSync(join(br.up!, 'sub'));
    cases.push([`${good},append:${mnt}/sub`, /inside the mount/]);
    for (const [opts, re] of cases) {
      const r = remount(opts, mnt);
      assert.notEqual(r.status, 0, opts);
      assert.match(r.stderr, re, opts);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.equal(fs.existsSync(join(mnt, 'xf')), false, `view unchanged after ${opts}`);
      assert.deepEqual(siBranches(), [`${br.up}=rw`, `${br.lo}=ro`]);
    }
    assert.equal(cat(join(mnt, 'l')), 'l');
  });

  test('mount(8): mount -o remount,... in a private mount namespace runs this checkout as the helper', (t) => {
    if (!requireFuse(t)) return;
    const { br, mnt } = fresh({ up: { u: 'u\n' }, lo: { shared: 'lo\n' }, mid: { shared: 'mid\n' }, pre: { p: 'p\n' } });
    const hostLink = fs.readlinkSync('/usr/local/bin/layerfs');
    const script = [
      'set -e',
      // /usr/local/bin/layerfs is the host's link: in this namespace only, it names our bin/layerfs
      'mount -t tmpfs none /usr/local/bin',
      `ln -s ${BIN} /usr/local/bin/layerfs`,
      `mount -t fuse.layerfs -o dirs=${br.up}=rw:${br.lo}=ro none ${mnt}`,
      `cat ${mnt}/shared`,
      `mount -o remount,add:1:${br.mid} ${mnt}`,
      `cat ${mnt}/shared`,
      `mount -o remount,prepend:${br.pre}=rw,mod:${br.up}=ro ${mnt}`,
      `cat ${mnt}/p`,
      `mount -o remount,del:${br.mid} ${mnt}`,
      `cat ${mnt}/shared`,
      `cat ${run}/si_*/br0 ${run}/si_*/br1 ${run}/si_*/br2`,
      `if mount -o remount,add:1:${br.mid},del:/nonexistent ${mnt} 2>${mnt}/../err; then echo BAD; else echo refused; fi`,
      `cat ${mnt}/shared`,
      `umount ${mnt}`,
    ].join('\n');
    const r = sh(`unshare -m --propagation private /bin/sh -c '${script.replace(/'/g, `'\\''`)}'`, {
      env: { ...env, LAYERFS_DAEMON_IDLE_MS: '300' },
      timeoutMs: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['lo', 'mid', 'p', 'lo', `${br.pre}=rw`, `${br.up}=ro`, `${br.lo}=ro`, 'refused', 'lo']);
    assert.match(cat(join(mnt, '..', 'err')), /remount: EINVAL: 'del:\/nonexistent': \/nonexistent is not a branch of this mount/);
    assert.equal(isMounted(mnt), false, 'nothing mounted on the host');
    assert.equal(fs.readlinkSync('/usr/local/bin/layerfs'), hostLink, 'host link untouched');
  });

  test('a mount over its own branch changes its branches (branches reached by fd, never through the mount)', (t) => {
    if (!requireFuse(t)) return;
    const { br } = fresh({ up: { u: 'u' }, lo: { shared: 'lo', l: 'l' }, mid: { shared: 'mid' } });
    // the lower branch is the mount point: its files are served through the mount over it
    mount(`dirs=${br.up}=rw:${br.lo}=ro`, br.lo!);
    const m = br.lo!;
    assert.equal(cat(join(m, 'shared')), 'lo');
    ok(remount(`add:1:${br.mid}`, m), 'add under a mount over a branch');
    assert.equal(cat(join(m, 'shared')), 'mid');
    assert.deepEqual(siBranches(), [`${br.up}=rw`, `${br.mid}=ro`, `${br.lo}=ro`]);
    ok(remount(`del:${br.lo}`, m), 'del of the covered branch');
    assert.equal(fs.existsSync(join(m, 'l')), false);
    const r = remount(`append:${br.lo}`, m);
    assert.notEqual(r.status, 0, 'the covered dir cannot come back: it is the mount point now');
    assert.match(r.stderr, /is the mount point/);
    assert.equal(cat(join(m, 'shared')), 'mid');
  });

  test('readers racing with remounts never see a name that exists in both views missing (ESTALE makes the kernel look it up again)', async (t) => {
    if (!requireFuse(t)) return;
    const files: Record<string, string> = {};
    const mids: Record<string, string> = {};
    for (let i = 0; i < 30; i++) {
      files[`f${i}`] = `lo${i}\n`;
      mids[`f${i}`] = `mid${i}\n`;
    }
    const { br, mnt } = fresh({ up: {}, lo: files, mid: mids });
    mount(`dirs=${br.up}=rw:${br.lo}=ro`, mnt);
    const script = `end=$((SECONDS+6)); bad=0; n=0; while [ $SECONDS -lt $end ]; do for i in $(seq 0 29); do c=$(cat ${mnt}/f$i 2>&1); n=$((n+1)); case "$c" in lo$i|mid$i) ;; *) bad=$((bad+1)); echo "bad: $c" >&2;; esac; done; done; echo "$n $bad"`;
    const reader = spawn('/bin/bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    reader.stdout.on('data', (d: Buffer) => (out += d.toString()));
    reader.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((res) => reader.on('exit', () => res()));
    let changes = 0;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      // the CLI is spawned synchronously: the reader (another process) keeps running meanwhile
      if (remount(`add:1:${br.mid}`, mnt).status === 0) changes++;
      for (let k = 0; k < 50; k++) {
        const r = remount(`del:${br.mid}`, mnt);
        if (r.status === 0) {
          changes++;
          break;
        }
        assert.match(r.stderr, /EBUSY/, 'only a reader holding a file of mid keeps it');
        await new Promise((res) => setTimeout(res, 20));
      }
    }
    await exited;
    const [reads, bad] = out.trim().split(' ').map(Number);
    assert.ok(changes >= 4, `branch changes made: ${changes}`);
    assert.ok(reads! > 100, `reads: ${reads}`);
    assert.equal(bad, 0, `failed reads: ${err.split('\n').slice(0, 3).join('; ')}`);
  });

  test('a foreground mount (-f) refuses a remount with a line saying why', async (t) => {
    if (!requireFuse(t)) return;
    const { br, mnt } = fresh({ up: {}, lo: { l: 'l' }, x: {} });
    const child = spawn(process.execPath, [CLI_MAIN, 'mount', '-f', '-o', `dirs=${br.up}=rw:${br.lo}=ro`, mnt], { env, stdio: 'ignore' });
    mounts.push(mnt);
    try {
      assert.ok(await waitFor(() => isMounted(mnt) && daemonPids(mnt, run).length > 0, 15_000), 'mounted');
      const r = remount(`add:1:${br.x}`, mnt);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /is a foreground mount \(pid \d+\): only mounts served by the layerfs daemon can change their branches/);
    } finally {
      child.kill('SIGTERM');
      await waitFor(() => child.exitCode !== null, 10_000);
    }
  });
});
