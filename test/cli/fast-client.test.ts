/**
 * The C client (native/client.c, build/Release/layerfs-client) that bin/layerfs runs for the mount
 * forms: through it every mount form gives what the Node client gives (the mount, its source and
 * options, the error line, the warning, the exit status), odd path names included; without a
 * daemon, or for anything it does not take, it hands over to Node. LAYERFS_CLIENT_TRACE=1 makes it
 * say which way it went; LAYERFS_NO_CLIENT=1 makes bin/layerfs skip it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, REPO, forceUnmount, isMounted, requireFuse, residentDaemons, stopDaemons, waitFor } from '../helpers/mount.js';
import { MAX_LOST } from '../../src/daemon/client.js';

const CLIENT = join(REPO, 'build', 'Release', 'layerfs-client');

interface Got {
  status: number | null;
  stdout: string;
  /** stderr without the trace lines */
  stderr: string;
  /** 'daemon', 'node (why)', or '' when the client did not run */
  way: string;
}

function scratch(t: { after(fn: () => Promise<void> | void): void }, name = 'fast-client') {
  const root = realpathSync(mkdtempSync(join(tmpdir(), `layerfs-${name}-`)));
  const run = join(root, 'run');
  const lo = join(root, 'lo');
  mkdirSync(join(lo, 'd'), { recursive: true });
  writeFileSync(join(lo, 'hello.txt'), 'hello\n');
  writeFileSync(join(lo, 'd', 'f'), 'f\n');
  const mounted = new Set<string>();
  t.after(async () => {
    for (const m of mounted) forceUnmount(m);
    await stopDaemons(run);
    rmSync(root, { recursive: true, force: true });
  });
  let n = 0;
  /** A fresh upper, work dir and mount point; their paths (absolute and relative to root). */
  const fresh = (mntName?: string) => {
    const i = n++;
    for (const d of [`up${i}`, `work${i}`]) mkdirSync(join(root, d));
    const mntRel = mntName ?? `mnt${i}`;
    mkdirSync(join(root, mntRel));
    const mnt = join(root, mntRel);
    mounted.add(mnt);
    return {
      mnt,
      mntRel,
      opts: `lowerdir=${lo},upperdir=${root}/up${i},workdir=${root}/work${i}`,
      relOpts: `lowerdir=lo,upperdir=up${i},workdir=work${i}`,
    };
  };
  const env = (o: { node?: boolean } = {}): NodeJS.ProcessEnv => ({
    ...process.env,
    LAYERFS_RUN_DIR: run,
    LAYERFS_CLIENT_TRACE: '1',
    LAYERFS_NO_CLIENT: o.node ? '1' : '',
  });
  const layerfs = (args: string[], o: { node?: boolean; cwd?: string } = {}): Got => {
    const r = spawnSync(BIN, args, { cwd: o.cwd ?? root, env: env(o), encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    const lines = (r.stderr ?? '').split(/(?<=\n)/);
    const trace = lines.filter((l) => l.startsWith('layerfs-client: '));
    return {
      status: r.status,
      stdout: r.stdout ?? '',
      stderr: lines.filter((l) => !l.startsWith('layerfs-client: ')).join(''),
      way: trace.map((l) => l.slice('layerfs-client: '.length).trim()).join(' / '),
    };
  };
  /** The daemon's record of the mount at `mnt` (source, options, branches), without its id and times. */
  const record = (mnt: string): { source: string; options: string; branches: unknown } => {
    const dir = join(run, 'mounts');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
      const m = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { mountpoint: string; source: string; options: string; branches: unknown };
      if (m.mountpoint === mnt) return { source: m.source, options: m.options, branches: m.branches };
    }
    assert.fail(`no record of ${mnt} in ${dir}`);
  };
  const umount = async (mnt: string): Promise<void> => {
    const r = spawnSync('umount', [mnt], { timeout: 10_000 });
    assert.equal(r.status, 0, `umount ${mnt}: ${r.stderr}`);
    // the daemon removes its record once it freed the mount
    const left = (): string[] =>
      readdirSync(join(run, 'mounts'))
        .filter((f) => f.endsWith('.json'))
        .flatMap((f) => {
          try {
            return [readFileSync(join(run, 'mounts', f), 'utf8')];
          } catch {
            return []; // removed meanwhile
          }
        })
        .filter((j) => (JSON.parse(j) as { mountpoint: string }).mountpoint === mnt);
    assert.ok(await waitFor(() => left().length === 0), `the daemon still records ${mnt}: ${left().join(' ')}`);
  };
  return { root, run, lo, fresh, layerfs, record, umount, env };
}

/** A mount source as /proc/self/mounts shows it for `mnt`. */
function sourceOf(mnt: string): string | undefined {
  const esc = (s: string) => s.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  const line = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[1] === esc(mnt));
  return line?.split(' ')[0];
}

