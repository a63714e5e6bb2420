/**
 * The supervisor (README "Surviving a daemon crash"): kill -9 of the serving daemon while idle,
 * under a read/write loop, with renames and copy-ups in flight, with several mounts; `layerfs
 * daemon restart` under load; the info line; the no-RESEND fallback; nothing left running.
 * Recovery time (kill to the first answered request) is printed for docs/performance.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN, forceUnmount, pidAlive, requireFuse, residentDaemons, stopDaemons, supervisors, waitFor } from '../helpers/mount.js';

function scratch(t: { after(fn: () => Promise<void> | void): void }, name: string, n: number, extraEnv: NodeJS.ProcessEnv = {}) {
  const root = realpathSync(mkdtempSync(join(tmpdir(), `layerfs-sup-${name}-`)));
  const run = join(root, 'run');
  mkdirSync(join(root, 'lo'));
  writeFileSync(join(root, 'lo', 'hello.txt'), 'hello\n');
  for (let i = 0; i < 20; i++) writeFileSync(join(root, 'lo', `f${i}`), `lower ${i}\n`.repeat(100));
  const mnts: string[] = [];
  for (let i = 0; i < n; i++) {
    for (const d of ['up', 'mnt']) mkdirSync(join(root, `${d}${i}`));
    mnts.push(join(root, `mnt${i}`));
  }
  const env = { ...process.env, LAYERFS_RUN_DIR: run, LAYERFS_DAEMON_IDLE_MS: '300', ...extraEnv };
  t.after(async () => {
    for (const m of mnts) forceUnmount(m);
    await stopDaemons(run);
    rmSync(root, { recursive: true, force: true });
  });
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI_MAIN, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  const mount = (i: number, extra = '') => {
    const r = cli('mount', '-o', `dirs=${root}/up${i}=rw:${root}/lo=ro${extra}`, mnts[i]!);
    assert.equal(r.status, 0, r.stderr);
    return r;
  };
  const daemonPid = (): number => {
    const f = readdirSync(run).find((x) => /^daemon-\d+\.pid$/.test(x));
    return f ? Number(readFileSync(join(run, f), 'utf8').trim()) : 0;
  };
  const kill9 = (): number => {
    const pid = daemonPid();
    assert.ok(pid > 0 && pidAlive(pid), 'a serving daemon runs');
    process.kill(pid, 'SIGKILL');
    return pid;
  };
  return { root, run, mnts, env, cli, mount, daemonPid, kill9 };
}

/** Wait for a new daemon pid (the supervisor writes it when it hands over). */
async function newDaemon(daemonPid: () => number, old: number): Promise<number> {
  assert.ok(await waitFor(() => daemonPid() !== old && pidAlive(daemonPid()), 10_000), 'a new daemon serves');
  return daemonPid();
}

function sortedTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const n of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const r = rel ? `${rel}/${n.name}` : n.name;
      if (n.isDirectory()) {
        out.push(`${r}/`);
        walk(join(d, n.name), r);
      } else out.push(`${r}=${readFileSync(join(d, n.name), 'utf8')}`);
    }
  };
  walk(dir, '');
  return out;
}

function lowerSnapshot(lo: string): string {
  return sortedTree(lo).join('\n');
}

test('kill -9 while idle: the mount answers, info counts the restart, open files stay usable, nothing left running at the end', async (t) => {
  if (!requireFuse(t)) return;
  const s = scratch(t, 'idle', 1);
  s.mount(0);
  const m = s.mnts[0]!;
  // supervised and never restarted: the default, info says nothing about it
  assert.doesNotMatch(s.cli('info', m).stdout, /^restarts:/m);
  const sup = supervisors(s.run);
  assert.equal(sup.length, 1);
  writeFileSync(join(m, 'new.txt'), 'made before\n');
  const { openSync, readSync, writeSync, closeSync } = await import('node:fs');
  const fd = openSync(join(m, 'f1'), 'r+');
  const old = s.kill9();
  assert.equal(readFileSync(join(m, 'hello.txt'), 'utf8'), 'hello\n');
  assert.equal(readFileSync(join(m, 'new.txt'), 'utf8'), 'made before\n');
  // the handle opened before the crash works after it
  const b = Buffer.alloc(8);
  assert.equal(readSync(fd, b, 0, 8, 0), 8);
  assert.equal(b.toString(), 'lower 1\n');
  writeSync(fd, 'UPPER', 0);
  closeSync(fd);
  assert.equal(readFileSync(join(m, 'f1'), 'utf8').slice(0, 8), 'UPPER 1\n');
  await newDaemon(s.daemonPid, old);
  const info = s.cli('info', m).stdout;
  assert.match(info, /^restarts: 1 \(last: killed by SIGKILL at \d{4}-\d\d-\d\dT[\d:]+Z\); supervised/m);
  assert.equal(supervisors(s.run)[0], sup[0], 'the same supervisor');
  assert.equal(s.cli('umount', m).status, 0);
  // idle exit: daemon, standby and supervisor all gone
  assert.ok(await waitFor(() => !pidAlive(sup[0]!) && residentDaemons(s.run).length === 0, 15_000), 'supervisor and daemons exited');
  assert.equal(readFileSync(join(s.root, 'lo', 'f1'), 'utf8'), 'lower 1\n'.repeat(100), 'lower branch untouched');
});

