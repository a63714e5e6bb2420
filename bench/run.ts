/**
 * `npm run bench`: issue 6's benchmark suite. Every workload runs on the native
 * dir, kernel overlayfs, fuse-overlayfs, unionfs-fuse and layerfs (plus any
 * --variant/--baseline builds) over the same lower layers, targets interleaved
 * in each round; prints medians and ratios per workload, and with --write a
 * markdown results file. Needs root. `--help` for the options.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ctx } from './context.js';
import { DataSets } from './datasets/index.js';
import { floorsTable, goalsTable } from './goals.js';
import { describeMachine } from './machine.js';
import { isMounted } from './mount.js';
import { parseOptions, USAGE, type Options } from './options.js';
import { renderMarkdown, renderPlain, workloadTables } from './report.js';
import { Results } from './results.js';
import { ENABLE_URING, targets, usesUring, type Target } from './targets.js';
import { copyupWorkload } from './workloads/copyup.js';
import { listWorkload } from './workloads/list.js';
import { lookupWorkload } from './workloads/lookup.js';
import { podmanWorkload } from './workloads/podman.js';
import { readdirWorkload } from './workloads/readdir.js';
import { seqreadWorkload } from './workloads/seqread.js';
import { smallWorkload } from './workloads/small.js';
import { smallCopyupWorkload } from './workloads/small-copyup.js';
import { statWorkload } from './workloads/stat.js';
import { untarWorkload } from './workloads/untar.js';
import type { Workload } from './workloads/workload.js';
import { mountsWorkload } from './workloads/mounts.js';
import { scaleWorkload } from './workloads/scale.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // <repo>/dist/bench
const repoRoot = path.resolve(here, '..', '..');

let opt: Options;
try {
  const parsed = parseOptions(process.argv.slice(2));
  if (parsed === 'help') {
    console.log(USAGE);
    process.exit(0);
  }
  opt = parsed;
} catch (e) {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('bench: needs root (mounts, /proc/sys/vm/drop_caches)');
  process.exit(1);
}

const all = targets(repoRoot, opt.variants, opt.baselines, opt.only);
// a word naming a target exactly picks that one (`layerfs` is not also `layerfs-uring`), and the
// builds --variant/--baseline asked for; any other word every target whose name contains it
const asked = (t: Target): boolean => t.name.startsWith('layerfs ') || t.name.startsWith('layerfs@');
const picks = (t: Target, w: string): boolean => (all.some((x) => x.name === w) ? t.name === w || (asked(t) && t.name.includes(w)) : t.name.includes(w));
const chosen: Target[] = opt.only ? all.filter((t) => opt.only!.some((w) => picks(t, w))) : all;
if (chosen.length === 0) {
  console.error(`bench: --only matched none of: ${all.map((t) => t.name).join(', ')}`);
  process.exit(1);
}

// A -o uring target needs the fuse module's enable_uring for the run: set, and put back at exit.
const uringWas = chosen.some(usesUring) ? fs.readFileSync(ENABLE_URING, 'utf8').trim() : undefined;
if (uringWas !== undefined) {
  fs.writeFileSync(ENABLE_URING, 'Y');
  process.on('exit', () => fs.writeFileSync(ENABLE_URING, uringWas));
}

// Short paths: kernel overlayfs takes at most a page of mount options (100 lower dirs).
const work = fs.mkdtempSync('/var/tmp/lfb-');
const results = new Results();
const ctx = new Ctx(work, here, opt, chosen, results);
const startLoad = os.loadavg()[0]!;
/** Share of time some task waited for I/O over the last 5 minutes (/proc/pressure/io), e.g. "4.4%". */
function ioPressure(): string {
  try {
    return `${/some .*avg300=([\d.]+)/.exec(fs.readFileSync('/proc/pressure/io', 'utf8'))?.[1] ?? '?'}%`;
  } catch {
    return '?';
  }
}
const startIo = ioPressure();
const started = new Date();