test('the client is built by binding.gyp next to the addon', () => {
  assert.ok(existsSync(CLIENT), `${CLIENT} missing: node-gyp rebuild builds it`);
});

test('no daemon: the client hands over to Node, which starts it; the next mounts go to the daemon directly', async (t) => {
  if (!requireFuse(t)) return;
  const s = scratch(t);
  const a = s.fresh();
  const r = s.layerfs(['-o', a.opts, a.mnt]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.way, 'node (no daemon)');
  assert.equal(r.stderr, '');
  assert.equal(residentDaemons(s.run).length, 1);
  const b = s.fresh();
  const r2 = s.layerfs(['-o', b.opts, b.mnt]);
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal(r2.way, 'daemon');
  assert.equal(r2.stderr, '');
  // a real mount, served: reads, copy-up on write, the lower untouched
  assert.equal(readFileSync(join(b.mnt, 'hello.txt'), 'utf8'), 'hello\n');
  writeFileSync(join(b.mnt, 'd', 'f'), 'changed\n');
  assert.equal(readFileSync(join(s.root, 'up1', 'd', 'f'), 'utf8'), 'changed\n');
  assert.equal(readFileSync(join(s.lo, 'd', 'f'), 'utf8'), 'f\n');
  assert.equal(readFileSync(join(a.mnt, 'd', 'f'), 'utf8'), 'f\n');
  assert.deepEqual(residentDaemons(s.run).length, 1, 'the same daemon serves both');
  await s.umount(b.mnt);
  await s.umount(a.mnt);
  assert.ok(!isMounted(a.mnt) && !isMounted(b.mnt));
});

test('every mount form through the client gives what the Node client gives', async (t) => {
  if (!requireFuse(t)) return;
  const s = scratch(t);
  // start the daemon first (through Node), so that the client can reach it
  const first = s.fresh();
  assert.equal(s.layerfs(['mount', '-o', first.opts, first.mnt]).status, 0);
  type Form = (m: ReturnType<typeof s.fresh>) => string[];
  const forms: [string, Form][] = [
    ['layerfs mount -o OPTS MNT', (m) => ['mount', '-o', m.opts, m.mnt]],
    ['layerfs mount SOURCE MNT -o OPTS', (m) => ['mount', 'mysrc', m.mnt, '-o', m.opts]],
    ['mount(8) helper: layerfs SOURCE MNT -o OPTS', (m) => ['overlay', m.mnt, '-o', m.opts]],
    ['fuse-overlayfs form: layerfs -o OPTS MNT', (m) => ['-o', m.opts, m.mnt]],
    ['-oOPTS', (m) => [`-o${m.opts}`, m.mnt]],
    ['--options=OPTS', (m) => [`--options=${m.opts}`, m.mnt]],
    ['--options OPTS', (m) => ['--options', m.opts, m.mnt]],
    ['-o twice (joined with a comma)', (m) => ['-o', m.opts.split(',upperdir')[0]!, '-o', `upperdir${m.opts.split(',upperdir')[1]}`, m.mnt]],
    ['relative paths', (m) => ['-o', m.relOpts, m.mntRel]],
    ['podman-like extra options', (m) => ['-o', `${m.opts},,volatile,fsync=0,`, m.mnt]],
  ];
  for (const [what, args] of forms) {
    const viaClient = s.fresh();
    const viaNode = s.fresh();
    const c = s.layerfs(args(viaClient));
    const n = s.layerfs(args(viaNode), { node: true });
    assert.equal(c.way, 'daemon', `${what}: the client served it`);
    assert.equal(n.way, '', `${what}: LAYERFS_NO_CLIENT=1 skips the client`);
    assert.deepEqual([c.status, c.stderr, c.stdout], [n.status, n.stderr, n.stdout], what);
    assert.equal(c.status, 0, `${what}: ${c.stderr}`);
    for (const m of [viaClient, viaNode]) {
      assert.ok(isMounted(m.mnt), `${what}: ${m.mnt} mounted`);
      assert.equal(readFileSync(join(m.mnt, 'hello.txt'), 'utf8'), 'hello\n', what);
    }
    assert.equal(sourceOf(viaClient.mnt), sourceOf(viaNode.mnt), `${what}: same source`);
    const rc = s.record(viaClient.mnt);
    const rn = s.record(viaNode.mnt);
    const strip = (x: string, i: number) => x.replaceAll(`up${i}`, 'UP').replaceAll(`work${i}`, 'WORK');
    const ic = Number(/up(\d+)/.exec(rc.options)![1]);
    const inn = Number(/up(\d+)/.exec(rn.options)![1]);
    assert.equal(strip(rc.options, ic), strip(rn.options, inn), `${what}: same options`);
    assert.equal(rc.source, rn.source, what);
    assert.equal(strip(JSON.stringify(rc.branches), ic), strip(JSON.stringify(rn.branches), inn), `${what}: same branches`);
    await s.umount(viaClient.mnt);
    await s.umount(viaNode.mnt);
  }
  await s.umount(first.mnt);
});