test('kill -9 in a loop under a read/write/rename/copy-up workload: no error seen, final tree as without kills, lower byte-identical; recovery time', async (t) => {
  if (!requireFuse(t)) return;
  const s = scratch(t, 'loop', 1);
  const lowerBefore = lowerSnapshot(join(s.root, 'lo'));
  s.mount(0);
  const m = s.mnts[0]!;
  // the workload: a child process (each step checked against what it wrote)
  // long enough for the kills to land while it runs (400 rounds took < 0.2 s on an idle machine)
  const ROUNDS = 4000;
  const script = `
    const fs = require('fs'); const p = require('path'); const m = process.argv[1];
    fs.mkdirSync(p.join(m, 'dir'), { recursive: true });
    for (let i = 0; i < ${ROUNDS}; i++) {
      const f = p.join(m, 'dir', 'w' + (i % 7));
      fs.writeFileSync(f, 'round ' + i + '\\n');
      const got = fs.readFileSync(f, 'utf8');
      if (got !== 'round ' + i + '\\n') throw new Error('read back ' + JSON.stringify(got) + ' at ' + i);
      // copy-up of a lower file (append), then renames of it back and forth
      const lf = p.join(m, 'f' + (i % 20));
      fs.appendFileSync(lf, 'a' + i + '\\n');
      fs.renameSync(lf, lf + '.moved');
      fs.renameSync(lf + '.moved', lf);
      if (i % 50 === 0) { fs.mkdirSync(p.join(m, 'd' + i)); fs.rmdirSync(p.join(m, 'd' + i)); }
    }
    process.stdout.write('done');
  `;
  const child = spawn(process.execPath, ['-e', script, m], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b));
  child.stderr.on('data', (b: Buffer) => (err += b));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  let kills = 0;
  let running = true;
  void exited.then(() => (running = false));
  while (running && kills < 15) {
    await new Promise((r) => setTimeout(r, 150 + Math.random() * 250));
    if (!running) break;
    const old = s.kill9();
    kills++;
    await newDaemon(s.daemonPid, old);
  }
  assert.equal(await exited, 0, `workload failed: ${err}`);
  assert.equal(out, 'done');
  assert.ok(kills >= 3, `only ${kills} kills happened`);
  // the final tree, as the same workload without kills leaves it
  const expect: Record<string, string> = {};
  for (let i = 0; i < 20; i++) expect[`f${i}`] = `lower ${i}\n`.repeat(100);
  for (let i = 0; i < ROUNDS; i++) expect[`f${i % 20}`] += `a${i}\n`;
  for (let i = 0; i < 20; i++) assert.equal(readFileSync(join(m, `f${i}`), 'utf8'), expect[`f${i}`], `f${i}`);
  assert.deepEqual(readdirSync(join(m, 'dir')).sort(), ['w0', 'w1', 'w2', 'w3', 'w4', 'w5', 'w6']);
  assert.deepEqual(readdirSync(m).filter((n) => n.endsWith('.moved') || /^d\d+$/.test(n)), []);
  assert.equal(lowerSnapshot(join(s.root, 'lo')), lowerBefore, 'lower branch byte-identical');

  // recovery time: kill -9, then one uncached LOOKUP; >= 30 kills
  const times: number[] = [];
  for (let k = 0; k < 30; k++) {
    const old = s.daemonPid();
    await new Promise((r) => setTimeout(r, 1100)); // the standby is started 1 s after a takeover
    const t0 = performance.now();
    process.kill(old, 'SIGKILL');
    assert.throws(() => statSync(join(m, `absent-${k}`)), /ENOENT/);
    times.push(performance.now() - t0);
    await newDaemon(s.daemonPid, old);
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(1);
  process.stdout.write(`# recovery kill -9 -> first answer over ${times.length} kills: p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, max ${q(1)} ms\n`);
  // the target (p95 < 0.5 s) is measured and reported (docs/performance.md), not asserted: a loaded
  // CI machine moves it by a few tens of ms; what must never happen is a takeover that waits on a
  // timeout or a fresh start that hangs
  assert.ok(Number(q(0.95)) < 1500, `p95 ${q(0.95)} ms: a takeover waits on something`);
  assert.match(s.cli('info', m).stdout, new RegExp(`^restarts: ${kills + times.length} \\(last: killed by SIGKILL`, 'm'));
});

