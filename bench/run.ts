/**
 * `npm run bench`: issue 3's performance floor. Uncached stat of every file and
 * `ls -lR` of the tree, on layerfs, fuse-overlayfs and kernel overlayfs over the
 * same lower layers, in interleaved rounds; prints medians and the throughput
 * ratio layerfs/fuse-overlayfs (>1 means layerfs is faster). Needs root.
 *
 * Every measurement gets a fresh mount (with an empty upper) and dropped caches,
 * so neither the FUSE kernel caches nor the page/dentry caches are warm.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildLayers } from './layers.js';
import { cpuMs, isMounted, layerfsBaseline, layerfsVariant, mountTarget, pidsMentioning, targets, unmountTarget, type Target } from './targets.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // <repo>/dist/bench
const repoRoot = path.resolve(here, '..', '..');
const TESTS = ['stat', 'ls -lR'] as const;
type TestName = (typeof TESTS)[number];

interface Sample {
  ms: number;
  /** For ls: lines of output, to compare the listings between targets. */
  lines?: number;
  /** CPU time the FUSE daemon used during the measurement (ms, 10 ms resolution); kernel overlayfs has none. */
  daemonCpuMs?: number;
}

interface Cell {
  samples: Sample[];
  /** Why rounds failed (a failed round is retried in the next one). */
  failures: string[];
  notes: Set<string>;
}

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    files: { type: 'string', default: '2000' },
    only: { type: 'string' },
    variant: { type: 'string', multiple: true, default: [] },
    baseline: { type: 'string', multiple: true, default: [] },
    'host-cache': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opt.help) {
  console.log(`usage: npm run bench -- [--rounds N] [--files N] [--only layerfs,fuse-overlayfs,kernel] [--host-cache] [--variant OPTS]... [--baseline DIR]...
Uncached stat and ls -lR on layerfs, fuse-overlayfs and kernel overlayfs (root needed).
--host-cache: keep the host's page/dentry caches warm (still a fresh mount each time), which
isolates the FUSE round trip from disk reads of the lower layers.
--variant OPTS: also measure layerfs mounted with the extra options OPTS (e.g. spin=0), as
a target of its own named 'layerfs OPTS' (repeatable).
--baseline DIR: also measure the layerfs built in checkout DIR (its dist/ and build/), named
'layerfs@BASENAME', e.g. a \`git archive\` of an older commit (repeatable).`);
  process.exit(0);
}
const rounds = Math.max(1, Number(opt.rounds));
const fileCount = Math.max(20, Number(opt.files));

if (process.getuid?.() !== 0) {
  console.error('bench: needs root (mounts, /proc/sys/vm/drop_caches)');
  process.exit(1);
}

const all = [
  ...targets(repoRoot),
  ...(opt.variant ?? []).map((v) => layerfsVariant(repoRoot, v)),
  ...(opt.baseline ?? []).map((d) => layerfsBaseline(path.resolve(d))),
];
const chosen: Target[] = opt.only
  ? all.filter((t) => opt.only!.split(',').some((w) => t.name.includes(w.trim())))
  : all;
