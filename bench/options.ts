/**
 * Command line of `npm run bench`: which targets and workloads, how many rounds,
 * and the data set sizes (full, or `--quick` for a ~2 minute developer run).
 */
import { parseArgs } from 'node:util';

export const WORKLOADS = ['stat', 'list', 'readdir', 'small', 'seqread', 'copyup', 'untar', 'lookup', 'mounts', 'scale', 'podman', 'smallcpup'] as const;
export type WorkloadId = (typeof WORKLOADS)[number];

export interface Sizes {
  /** Files in the 5-layer tree (workloads stat, list, untar, memory). */
  treeFiles: number;
  /** Names in the one wide directory merged from 10 layers. */
  wideNames: number;
  /** Small files (1-8 KiB) read by the open+read+close workload. */
  smallFiles: number;
  /** Size of the big lower file (sequential read, copy-up), bytes. */
  bigBytes: number;
  /** Layer counts of the lookup workload. */
  lookupLayers: number[];
  /** Names stat'ed per lookup measurement (3/4 exist in the bottom layer, 1/4 nowhere). */
  lookupNames: number;
  /** Mounts in a row whose latency the mounts workload takes (p50/p95). */
  latencyMounts: number;
  /** Live mount counts at which the scale workload measures memory. */
  scaleMounts: number[];
  /** podman workload: files in the base image, and files a container creates before diff/commit. */
  podmanImageFiles: number;
  podmanFiles: number;
  /** smallcpup: lower files of 4 KiB copied up (and as many created). */
  copyupFiles: number;
}

export interface Options {
  rounds: number;
  only?: string[];
  variants: string[];
  baselines: string[];
  workloads: WorkloadId[];
  quick: boolean;
  keep: boolean;
  write?: string;
  sizes: Sizes;
}

const FULL: Sizes = {
  treeFiles: 20_000,
  wideNames: 10_000,
  smallFiles: 2_000,
  bigBytes: 1 << 30,
  lookupLayers: [1, 10, 50, 100],
  lookupNames: 2_000,
  latencyMounts: 50,
  scaleMounts: [1, 10, 100],
  podmanImageFiles: 5_000,
  podmanFiles: 3_000,
  copyupFiles: 1_000,
};

const QUICK: Sizes = {
  treeFiles: 2_000,
  wideNames: 2_000,
  smallFiles: 500,
  bigBytes: 64 << 20,
  lookupLayers: [1, 5, 10],
  lookupNames: 1_000,
  latencyMounts: 10,
  scaleMounts: [1, 5, 10],
  podmanImageFiles: 1_000,
  podmanFiles: 500,
  copyupFiles: 1_000,
};

export const USAGE = `usage: npm run bench -- [options]     (root needed: mounts, drop_caches)
Runs every workload of issue 6 on: native dir, kernel overlayfs, fuse-overlayfs, unionfs-fuse,
layerfs (and any --variant/--baseline), targets interleaved in each round; prints medians.
  --rounds N          rounds per workload (default 3; 2 with --quick)
  --only a,b          targets named by a word (e.g. layerfs,kernel: not layerfs-uring; --variant and
                      --baseline builds stay), else whose name contains it;
                      the word floor adds the floor (our FUSE transport over an in-memory
                      copy of the tree: the kernel's own cost per request; for stat,list);
                      the word floor-c adds floor-c (a minimal C server over the same tree:
                      stat, list, readdir, smallcpup); floor-c-io that server statting the
                      backing file per lookup and copying up durably (stat, smallcpup chmod)
                      and floor-io the Node floor doing that same disk work (stat, smallcpup chmod)
  --workloads a,b     subset of: ${WORKLOADS.join(',')}
                      (memory is measured with stat; mounts = mount latency
                      p50/p95 over 50 mounts, scale = memory with 1, 10 and 100
                      live mounts: e.g. --workloads mounts,scale --only layerfs,fuse-overlayfs,kernel)
                      podman: run --rm, diff and commit through each target as
                      podman's overlay driver, alone: --workloads podman
                      smallcpup: chmod / append 1 byte to 1,000 lower 4 KiB
                      files (copy-up), create 1,000 new ones
  --quick             small sizes (2k files, 64 MiB big file, at most 10 layers), ~2 minutes
  --variant OPTS      also layerfs mounted with the extra options OPTS, e.g. spin=0 (repeatable)
  --baseline DIR      also the layerfs built in checkout DIR, named layerfs@BASENAME (repeatable)
  --write [FILE]      also write the results as markdown (default docs/performance.md)
  --keep              keep the data sets (under /var/tmp/lfb-*) instead of removing them`;

export function parseOptions(argv: string[]): Options | 'help' {
  // `--write` alone means the default file; parseArgs needs a value, so patch it in.
  const args = argv.flatMap((a, i) =>
    a === '--write' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--')) ? ['--write', 'docs/performance.md'] : [a],
  );
  const { values } = parseArgs({
    args,
    options: {
      rounds: { type: 'string' },
      only: { type: 'string' },
      variant: { type: 'string', multiple: true, default: [] },
      baseline: { type: 'string', multiple: true, default: [] },
      workloads: { type: 'string' },
      quick: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      write: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const quick = values.quick ?? false;
  const rounds = Math.max(1, Number(values.rounds ?? (quick ? 2 : 3)));
  if (!Number.isFinite(rounds)) throw new Error(`--rounds: not a number: ${values.rounds}`);
  let workloads: WorkloadId[] = [...WORKLOADS];
  if (values.workloads) {
    const asked = values.workloads.split(',').map((w) => w.trim()).filter(Boolean);
    const bad = asked.filter((w) => !(WORKLOADS as readonly string[]).includes(w));
    if (bad.length) throw new Error(`--workloads: unknown ${bad.join(', ')} (known: ${WORKLOADS.join(', ')})`);
    workloads = WORKLOADS.filter((w) => asked.includes(w));
  }
  return {
    rounds,
    only: values.only?.split(',').map((w) => w.trim()).filter(Boolean),
    variants: values.variant ?? [],
    baselines: values.baseline ?? [],
    workloads,
    quick,
    keep: values.keep ?? false,
    write: values.write,
    sizes: quick ? QUICK : FULL,
  };
}