test('errors: the same one line and exit status as the Node client (bad option, missing branch, busy and missing mount point, unknown option warning)', async (t) => {
  if (!requireFuse(t)) return;
  const s = scratch(t);
  const first = s.fresh();
  assert.equal(s.layerfs(['-o', first.opts, first.mnt]).status, 0);
  const cases: [string, (m: ReturnType<typeof s.fresh>) => string[]][] = [
    ['a missing lower branch', (m) => ['-o', m.opts.replace(`lowerdir=${s.lo}`, `lowerdir=${s.root}/nope`), m.mnt]],
    ['a bad option value', (m) => ['-o', `${m.opts},spin=soon`, m.mnt]],
    ['a missing mount point', (m) => ['-o', m.opts, `${m.mnt}-missing`]],
    ['a busy mount point', (m) => ['mount', '-o', m.opts, first.mnt]],
    ['no branches at all', (m) => ['-o', 'volatile', m.mnt]],
  ];
  for (const [what, args] of cases) {
    const m = s.fresh();
    const c = s.layerfs(args(m));
    const n = s.layerfs(args(m), { node: true });
    assert.equal(c.way, 'daemon', what);
    assert.notEqual(c.status, 0, `${what}: fails`);
    assert.deepEqual([c.status, c.stderr], [n.status, n.stderr], what);
    assert.match(c.stderr, /^layerfs: mount [^\n]+: [^\n]+\n$/, `${what}: one line`);
    assert.ok(!isMounted(m.mnt), what);
  }
  // an unknown option: mounted, with the same warning line
  const wc = s.fresh();
  const wn = s.fresh();
  const c = s.layerfs(['-o', `${wc.opts},lazytime,nosuchthing`, wc.mnt]);
  const n = s.layerfs(['-o', `${wn.opts},lazytime,nosuchthing`, wn.mnt], { node: true });
  assert.equal(c.way, 'daemon');
  assert.equal(c.status, 0, c.stderr);
  assert.equal(c.stderr, n.stderr);
  assert.match(c.stderr, /nosuchthing/);
  assert.equal(c.stderr.split('\n').length, 2, 'one warning line');
  for (const m of [wc, wn, first]) await s.umount(m.mnt);
});

test('no daemon and an error: Node gives the error (the client hands over before sending anything)', (t) => {
  if (!requireFuse(t)) return;
  const s = scratch(t);
  const m = s.fresh();
  const args = ['-o', m.opts.replace(`lowerdir=${s.lo}`, `lowerdir=${s.root}/nope`), m.mnt];
  const c = s.layerfs(args);
  assert.equal(c.way, 'node (no daemon)');
  assert.equal(c.status, 1);
  assert.match(c.stderr, new RegExp(`^layerfs: mount ${m.mnt}: .*nope.*\\n$`));
  assert.ok(!isMounted(m.mnt));
});

