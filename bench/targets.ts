/**
 * The filesystems under test and how each one mounts a set of lower layers with
 * an upper dir: the native directory (no mount: the merged tree copied to one
 * plain dir, the floor), kernel overlayfs, fuse-overlayfs, unionfs-fuse and
 * layerfs (plus `--variant`/`--baseline` layerfs builds). `floor` (only when --only names it: it
 * keeps everything in memory, made for the stat and list workloads) is our FUSE transport over an
 * in-memory copy of the merged tree (floor-union.ts); `floor-c` (the same way) is a minimal C server
 * over the same tree (native/floor-server.c): the kernel's own cost per request plus the least a
 * userspace server adds; `floor-c-io` (the same way) is that server doing the least disk work a
 * union must do (a stat of the backing file per LOOKUP, a durable copy-up into the upper dir per
 * first change of a lower file), the least a userspace union can take on those rows; `floor-io`
 * (the same way) is the Node floor doing that same disk work through the engine's own calls
 * (floor-io-union.ts): the least a union served from Node, as layerfs is, can take on them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The fuse module parameter that lets a mount use FUSE over io_uring (Linux 6.14+). */
export const ENABLE_URING = '/sys/module/fuse/parameters/enable_uring';

function uringAvailable(): boolean {
  return fs.existsSync(ENABLE_URING);
}

/** A layerfs target mounted with -o uring. */
export function usesUring(t: Target): boolean {
  return t.kind === 'layerfs' && /(^|,)uring(,|$)/.test(t.layerfs?.options({ lowers: [], unionfsLowers: [], upper: '', work: '' }) ?? '');
}

export type Kind = 'native' | 'kernel' | 'fuse-overlayfs' | 'unionfs' | 'layerfs' | 'floor' | 'floor-c' | 'floor-c-io' | 'floor-io';

/** What a mount is made of: lower dirs (topmost first) and a fresh upper + work dir. */
export interface MountSpec {
  /** Overlay on-disk format (char 0/0 whiteouts, trusted.overlay.opaque). */
  lowers: string[];
  /** The same layers in unionfs-fuse's format (.unionfs-fuse/NAME_HIDDEN~ markers). */
  unionfsLowers: string[];
  upper: string;
  work: string;
}

export interface Target {
  /** Short name printed in the tables. */
  name: string;
  kind: Kind;
  /** Command and arguments that mount `spec` on `mnt` (none for the native dir). */
  command(spec: MountSpec, mnt: string): { cmd: string; args: string[] };
  /**
   * layerfs: the launcher (bin/layerfs) and the runtime dir of its own resident daemon (each
   * layerfs target gets one, so that a daemon of another checkout, or one serving other mounts,
   * is never measured; see daemonRun in context.ts).
   */
  layerfs?: { launcher: string; options: (spec: MountSpec) => string };
  /**
   * How podman's overlay driver uses this target (workload podman): its mount program (null: kernel
   * overlayfs, no mount program) and extra mount options (`overlay.mountopt`); absent: not usable.
   */
  podman?: { mountProgram: string | null; mountopt?: string };
}

export const overlayOpts = (s: MountSpec): string => `lowerdir=${s.lowers.join(':')},upperdir=${s.upper},workdir=${s.work}`;

function layerfs(name: string, cli: string, extra?: string): Target {
  const options = (s: MountSpec): string => (extra ? `${overlayOpts(s)},${extra}` : overlayOpts(s));
  // <checkout>/dist/src/cli/main.js -> <checkout>/bin/layerfs, the launcher podman execs
  const launcher = path.resolve(path.dirname(cli), '..', '..', '..', 'bin', 'layerfs');
  return {
    name,
    kind: 'layerfs',
    command: (s, mnt) => ({ cmd: process.execPath, args: [cli, 'mount', '-o', options(s), mnt] }),
    podman: extra ? { mountProgram: launcher, mountopt: extra } : { mountProgram: launcher },
    layerfs: { launcher, options },
  };
}

