/**
 * How a serving thread applies a mount's udba mode (engine/udba.ts) to the transport:
 * - reval: the engine re-checks directories on access; the kernel gets short timeouts (session.ts)
 *   and no cached directory listings (a listing would not notice a change in a lower branch).
 * - notify: a BranchWatcher (udba-watch.ts) over the directories the kernel knows, polled with the
 *   mount's /dev/fuse; past the watch limit, the unwatched directories as with reval, and short
 *   timeouts for what is handed out from then on.
 * The live figures go to the mount's shared counters ([2] watches, [3] watched directories,
 * [4] directories without a watch, [5] 1 once the watch limit was hit) for `layerfs info`.
 */
import type { UnionNode } from '../engine/node.js';
import { REVAL_TIMEOUT } from '../engine/udba.js';
import type { OpenedUnion } from './open-union.js';
import type { FuseOps, OpsConfig } from './ops.js';
import { BranchWatcher, type Notice } from './udba-watch.js';

export interface UdbaHooks {
  /** What FuseOps is made with. */
  config: Partial<OpsConfig>;
  /** FuseOps is made: start watching (notify). */
  start(ops: FuseOps<never, never, never>): void;
  /** The fd to poll (-1: nothing to poll). */
  readonly fd: number;
  handle(): void;
  /** The union's branch list changed: watch its branches as they are now (udba=notify). */
  rebuild(): void;
  close(): void;
}

export const UDBA_STATS_SLOTS = 6;

const NONE: UdbaHooks = { config: {}, start: () => {}, fd: -1, handle: () => {}, rebuild: () => {}, close: () => {} };

export function udbaHooks(opened: OpenedUnion, send: (items: Notice[]) => void, stats: Float64Array): UdbaHooks {
  const union = opened.engine;
  const mode = union?.options.udba;
  if (!union || !mode) return NONE;
  if (mode === 'reval') return { ...NONE, config: { dirCache: () => false } };
  let watcher: BranchWatcher | null = null;
  const count = (): void => {
    if (!watcher || stats.length < UDBA_STATS_SLOTS) return;
    stats[2] = watcher.count;
    stats[3] = watcher.dirs;
    stats[4] = watcher.unwatched.size;
    stats[5] = watcher.limitHit ? 1 : 0;
  };
  const config: Partial<OpsConfig> = {
    onNodeNew: ((n: UnionNode) => {
      if (watcher && n.isDir) {
        watcher.added(n);
        count();
      }
    }) as (n: never) => void,
    onNodeGone: ((n: UnionNode) => {
      if (watcher && n.isDir) {
        watcher.forgotten(n);
        count();
      }
    }) as (n: never) => void,
    dirCache: ((n: UnionNode) => watcher === null || !watcher.unwatched.has(n)) as (n: never) => boolean,
  };
  return {
    config,
    start(opsAny) {
      const ops = opsAny as unknown as FuseOps<UnionNode, never, never>;
      watcher = new BranchWatcher({
        changes: union.changes,
        root: union.root,
        idsFor: (n) => ops.nodes.idsFor(n),
        known: () => ops.nodes.known(),
        names: (d) => union.readdir(d).map((e) => e.name),
        namesIn: (d, bi) => union.changes.namesIn(d, bi),
        send,
        onLimit: (isUnwatched) => {
          union.revalidate(isUnwatched);
          // what is handed out from now on may sit under a directory without a watch
          const short = (v: number | undefined): number => Math.min(v ?? REVAL_TIMEOUT, REVAL_TIMEOUT);
          const live = ops.config;
          live.entryTimeout = short(live.entryTimeout);
          live.attrTimeout = short(live.attrTimeout);
          live.negativeTimeout = short(live.negativeTimeout);
        },
        onAttrib: () => ops.branchAttrsChanged(),
      });
      count();
    },
    get fd() {
      return watcher?.fd ?? -1;
    },
    handle() {
      watcher?.handle();
      count();
    },
    rebuild() {
      watcher?.rebuild();
      count();
    },
    close() {
      watcher?.close();
    },
  };
}