test('odd path names (spaces, quotes, backslashes, tabs, non-ASCII) travel intact in the JSON request', async (t) => {
  if (!requireFuse(t)) return;
  const s = scratch(t);
  const first = s.fresh();
  assert.equal(s.layerfs(['-o', first.opts, first.mnt]).status, 0);
  // the working directory and the mount point carry every odd character (relative options resolve against it)
  const odd = join(s.root, 'cwd "q" \\ é 😀\tx');
  mkdirSync(join(odd, 'lo'), { recursive: true });
  writeFileSync(join(odd, 'lo', 'ünï "c" ode'), 'odd\n');
  for (const [i, node] of [
    [0, false],
    [1, true],
  ] as const) {
    for (const d of [`up${i}`, `work${i}`]) mkdirSync(join(odd, d));
    const mntRel = `mnt ${i} "x" \\y\\ ñ 漢`;
    mkdirSync(join(odd, mntRel));
    const mnt = join(odd, mntRel);
    const r = s.layerfs(['-o', `lowerdir=lo,upperdir=up${i},workdir=work${i}`, mntRel], { cwd: odd, node });
    assert.equal(r.way, node ? '' : 'daemon');
    assert.equal(r.status, 0, r.stderr);
    try {
      assert.ok(isMounted(mnt), `${JSON.stringify(mnt)} mounted`);
      assert.equal(readFileSync(join(mnt, 'ünï "c" ode'), 'utf8'), 'odd\n');
      assert.equal(s.record(mnt).branches !== undefined, true);
    } finally {
      forceUnmount(mnt);
    }
  }
  // the error line echoes the odd mount point byte for byte, as Node does
  const missing = `no such "dir" \\ é 😀`;
  const c = s.layerfs(['-o', 'lowerdir=lo,upperdir=up0,workdir=work0', missing], { cwd: odd });
  const n = s.layerfs(['-o', 'lowerdir=lo,upperdir=up0,workdir=work0', missing], { cwd: odd, node: true });
  assert.equal(c.way, 'daemon');
  assert.deepEqual([c.status, c.stderr], [n.status, n.stderr]);
  assert.ok(c.stderr.startsWith(`layerfs: mount ${missing}: `), c.stderr);
  // an option value with every odd character as well (the daemon gets it verbatim: a missing branch named so)
  const weird = `lowerdir=${odd}/lo "é" 😀,upperdir=${odd}/up0,workdir=${odd}/work0`;
  const c2 = s.layerfs(['-o', weird, 'mnt 0 "x" \\y\\ ñ 漢'], { cwd: odd });
  const n2 = s.layerfs(['-o', weird, 'mnt 0 "x" \\y\\ ñ 漢'], { cwd: odd, node: true });
  assert.equal(c2.way, 'daemon');
  assert.deepEqual([c2.status, c2.stderr], [n2.status, n2.stderr]);
  assert.match(c2.stderr, /lo "é" 😀/);
  await s.umount(first.mnt);
});

test('what the client does not take goes to Node: a name that is not UTF-8, other options, other commands', (t) => {
  if (!requireFuse(t)) return;
  const s = scratch(t);
  const first = s.fresh();
  assert.equal(s.layerfs(['-o', first.opts, first.mnt]).status, 0);
  // not UTF-8: Node decides (as before the client existed)
  const bad = spawnSync('/bin/bash', ['-c', `"${BIN}" -o '${first.opts}' "$(printf 'mnt\\377')"`], { cwd: s.root, env: s.env(), encoding: 'utf8', timeout: 60_000 });
  assert.match(bad.stderr, /^layerfs-client: node \(not UTF-8\)$/m);
  assert.notEqual(bad.status, 0);
  const help = s.layerfs(['mount', '--help']);
  assert.equal(help.way, 'node (an option the client does not take)');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /-o/);
  const fg = s.layerfs(['-o', first.opts]);
  assert.equal(fg.way, 'node (not one mount point)');
  const info = s.layerfs(['info']);
  assert.equal(info.way, '', 'bin/layerfs runs Node at once for other commands');
  assert.equal(info.status, 0);
  const umount = s.layerfs(['umount', first.mnt]);
  assert.equal(umount.way, '');
  assert.equal(umount.status, 0, umount.stderr);
  assert.ok(!isMounted(first.mnt));
});

test('a socket left by a daemon that died (ECONNREFUSED): the client hands over to Node, which starts a new daemon', async (t) => {
  if (!requireFuse(t)) return;
  const s = scratch(t);
  mkdirSync(s.run, { recursive: true });
  const ns = statSync('/proc/self/ns/mnt').ino;
  // a bound socket nobody listens on any more
  const py = spawnSync('python3', ['-c', `import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(join(s.run, `daemon-${ns}.sock`))}); s.close()`]);
  assert.equal(py.status, 0, String(py.stderr));
  assert.ok(existsSync(join(s.run, `daemon-${ns}.sock`)));
  const m = s.fresh();
  const r = s.layerfs(['-o', m.opts, m.mnt]);
  assert.equal(r.way, 'node (no daemon)');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(m.mnt, 'hello.txt'), 'utf8'), 'hello\n');
  const m2 = s.fresh();
  assert.equal(s.layerfs(['-o', m2.opts, m2.mnt]).way, 'daemon');
  await s.umount(m.mnt);
  await s.umount(m2.mnt);
});