/** The floors' kinds, each also the word of --only that adds it. */
export const FLOOR_KINDS: readonly Kind[] = ['floor-c', 'floor-c-io', 'floor-io', 'floor'];

/** The targets of a run; the floors only where `only` (the words of --only) names them exactly. */
export function targets(repoRoot: string, variants: string[], baselines: string[], only: readonly string[] = []): Target[] {
  const [floorC, floorCIo, floorIo, floor] = FLOOR_KINDS.map((w) => only.includes(w));
  const cli = path.join(repoRoot, 'dist/src/cli/main.js');
  const floorServe = path.join(repoRoot, 'dist/bench/floor-serve.js');
  const floorCServe = path.join(repoRoot, 'dist/bench/floor-c-serve.js');
  return [
    // a C server (native/floor-server.c) over the same in-memory tree: the kernel's own cost per request
    ...(floorC
      ? [
          {
            name: 'floor-c',
            kind: 'floor-c' as const,
            command: (s: MountSpec, mnt: string) => ({ cmd: process.execPath, args: [floorCServe, `lowerdir=${s.lowers.join(':')}`, mnt] }),
          },
        ]
      : []),
    // the same server reading the backing files and copying up into the upper dir (its I/O mode)
    ...(floorCIo
      ? [
          {
            name: 'floor-c-io',
            kind: 'floor-c-io' as const,
            command: (s: MountSpec, mnt: string) => ({ cmd: process.execPath, args: [floorCServe, `${overlayOpts(s)},io`, mnt] }),
          },
        ]
      : []),
    // the Node floor doing floor-c-io's disk work, call for call (floor-io-union.ts)
    ...(floorIo
      ? [
          {
            name: 'floor-io',
            kind: 'floor-io' as const,
            command: (s: MountSpec, mnt: string) => ({ cmd: process.execPath, args: [floorServe, `${overlayOpts(s)},io`, mnt] }),
          },
        ]
      : []),
    ...(floor
      ? [
          {
            name: 'floor',
            kind: 'floor' as const,
            command: (s: MountSpec, mnt: string) => ({ cmd: process.execPath, args: [floorServe, `lowerdir=${s.lowers.join(':')}`, mnt] }),
          },
        ]
      : []),
    {
      name: 'native',
      kind: 'native',
      command: () => {
        throw new Error('the native dir is not mounted');
      },
    },
    {
      name: 'kernel overlayfs',
      kind: 'kernel',
      command: (s, mnt) => ({ cmd: 'mount', args: ['-t', 'overlay', 'overlay', '-o', overlayOpts(s), mnt] }),
      podman: { mountProgram: null },
    },
    {
      name: 'fuse-overlayfs',
      kind: 'fuse-overlayfs',
      command: (s, mnt) => ({ cmd: 'fuse-overlayfs', args: ['-o', overlayOpts(s), mnt] }),
      podman: { mountProgram: '/usr/bin/fuse-overlayfs' },
    },
    {
      name: 'unionfs-fuse',
      kind: 'unionfs',
      command: (s, mnt) => ({
        cmd: 'unionfs',
        args: [
          '-o',
          'cow,allow_other,hide_meta_files',
          [`${s.upper}=RW`, ...s.unionfsLowers.map((l) => `${l}=RO`)].join(':'),
          mnt,
        ],
      }),
    },
    layerfs('layerfs', cli),
    // the same build over FUSE-over-io_uring (run.ts turns the fuse module's enable_uring on for the run)
    ...(uringAvailable() ? [layerfs('layerfs-uring', cli, 'uring')] : []),
    ...variants.map((v) => layerfs(`layerfs ${v}`, cli, v)),
    ...baselines.map((d) => layerfs(`layerfs@${path.basename(d)}`, path.join(path.resolve(d), 'dist/src/cli/main.js'))),
  ];
}