test('several mounts survive one kill; layerfs daemon restart under load hands them all over', async (t) => {
  if (!requireFuse(t)) return;
  const s = scratch(t, 'many', 3);
  for (let i = 0; i < 3; i++) s.mount(i);
  const old = s.kill9();
  for (let i = 0; i < 3; i++) assert.equal(readFileSync(join(s.mnts[i]!, 'hello.txt'), 'utf8'), 'hello\n');
  const second = await newDaemon(s.daemonPid, old);
  const script = `const fs=require('fs');for(let i=0;i<3000;i++){const f=process.argv[1]+'/x';fs.writeFileSync(f,String(i));if(fs.readFileSync(f,'utf8')!==String(i))throw new Error('at '+i)}`;
  const child = spawn(process.execPath, ['-e', script, s.mnts[1]!], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  await new Promise((r) => setTimeout(r, 300));
  const r = s.cli('daemon', 'restart');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^daemon ${second} -> \\d+, 3 mounts$`, 'm'));
  assert.equal(await exited, 0, err);
  assert.match(s.cli('info', s.mnts[2]!).stdout, /^restarts: 2 \(last: upgrade at /m);
});

test('no FUSE_NOTIFY_RESEND (forced) or supervise=off: the mount says it is not supervised and works as before', async (t) => {
  if (!requireFuse(t)) return;
  const s = scratch(t, 'noresend', 2, { LAYERFS_TEST_NO_RESEND: '1' });
  const r = s.mount(0);
  assert.match(r.stderr, /not supervised: the kernel's FUSE protocol 7\.\d+ has no FUSE_NOTIFY_RESEND/);
  assert.match(s.cli('info', s.mnts[0]!).stdout, /^restarts: not supervised \(/m);
  const r2 = s.mount(1, ',supervise=off');
  assert.match(r2.stderr, /not supervised: supervise=off/);
  assert.equal(readFileSync(join(s.mnts[1]!, 'hello.txt'), 'utf8'), 'hello\n');
  const d = s.cli('daemon', 'restart');
  assert.notEqual(d.status, 0);
  assert.match(d.stderr, /not supervised, a restart would end them/);
});

test('info and umount right after kill -9 (nothing has touched the mount yet): they wait for the takeover, the mount is not forgotten', async (t) => {
  if (!requireFuse(t)) return;
  const s = scratch(t, 'infokill', 2);
  s.mount(0);
  s.mount(1);
  for (let round = 0; round < 3; round++) {
    const old = s.kill9();
    const info = s.cli('info', s.mnts[0]!);
    assert.equal(info.status, 0, `round ${round}: ${info.stderr}`);
    assert.match(info.stdout, new RegExp(`^restarts: ${round + 1} \\(last: killed by SIGKILL`, 'm'));
    await newDaemon(s.daemonPid, old);
  }
  // the listing of every mount right after a kill, then an umount right after another
  s.kill9();
  const all = s.cli('info');
  assert.equal(all.status, 0, all.stderr);
  for (const m of s.mnts) assert.ok(all.stdout.includes(m), `info lists ${m}`);
  s.kill9();
  const u = s.cli('umount', s.mnts[1]!);
  assert.equal(u.status, 0, u.stderr);
  assert.equal(readFileSync(join(s.mnts[0]!, 'hello.txt'), 'utf8'), 'hello\n');
  assert.equal(s.cli('umount', s.mnts[0]!).status, 0);
});
