/**
 * Developer probe (not part of `npm run bench`): the cost of udba on the 20k-file tree (5 layers).
 *   node dist/bench/udba-probe.js [--rounds 2] [--changes 100] [--reval-changes 20] [--files 20000]
 * Per mode (none, reval, notify; interleaved, a fresh mount and upper each round): `ls -lR` of a
 * cold mount, the FUSE requests it took, and for notify the watches held afterwards. Then, on a
 * mount walked once, the latency from a file written into a lower branch to its name resolving
 * through the mount (notify: --changes times; reval: --reval-changes times), and the cost of the
 * daemon's own writes under notify (2000 creates through the mount, time and requests, vs none).
 * Prints one JSON line per measurement. The tree is built once in --data (kept).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildTree } from './datasets/tree.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.resolve(here, '..', 'src', 'cli', 'main.js');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    changes: { type: 'string', default: '100' },
    'reval-changes': { type: 'string', default: '20' },
    files: { type: 'string', default: '20000' },
    data: { type: 'string', default: '/var/tmp/lfs-udba-data' },
    modes: { type: 'string', default: 'none,reval,notify' },
    own: { type: 'string', default: 'yes' },
  },
});
const files = Number(values.files);
const treeDir = path.join(values.data!, `t${files}`);
const meta = path.join(treeDir, 'lowers.json');
let lowers: string[];
if (fs.existsSync(meta)) lowers = JSON.parse(fs.readFileSync(meta, 'utf8')) as string[];
else {
  fs.mkdirSync(treeDir, { recursive: true });
  lowers = buildTree(treeDir, files).lowers;
  fs.writeFileSync(meta, JSON.stringify(lowers));
}
// leftovers of an interrupted run
for (const l of lowers) spawnSync('find', [l, '-name', 'udba*.txt', '-delete']);
const work = fs.mkdtempSync('/var/tmp/lfs-udba-');
const run = path.join(work, 'run');
const env = { ...process.env, LAYERFS_RUN_DIR: run, LAYERFS_DAEMON_IDLE_MS: '2000', LC_ALL: 'C' };
let seq = 0;
const mounted: string[] = [];

function mount(mode: string): string {
  const b = path.join(work, `m${seq++}`);
  for (const d of ['up', 'work', 'mnt']) fs.mkdirSync(path.join(b, d), { recursive: true });
  const mnt = path.join(b, 'mnt');
  const opts = `lowerdir=${lowers.join(':')},upperdir=${b}/up,workdir=${b}/work` + (mode === 'none' ? '' : `,udba=${mode}`);
  const r = spawnSync(process.execPath, [cli, 'mount', '-o', opts, mnt], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount: ${r.stderr}`);
  mounted.push(mnt);
  return mnt;
}

function umount(mnt: string): void {
  const r = spawnSync('umount', [mnt]);
  if (r.status !== 0) spawnSync('umount', ['-l', mnt]);
  mounted.splice(mounted.indexOf(mnt), 1);
}

interface Status {
  pid: number;
  mounts: Array<{ mountpoint: string; requests: number; udba?: string }>;
}

function status(mnt: string): { requests: number; udba: string; cpuMs: number } {
  const r = spawnSync(process.execPath, [cli, 'info', '--daemon', '--json'], { env, encoding: 'utf8' });
  const s = JSON.parse(r.stdout) as Status;
  const m = s.mounts.find((x) => x.mountpoint === mnt)!;
  return { requests: m.requests, udba: m.udba ?? '', cpuMs: cpuMs(s.pid) };
}

/** CPU time (user + system, all threads) the daemon used so far, in ms. */
function cpuMs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * 10; // utime, stime in 100 Hz ticks
}

