/**
 * Workload smallcpup (issue 14): small-file copy-up and creation. 1,000 files of 4 KiB in a lower
 * layer; one node process (write-child.js) changes each through the mount, on a fresh mount per
 * row: chmod (copy-up of data and metadata), append of 1 byte (copy-up on a write open), and the
 * creation of 1,000 new 4 KiB files in the same (lower) dirs. Lower files warm in the page cache,
 * nothing dirty before; then `sync` timed apart (+ sync). The upper dir is checked afterwards.
 * The client and the FUSE server run on the CPU that takes the disk's interrupts (placement.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CopyupFiles } from '../datasets/copyup-files.js';
import type { MetricDef } from '../results.js';
import type { Target } from '../targets.js';
import type { Ctx, Opened } from '../context.js';
import { expectCount, type Workload } from './workload.js';
import { diskIrqCpu, pinPids, type DiskIrq } from '../placement.js';

type Mode = 'chmod' | 'append' | 'create';

interface WriteOut {
  ms: number;
  n: number;
  errors: number;
  firstError: string;
}

export function smallCopyupWorkload(): Workload {
  let set: CopyupFiles;
  let lists = '';
  let fileList = '';
  let warmList = '';
  let hostList = '';
  let nativeList = '';
  /** Every lower file the rows change (the first passes' and the timed ones'). */
  let allFiles: string[] = [];
  let made = 0;
  let irq: DiskIrq | null = null;
  const m = {} as Record<Mode, { first: MetricDef; op: MetricDef; sync: MetricDef }>;

  /** What the upper dir (the native dir) must hold after `mode` on `rels`. */
  function check(mode: Mode, o: Opened, rels: string[], inMemory: boolean): void {
    let bad = 0;
    let first = '';
    for (const rel of rels) {
      // the in-memory floors have no upper dir: what the mount shows is checked instead
      const st = fs.lstatSync(path.join(inMemory ? o.root : o.upper, rel), { throwIfNoEntry: false });
      const want = mode === 'append' ? set.bytes + 1 : mode === 'create' ? 4096 : set.bytes;
      const ok = st !== undefined && st.isFile() && st.size === want && (mode !== 'chmod' || (st.mode & 0o777) === 0o600);
      if (!ok && bad++ === 0) first = `${rel}: ${st ? `mode ${(st.mode & 0o7777).toString(8)} size ${st.size}` : 'missing'}`;
    }
    if (bad) throw new Error(`${bad}/${rels.length} upper files wrong, e.g. ${first}`);
  }

  /** The names a pass of `mode` changes and the file listing them: the first pass's or the timed one's. */
  function pass(mode: Mode, first: boolean, k: number): { rels: string[]; list: string } {
    const base = first ? set.warm : set.files;
    if (mode !== 'create') return { rels: base, list: first ? warmList : fileList };
    // new names each time (the native dir keeps what earlier rounds made)
    const dirs = first ? set.warmDirs : set.dirs;
    const rels = base.map((_, j) => `${dirs[j % dirs.length]}/n${k}-${j}.dat`);
    const list = path.join(lists, `cpup-create-${k}${first ? 'w' : ''}.txt`);
    fs.writeFileSync(list, `${rels.join('\n')}\n`);
    return { rels, list };
  }

  async function one(ctx: Ctx, t: Target, mode: Mode): Promise<void> {
    const native = t.kind === 'native';
    const k = mode === 'create' ? made++ : 0;
    const passes = [pass(mode, true, k), pass(mode, false, k)] as const;
    // floor-c-io and floor-io copy up on a chmod (SETATTR) only: their appends and creates stay in memory
    const inMemory = t.kind === 'floor' || t.kind === 'floor-c' || ((t.kind === 'floor-c-io' || t.kind === 'floor-io') && mode !== 'chmod');
    await ctx.withMount(t, set, [m[mode].first, m[mode].op, m[mode].sync], (o) => {
      if (native && mode === 'chmod') for (const f of allFiles) fs.chmodSync(path.join(set.native, f), 0o644);
      ctx.child('read-child.js', [native ? nativeList : hostList, '/']); // warm the lower files
      ctx.timed('sync', []);
      const cpu = irq?.cpu;
      if (cpu !== undefined) pinPids(o.pids, cpu);
      try {
        const run = (p: { rels: string[]; list: string }): number => {
          const out = ctx.child<WriteOut>('write-child.js', [mode, p.list, o.root], cpu);
          if (out.errors) throw new Error(`${out.errors}/${out.n} failed, e.g. ${out.firstError}`);
          expectCount('files changed', out.n, p.rels.length);
          check(mode, o, p.rels, inMemory);
          return out.ms;
        };
        // the first pass: a new daemon compiles its write path here (V8), as a host's daemon over its first containers
        ctx.sample(m[mode].first, t, o, () => run(passes[0]));
        ctx.timed('sync', []); // nothing dirty before the timed pass
        const ms = ctx.sample(m[mode].op, t, o, () => run(passes[1]));
        if (ms !== undefined) ctx.sample(m[mode].sync, t, o, () => ms + ctx.timed('sync', []));
      } finally {
        // the daemon may serve the next workload's mounts: every CPU again
        if (cpu !== undefined) pinPids(o.pids, null);
        if (native && mode === 'append') for (const f of allFiles) fs.truncateSync(path.join(set.native, f), set.bytes);
      }
    });
  }

  return {
    id: 'smallcpup',
    prepare(ctx, data) {
      set = data.copyupFiles();
      lists = path.dirname(data.file('x'));
      fileList = data.file('cpup-files.txt');
      fs.writeFileSync(fileList, `${set.files.join('\n')}\n`);
      warmList = data.file('cpup-warm.txt');
      fs.writeFileSync(warmList, `${set.warm.join('\n')}\n`);
      allFiles = [...set.warm, ...set.files];
      hostList = data.file('cpup-host.txt');
      fs.writeFileSync(hostList, `${allFiles.map((f) => path.join(set.lowers[1]!, f)).join('\n')}\n`);
      nativeList = data.file('cpup-native.txt');
      fs.writeFileSync(nativeList, `${allFiles.map((f) => path.join(set.native, f)).join('\n')}\n`);
      const n = set.files.length;
      const warmN = set.warm.length.toLocaleString('en-US');
      const kib = set.bytes >> 10;
      irq = diskIrqCpu(set.native);
      const where = irq
        ? [
            `The client and the FUSE server's threads run on CPU ${irq.cpu}, which takes the interrupts of ${irq.disk} (${irq.irq}):`,
            'a wait in fsync on another CPU would cost a cross-CPU wake-up per file (bench/placement.ts), handed out by luck.',
          ]
        : ['The processes run where the scheduler puts them (no single CPU takes the disk\'s interrupts here).'];
      ctx.results.table({
        id: 'smallcpup',
        title: `7. Small-file copy-up: ${n.toLocaleString('en-US')} lower files of ${kib} KiB, and ${n.toLocaleString('en-US')} new ones`,
        ratio: 'time',
        notes: [
          `One node process (write-child.js) goes over the ${n} files (10 lower dirs): chmod 600 each (copy-up of data and`,
          'metadata); or open O_APPEND + write 1 byte + close each (copy-up on the write open); or creates as many new',
          `${kib} KiB files (O_CREAT|O_EXCL, write, close) in the same lower dirs. Fresh mount per row, lower files warm in`,
          `the page cache. Each row first does the same to ${warmN} other files in 10 other dirs ("first ${warmN} of a mount": the`,
          'layerfs daemon, started for the row, compiles its write path there: V8 takes ~3,000 copy-ups to reach its steady',
          'state, as a host\'s daemon does over its first containers), then `sync`, then the timed loop over the row\'s',
          'files; `sync` after it timed apart (+ sync = both). The upper dir is checked afterwards (mode, size of each',
          'file). native: the same calls on the plain dir.',
          ...where,
        ],
      });
      for (const [mode, name] of [
        ['chmod', 'chmod'],
        ['append', 'append 1 byte'],
        ['create', `create ${kib} KiB files`],
      ] as const) {
        m[mode] = {
          first: ctx.results.metric({ table: 'smallcpup', name: `${name}, first ${warmN} of a mount`, unit: 'ms', ops: set.warm.length }),
          op: ctx.results.metric({ table: 'smallcpup', name, unit: 'ms', ops: n }),
          sync: ctx.results.metric({ table: 'smallcpup', name: `${name} + sync`, unit: 'ms', noCpu: true }),
        };
      }
    },
    async run(ctx, t) {
      for (const mode of ['chmod', 'append', 'create'] as const) {
        await one(ctx, t, mode);
        ctx.timed('sync', []);
      }
    },
  };
}