/** Mount points under the work dir, deepest first (ours only: the dir is new). */
function mountsUnderWork(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(`${work}/`))
    .sort((a, b) => b.length - a.length);
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const { unmountTarget } = await import('./mount.js');
    for (const mnt of mountsUnderWork()) {
      const note = await unmountTarget(mnt);
      if (note) console.error(`bench: ${mnt}: ${note}`);
    }
    const left = mountsUnderWork().filter(isMounted);
    if (left.length) console.error(`bench: still mounted, work dir kept: ${left.join(' ')}`);
    else if (opt.keep) console.error(`bench: data sets kept in ${work}`);
    else {
      ctx.progress(`removing ${work}`);
      try {
        fs.rmSync(work, { recursive: true, force: true });
      } catch (e) {
        console.error(`bench: cannot remove ${work}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  })();
  return cleaning;
}

// The first signal stops the run after the current measurement (its mount is
// unmounted in withMount's finally, the rest by cleanup below); a second one
// cleans up at once.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (!ctx.aborted) {
      ctx.aborted = true;
      console.error(`\nbench: ${sig}, stopping after the current measurement, then unmounting`);
      return;
    }
    void cleanup().finally(() => process.exit(130));
  });
}

const registry: Record<Options['workloads'][number], () => Workload> = {
  stat: statWorkload,
  list: listWorkload,
  readdir: readdirWorkload,
  small: smallWorkload,
  seqread: seqreadWorkload,
  copyup: copyupWorkload,
  untar: untarWorkload,
  lookup: lookupWorkload,
  mounts: mountsWorkload,
  scale: scaleWorkload,
  podman: podmanWorkload,
  smallcpup: smallCopyupWorkload,
};

async function main(): Promise<void> {
  const data = new DataSets(path.join(work, 'd'), opt.sizes, (m) => ctx.progress(m));
  for (const t of chosen) if (t.kind !== 'native') fs.mkdirSync(ctx.mntOf(t));
  const workloads = opt.workloads.map((id) => registry[id]());
  for (const w of workloads) w.prepare(ctx, data);
  spawnSync('sync');
  ctx.progress(`data sets built; ${opt.rounds} rounds of ${workloads.map((w) => w.id).join(', ')} on ${chosen.map((t) => t.name).join(', ')}`);

  try {
    await rounds(workloads);
  } finally {
    for (const w of workloads) w.finish?.(ctx);
  }
  if (!ctx.aborted) report();
}

async function rounds(workloads: Workload[]): Promise<void> {
  for (let round = 0; round < opt.rounds; round++) {
    for (const w of workloads) {
      const order = chosen.map((_, i) => chosen[(i + round) % chosen.length]!);
      ctx.progress(`round ${round + 1}/${opt.rounds}: ${w.id}`);
      for (const t of order) {
        if (ctx.aborted) return;
        try {
          await w.run(ctx, t);
        } catch (e) {
          const why = e instanceof Error ? e.message : String(e);
          ctx.progress(`  ${t.name} · ${w.id}: ERROR ${why}`);
          for (const m of results.metrics.filter((x) => x.table === w.id)) results.cell(m, t.name).failures.push(why);
        }
      }
    }
  }
}

const CAVEATS = `## Reading these figures

- Compare ratios within one run, not figures across runs: this is a 2-core VM with a shared disk, and other
  sessions may run during a bench (see the load and I/O pressure above). Disk-bound rows (copy-up, cold read,
  untar) moved by up to 2x between runs of the same code.
- "cold" means the guest's page cache was dropped; the host may still cache the disk image, so it is not disk speed.
- The ext4 here is mounted with \`discard\`: creating many files soon after deleting many was up to 25x slower, so
  the bench deletes nothing during a run (except each copy-up's one big file) and removes its data at the end.
- native copy-up is the same 1-byte append to a plain file (nothing to copy): the cost of the \`dd\` itself.
- unionfs-fuse reads the same layers converted to its own format (hard-linked copies with
  \`.unionfs-fuse/NAME_HIDDEN~\` markers for whiteouts and opaque dirs), mounted \`-o cow,allow_other,hide_meta_files\`.
- fuse-overlayfs and unionfs-fuse run with their defaults; kernel overlayfs with the kernel's defaults
  (\`lowerdir=...,upperdir=...,workdir=...\`).
`;

function report(): void {
  const end = os.loadavg()[0]!;
  const minutes = (Date.now() - started.getTime()) / 60_000;
  const floors = floorsTable(results, chosen);
  const tables = [goalsTable(results, chosen, opt.sizes), ...(floors ? [floors] : []), ...workloadTables(results, chosen, opt.rounds)];
  console.log('');
  for (const t of tables) console.log(`${renderPlain(t)}\n`);
  const loadLine =
    `load average (1 min) ${startLoad.toFixed(2)} at start, ${end.toFixed(2)} at end; I/O pressure (some, avg300) ${startIo} at start, ${ioPressure()} at end; ` +
    `${os.availableParallelism()} CPUs; run took ${minutes.toFixed(1)} min`;
  console.log(loadLine);
  if (!opt.write) return;
  const machine = describeMachine(repoRoot, work);
  const file = path.resolve(opt.write === 'docs/performance.md' ? repoRoot : process.cwd(), opt.write);
  const command = `npm run bench --${process.argv.slice(2).map((a) => (/[\s,=]/.test(a) && !a.startsWith('--') ? ` '${a}'` : ` ${a}`)).join('')}`;
  const md = [
    '# layerfs performance',
    '',
    'Produced by `npm run bench` (bench/run.ts): every workload of issue 6 on the native dir (the merged tree copied',
    'to one plain directory: the floor), kernel overlayfs, fuse-overlayfs, unionfs-fuse and layerfs, over the same',
    `lower layers; targets interleaved in each round (order rotated), ${opt.rounds} round${opt.rounds === 1 ? '' : 's'}, medians. Each measurement`,
    'gets a fresh mount with an empty upper dir unless its table says otherwise.',
    '',
    `- date: ${started.toISOString().replace(/\.\d+Z$/, 'Z')}`,
    `- command: \`${command.trim()}\``,
    ...machine.lines.map(([k, v]) => `- ${k}: ${v}`),
    `- ${loadLine}`,
    '',
    ...tables.map((t, i) => `${renderMarkdown(t, i === 0 ? '##' : '###')}\n`),
    CAVEATS,
  ].join('\n');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, md);
  console.log(`results written to ${file}`);
}

try {
  await main();
} catch (e) {
  console.error(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
  if (ctx.aborted) process.exitCode = 130;
}