if (chosen.length === 0) {
  console.error(`bench: --only matched none of: ${all.map((t) => t.name).join(', ')}`);
  process.exit(1);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-bench-'));
const slug = (t: Target): string => t.name.replace(/[^a-z0-9]+/g, '-');
const mntOf = (t: Target): string => path.join(work, `mnt-${slug(t)}`);
let cleaning: Promise<void> | undefined;

async function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const t of chosen) {
      const note = await unmountTarget(mntOf(t));
      if (note) console.error(`bench: ${t.name}: ${note}`);
    }
    const left = chosen.filter((t) => isMounted(mntOf(t)));
    if (left.length) console.error(`bench: still mounted, work dir kept: ${left.map(mntOf).join(' ')}`);
    else fs.rmSync(work, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\nbench: ${sig}, unmounting`);
    void cleanup().finally(() => process.exit(130));
  });
}

function dropCaches(): void {
  spawnSync('sync');
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

/** A fresh empty upper and work dir for `t`; returns the overlay-style option string. */
function freshOptions(t: Target, lowers: string[]): string {
  const base = path.join(work, slug(t));
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(path.join(base, 'upper'), { recursive: true });
  fs.mkdirSync(path.join(base, 'work'), { recursive: true });
  return `lowerdir=${lowers.join(':')},upperdir=${path.join(base, 'upper')},workdir=${path.join(base, 'work')}`;
}

function runStat(listFile: string, mnt: string): Sample {
  const r = spawnSync(process.execPath, [path.join(here, 'stat-child.js'), listFile, mnt], {
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (r.status !== 0) throw new Error(`stat child failed: ${(r.stderr || r.error?.message || `status ${r.status}`).trim()}`);
  const out = JSON.parse(r.stdout.trim()) as { ms: number; n: number; errors: number; firstError: string };
  if (out.errors > 0) throw new Error(`${out.errors}/${out.n} stats failed, e.g. ${out.firstError}`);
  return { ms: out.ms };
}

function runLs(mnt: string): Sample {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('ls', ['-lR', mnt], {
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C' },
    maxBuffer: 1 << 28,
    timeout: 180_000,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`ls -lR failed: ${(r.stderr || r.error?.message || `status ${r.status}`).trim().split('\n')[0]}`);
  return { ms, lines: r.stdout.split('\n').length };
}

function cpuCell(samples: Sample[]): string {
  const cpu = samples.map((s) => s.daemonCpuMs).filter((v): v is number => v !== undefined);
  return cpu.length ? median(cpu).toFixed(0) : '-';
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const layers = buildLayers(path.join(work, 'layers'), fileCount);
  const listFile = path.join(work, 'files.txt');
  fs.writeFileSync(listFile, `${layers.files.join('\n')}\n`);
  const entries = layers.files.length + layers.dirs.length;
  for (const t of chosen) fs.mkdirSync(mntOf(t));

  const cells = new Map<string, Cell>();
  const cell = (t: Target, test: TestName): Cell => {
    const k = `${test}\0${t.name}`;
    let c = cells.get(k);
    if (!c) cells.set(k, (c = { samples: [], failures: [], notes: new Set() }));
    return c;
  };

  console.log(
    `layerfs bench: ${layers.files.length} files in ${layers.dirs.length} dirs over ${layers.lowers.length} lower layers ` +
      `(${layers.multiLayer} files in 2 layers, ${layers.hidden} hidden by whiteouts or an opaque dir), empty upper`,
  );
  console.log(
    `${rounds} rounds, targets interleaved (order rotates each round); a fresh mount ` +
      (opt['host-cache'] ? 'before every measurement, host caches kept warm (--host-cache)' : 'and dropped caches before every measurement'),
  );

  for (let round = 0; round < rounds; round++) {
    const order = chosen.map((_, i) => chosen[(i + round) % chosen.length]!);
    process.stdout.write(`round ${round + 1}/${rounds}:`);
    for (const t of order) {
      for (const test of TESTS) {
        const c = cell(t, test);
        const mnt = mntOf(t);
        const why = await mountTarget(t, freshOptions(t, layers.lowers), mnt, path.join(work, `${slug(t)}.log`));
        if (why) {
          c.failures.push(`mount failed: ${why}`);
          continue;
        }
        try {
          if (!opt['host-cache']) dropCaches();
          const daemons = pidsMentioning(mnt);
          const cpu0 = cpuMs(daemons);
          const s = test === 'stat' ? runStat(listFile, mnt) : runLs(mnt);
          if (daemons.length > 0) s.daemonCpuMs = cpuMs(daemons) - cpu0;
          c.samples.push(s);
        } catch (e) {
          c.failures.push(e instanceof Error ? e.message : String(e));
        } finally {
          const note = await unmountTarget(mnt);
          if (note) c.notes.add(note);
        }
      }
      process.stdout.write(` ${t.name}`);
    }
    process.stdout.write('\n');
  }
  report(layers.files.length, entries, cells);
  const load = os.loadavg()[0]!;
  const cpus = os.availableParallelism();
  console.log(
    `machine: ${cpus} CPUs, kernel ${os.release()}, load average ${startLoad.toFixed(1)} at start, ${load.toFixed(1)} at end` +
      (Math.max(load, startLoad) > cpus ? ' (busy: the figures are noisy; rerun on an idle machine)' : ''),
  );
}

const startLoad = os.loadavg()[0]!;

function report(files: number, entries: number, cells: Map<string, Cell>): void {
  const get = (test: TestName, name: string): Cell | undefined => cells.get(`${test}\0${name}`);
  const rows: string[][] = [['test', 'target', 'median ms', 'ops/s', 'vs fuse-overlayfs', 'min..max ms', 'daemon cpu ms', 'note']];
  const ratios: string[] = [];
  for (const test of TESTS) {
    const ops = test === 'stat' ? files : entries;
    const ref = get(test, 'fuse-overlayfs');
    const refMs = ref && ref.samples.length ? median(ref.samples.map((s) => s.ms)) : undefined;
    const refLines = [get(test, 'kernel overlayfs'), ref].find((c) => c && c.samples.length)?.samples[0]?.lines;
    for (const t of chosen) {
      const c = get(test, t.name);
      if (!c) continue;
      const notes = [...c.notes];
      const failed = [...new Set(c.failures)].join(' | ');
      if (c.samples.length === 0) {
        rows.push([test, t.name, '-', '-', '-', '-', '-', `${t.name}: ${failed || 'no samples'}`]);
        if (t.name === 'layerfs') ratios.push(`${test}: n/a (${failed || 'no samples'})`);
        continue;
      }
      if (c.failures.length) notes.push(`${c.failures.length}/${rounds} rounds failed: ${failed}`);
      const ms = c.samples.map((s) => s.ms);
      const med = median(ms);
      const lines = c.samples[0]?.lines;
      if (refLines !== undefined && lines !== undefined && lines !== refLines) notes.push(`listing has ${lines} lines, reference ${refLines}`);
      const ratio = refMs !== undefined ? (refMs / med).toFixed(2) : '-';
      if (t.name === 'layerfs') ratios.push(`${test}: ${ratio}`);
      rows.push([
        test,
        t.name,
        med.toFixed(1),
        Math.round((ops * 1000) / med).toString(),
        ratio,
        `${Math.min(...ms).toFixed(1)}..${Math.max(...ms).toFixed(1)}`,
        cpuCell(c.samples),
        notes.join('; '),
      ]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log('');
  for (const r of rows) console.log(r.map((v, i) => (i >= 2 && i <= 6 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd());
  console.log('');
  console.log(`stat: a separate node process (not a FUSE daemon) runs fs.lstatSync on each of ${files} paths; only its loop is timed; ops = files`);
  console.log('daemon cpu ms: median user+system CPU time of the FUSE daemon process during the measurement (/proc/PID/stat, 10 ms ticks)');
  console.log(`ls -lR: wall time of \`ls -lR MNT\` (LC_ALL=C, output read through a pipe); ops = ${entries} entries listed`);
  if (chosen.some((t) => t.name === 'layerfs')) {
    console.log(`ratio layerfs/fuse-overlayfs (throughput, >1 = layerfs faster): ${ratios.join(', ')}`);
  }
}

try {
  await main();
} catch (e) {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