function lsR(mnt: string): number {
  const t0 = performance.now();
  const r = spawnSync('ls', ['-lR', mnt], { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ls -lR: ${r.stderr}`);
  return performance.now() - t0;
}

function q(a: number[], p: number): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

const sleepBuf = new Int32Array(new SharedArrayBuffer(4));
const sleepMs = (ms: number): void => void Atomics.wait(sleepBuf, 0, 0, ms);

// leaf dir a*10+b holds files of layer (a*10+b) % 5 (bench/datasets/tree.ts)
const relOf = (i: number): string => `d${i % 10}/s${Math.floor(i / 10) % 10}/udba${i}.txt`;
const layerOf = (i: number): string => lowers[((i % 10) * 10 + (Math.floor(i / 10) % 10)) % lowers.length]!;

/** From a file written into a lower branch to its name resolving through the mount, `n` times. */
function latency(mnt: string, n: number, pollMs: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const rel = relOf(i);
    const layer = layerOf(i);
    const through = path.join(mnt, rel);
    if (fs.existsSync(through)) throw new Error(`${rel} exists before`);
    fs.writeFileSync(path.join(layer, rel), 'x\n');
    const t0 = performance.now();
    while (!fs.existsSync(through)) {
      if (performance.now() - t0 > 10_000) throw new Error(`${rel}: not visible after 10 s`);
      sleepMs(pollMs);
    }
    out.push(performance.now() - t0);
  }
  for (let i = 0; i < n; i++) fs.rmSync(path.join(layerOf(i), relOf(i)));
  return out;
}

/** 2000 creates, 1000 renames, 1000 unlinks through a fresh mount walked once: time and FUSE requests. */
function ownWrites(mode: string): { ms: number; requests: number } {
  const mnt = mount(mode);
  lsR(mnt);
  const before = status(mnt).requests;
  const t0 = performance.now();
  const dir = path.join(mnt, 'd1', 's1');
  const buf = Buffer.alloc(4096, 120);
  for (let i = 0; i < 2000; i++) fs.writeFileSync(path.join(dir, `own${i}`), buf);
  for (let i = 0; i < 2000; i += 2) fs.renameSync(path.join(dir, `own${i}`), path.join(dir, `mv${i}`));
  for (let i = 1; i < 2000; i += 2) fs.rmSync(path.join(dir, `own${i}`));
  const ms = performance.now() - t0;
  sleepMs(300);
  const after = status(mnt);
  console.log(JSON.stringify({ what: '2000 creates+1000 renames+1000 unlinks through the mount', mode, ms: Math.round(ms), requests: after.requests - before, udba: after.udba, load: load() }));
  umount(mnt);
  return { ms, requests: after.requests - before };
}

function load(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

const modes = values.modes!.split(',');
try {
  console.log(JSON.stringify({ start: new Date().toISOString(), load: load(), files, layers: lowers.length }));
  const times: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  const reqs: Record<string, number[]> = {};
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const mode of modes) {
      const mnt = mount(mode);
      const before = status(mnt);
      const ms = lsR(mnt);
      const after = status(mnt);
      (times[mode] ??= []).push(ms);
      (cpu[mode] ??= []).push(after.cpuMs - before.cpuMs);
      console.log(JSON.stringify({ what: 'ls -lR cold', mode, round: r, ms: Math.round(ms), daemonCpuMs: after.cpuMs - before.cpuMs, requests: after.requests - before.requests, udba: after.udba, load: load() }));
      // again, 2 s later (past reval's 1 s timeouts): what the kernel's caches save
      sleepMs(2000);
      const b2 = status(mnt);
      const ms2 = lsR(mnt);
      const a2 = status(mnt);
      (times[`${mode} again`] ??= []).push(ms2);
      (cpu[`${mode} again`] ??= []).push(a2.cpuMs - b2.cpuMs);
      (reqs[`${mode} again`] ??= []).push(a2.requests - b2.requests);
      console.log(JSON.stringify({ what: 'ls -lR again', mode, round: r, ms: Math.round(ms2), daemonCpuMs: a2.cpuMs - b2.cpuMs, requests: a2.requests - b2.requests, load: load() }));
      umount(mnt);
    }
  }
  for (const mode of modes) console.log(JSON.stringify({ what: 'ls -lR median', mode, ms: Math.round(q(times[mode]!, 0.5)), daemonCpuMs: q(cpu[mode]!, 0.5) }));
  for (const mode of modes) {
    const k = `${mode} again`;
    console.log(JSON.stringify({ what: 'ls -lR again median', mode, ms: Math.round(q(times[k]!, 0.5)), daemonCpuMs: q(cpu[k]!, 0.5), requests: q(reqs[k]!, 0.5) }));
  }
  const own: Record<string, { ms: number[]; req: number[] }> = {};
  for (let r = 0; r < (values.own === 'yes' ? Number(values.rounds) : 0); r++) {
    for (const mode of modes) {
      if (mode === 'reval') continue;
      const o = ownWrites(mode);
      (own[mode] ??= { ms: [], req: [] }).ms.push(o.ms);
      own[mode]!.req.push(o.requests);
    }
  }
  for (const [mode, n, poll] of [['notify', Number(values.changes), 0.2], ['reval', Number(values['reval-changes']), 5]] as const) {
    if (!modes.includes(mode) || n === 0) continue;
    const mnt = mount(mode);
    lsR(mnt);
    const l = latency(mnt, n, poll);
    console.log(JSON.stringify({ what: 'write in branch -> visible', mode, n, p50ms: +q(l, 0.5).toFixed(2), p95ms: +q(l, 0.95).toFixed(2), max: +Math.max(...l).toFixed(2), load: load() }));
    umount(mnt);
  }
  for (const mode of modes) {
    if (own[mode]) console.log(JSON.stringify({ what: 'own writes median', mode, ms: Math.round(q(own[mode]!.ms, 0.5)), requests: q(own[mode]!.req, 0.5) }));
  }
} finally {
  for (const m of [...mounted]) umount(m);
  await new Promise((r) => setTimeout(r, 500));
  spawnSync(process.execPath, [cli, 'info', '--daemon'], { env });
  fs.rmSync(work, { recursive: true, force: true });
}