test('against a stand-in daemon: the same request as Node sends, and the same output for every kind of reply', async (t) => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-fake-daemon-')));
  const run = join(root, 'run');
  const cwd = join(root, 'wd "q" \\ é\t😀');
  mkdirSync(run);
  mkdirSync(cwd);
  const ns = statSync('/proc/self/ns/mnt').ino;
  let reply: string | null = '';
  const requests: string[] = [];
  const server = createServer((c) => {
    let text = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      text += d;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      requests.push(text.slice(0, nl));
      if (reply === null) c.end();
      else {
        // in two pieces, to be put together by the client
        const r = reply;
        c.write(r.slice(0, 5));
        setTimeout(() => c.end(r.slice(5)), 20);
      }
    });
  });
  await new Promise<void>((res) => server.listen(join(run, `daemon-${ns}.sock`), () => res()));
  t.after(() => {
    server.close();
    rmSync(root, { recursive: true, force: true });
  });
  const runBin = (args: string[], node: boolean): Promise<{ status: number | null; stderr: string; way: string }> =>
    new Promise((res) => {
      const c = spawn(BIN, args, {
        cwd,
        env: { ...process.env, LAYERFS_RUN_DIR: run, LAYERFS_CLIENT_TRACE: '1', LAYERFS_NO_CLIENT: node ? '1' : '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      c.stderr.on('data', (b: Buffer) => (err += b.toString()));
      c.on('exit', (status) => {
        const lines = err.split(/(?<=\n)/);
        res({
          status,
          stderr: lines.filter((l) => !l.startsWith('layerfs-client: ')).join(''),
          way: lines.filter((l) => l.startsWith('layerfs-client: ')).join('').trim(),
        });
      });
    });
  const replies: [string, string | null][] = [
    ['ok', '{"ok":true,"id":"a1","pid":7}\n'],
    ['ok with nested fields skipped', '{ "status" : {"a":[1,-2.5e3,{"b":null,"c":[true,false]}],"d":"x\\"}"} , "ok" : true , "id":"x"}\n'],
    ['a warning', '{"ok":true,"id":"a","warning":"layerfs: warning: unknown \\"x\\" é \\u00e9 \\ud83d\\ude00 \\/"}\n'],
    ['an error', '{"ok":false,"code":"ENOENT","message":"tab\\there \\\\ back \\"q\\" \\u2028 lone \\ud800 end"}\n'],
    ['an error without message', '{"ok":false,"code":"EIO"}\n'],
    ['not JSON', 'this is not json\n'],
    ['no reply', null],
  ];
  const args = ['-o', 'lowerdir=lo "é",upperdir=u\\p,workdir=w\tk', 'mnt "m" \\ 😀'];
  const parsed = (line: string) => {
    const { token, ...rest } = JSON.parse(line) as { token?: unknown };
    assert.ok(typeof token === 'string' && /^[0-9a-f-]{32,36}$/.test(token), `a token in ${line}`);
    return { token, rest };
  };
  for (const [what, r] of replies) {
    reply = r;
    requests.length = 0;
    const c = await runBin(args, false);
    const fromC = requests.splice(0).map(parsed);
    const n = await runBin(args, true);
    const fromNode = requests.splice(0).map(parsed);
    assert.deepEqual([c.status, c.stderr], [n.status, n.stderr], what);
    assert.deepEqual(fromC[0]!.rest, fromNode[0]!.rest, `${what}: the same request`);
    assert.notEqual(fromC[0]!.token, fromNode[0]!.token, `${what}: a new token per mount`);
    if (r !== null) {
      assert.equal(c.way, 'layerfs-client: daemon', what);
      assert.deepEqual([fromC.length, fromNode.length], [1, 1], what);
    } else {
      // the daemon took the request and closed: the C client hands it to Node, which tries it
      // again with the same token (MAX_LOST tries in all per client, then the daemon's error)
      assert.equal(c.way, 'layerfs-client: daemon\nlayerfs-client: node (the daemon died before answering)', what);
      assert.deepEqual([fromC.length, fromNode.length], [MAX_LOST + 1, MAX_LOST], what);
      assert.equal(new Set(fromC.map((q) => q.token)).size, 1, `${what}: one token through both clients`);
      assert.equal(new Set(fromNode.map((q) => q.token)).size, 1, `${what}: one token over the tries`);
    }
    if (what === 'ok') assert.deepEqual(fromC[0]!.rest, { op: 'mount', options: args[1], mountpoint: args[2], cwd });
  }
});
