/**
 * The floor row (issue 14): `ls -lR` (uncached, cached) and lstat of every file (uncached, cached)
 * over a layer tree, interleaved in each round on: the floor (our transport over an in-memory copy
 * of the merged tree, floor-union.ts: the kernel's and the transport's own cost per request),
 * layerfs and kernel overlayfs. Prints medians and the daemon's CPU per workload. Root needed.
 *   node dist/bench/floor.js TREE_ROOT [ROUNDS]     (TREE_ROOT holds l0.. and native/ as the bench's)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const [root, roundsArg] = process.argv.slice(2);
if (!root) throw new Error('usage: floor TREE_ROOT [ROUNDS]');
const rounds = Number(roundsArg ?? 3);
const repo = fileURLToPath(new URL('../..', import.meta.url));
const work = join(root, 'floor-run');
process.env.LAYERFS_RUN_DIR ??= join(work, 'run');
const native = join(root, 'native');
const lowers = readdirSync(root).filter((n) => /^l\d+$/.test(n)).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))).map((n) => join(root, n));

function files(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) files(p, out);
    else out.push(relative(native, p));
  }
  return out;
}
const list = join(root, 'floor-files.txt');
writeFileSync(list, files(native).join('\n') + '\n');

const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const mounted = (m: string): boolean => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === m);
const ticks = (pid: number | undefined): number => {
  if (pid === undefined) return 0;
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(v[11]) + Number(v[12])) * 10; // utime + stime, ms at 100 Hz
};

interface Mount {
  mnt: string;
  pid?: number;
  stop(): void;
}

function mount(target: string): Mount {
  const mnt = join(work, `${target}-mnt`);
  rmSync(work + `/${target}`, { recursive: true, force: true });
  const up = join(work, target, 'u');
  const wd = join(work, target, 'w');
  for (const d of [mnt, up, wd]) mkdirSync(d, { recursive: true });
  const opts = `lowerdir=${lowers.join(':')},upperdir=${up},workdir=${wd}`;
  let child: ChildProcess | undefined;
  if (target === 'kernel') {
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', opts, mnt]);
    if (r.status !== 0) throw new Error(`overlay mount: ${r.stderr}`);
  } else if (target === 'floor') {
    child = spawn(process.execPath, [join(repo, 'dist/bench/floor-serve.js'), '-f', `tree=${native}`, mnt], { stdio: 'inherit' });
  } else {
    child = spawn(join(repo, 'bin/layerfs'), ['mount', '-f', '-o', opts, mnt], { stdio: 'inherit', env: { ...process.env, LAYERFS_RUN_DIR: join(work, 'run') } });
  }
  for (let i = 0; i < 600 && !mounted(mnt); i++) sleep(50);
  if (!mounted(mnt)) throw new Error(`${target} did not mount`);
  return {
    mnt,
    ...(child?.pid !== undefined ? { pid: child.pid } : {}),
    stop() {
      spawnSync('umount', [mnt]);
      if (child) for (let i = 0; i < 200 && child.exitCode === null && child.signalCode === null && spawnSync('kill', ['-0', String(child.pid)]).status === 0; i++) sleep(25);
    },
  };
}

function dropCaches(): void {
  spawnSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

/** Wall ms and daemon CPU ms of one run of `f`. */
function timed(m: Mount, f: () => void): [number, number] {
  const c0 = ticks(m.pid);
  const t0 = performance.now();
  f();
  const t1 = performance.now();
  return [t1 - t0, ticks(m.pid) - c0];
}

const lsR = (m: Mount) => () => {
  const r = spawnSync('ls', ['-lR', m.mnt], { env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`ls -lR: ${r.stderr}`);
};
const statAll = (m: Mount) => () => {
  const r = spawnSync(process.execPath, [join(repo, 'dist/bench/stat-child.js'), list, m.mnt], { encoding: 'utf8' });
  const o = JSON.parse(r.stdout) as { ok: number; n: number };
  if (o.ok !== o.n) throw new Error(`stat: ${r.stdout}`);
};

const targets = ['floor', 'layerfs', 'kernel'];
const workloads = ['lstat uncached', 'lstat cached', 'ls -lR cached', 'ls -lR uncached'];
const res: Record<string, Record<string, [number, number][]>> = {};
for (const t of targets) res[t] = Object.fromEntries(workloads.map((w) => [w, []]));
for (let r = 0; r < rounds; r++) {
  for (const t of targets) {
    let m = mount(t);
    try {
      dropCaches();
      res[t]!['lstat uncached']!.push(timed(m, statAll(m)));
      res[t]!['lstat cached']!.push(timed(m, statAll(m)));
      res[t]!['ls -lR cached']!.push(timed(m, lsR(m)));
    } finally {
      m.stop();
    }
    m = mount(t);
    try {
      dropCaches();
      res[t]!['ls -lR uncached']!.push(timed(m, lsR(m)));
    } finally {
      m.stop();
    }
  }
}
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
console.log(`| workload (${files(native).length} files, ${rounds} rounds, medians) | ${targets.map((t) => `${t} ms (daemon CPU ms)`).join(' | ')} |`);
console.log(`| --- | ${targets.map(() => '---:').join(' | ')} |`);
for (const w of workloads) {
  const cells = targets.map((t) => {
    const s = res[t]![w]!;
    const cpu = t === 'kernel' ? '' : ` (${median(s.map((x) => x[1])).toFixed(0)})`;
    return `${median(s.map((x) => x[0])).toFixed(0)}${cpu}`;
  });
  console.log(`| ${w} | ${cells.join(' | ')} |`);
}
rmSync(work, { recursive: true, force: true });
rmSync(list, { force: true });
