/** What the store commands (layer, container, image) share: --root, opening the store, progress. */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import { LayerStore } from '../../store/store.js';
import { resolveRoot } from '../../store/paths.js';
import { progress, type Progress } from '../progress.js';

export interface RootFlags {
  root?: string;
}

/** Adds `--root DIR` to a store command. */
export function withRoot(cmd: Command): Command {
  return cmd.option('--root <dir>', 'store directory (default $LAYERFS_ROOT or /var/lib/layerfs)');
}

export function openStore(flags: RootFlags): LayerStore {
  return LayerStore.open(resolveRoot(flags.root));
}

/** A progress bar on a TTY for reading `file` (size known), or for a stream of unknown length. */
export function fileProgress(label: string, file: string | undefined): Progress {
  let total: number | undefined;
  if (file !== undefined && file !== '-') {
    try {
      total = fs.statSync(file).size;
    } catch {
      total = undefined;
    }
  }
  return progress(label, total);
}

/** An async iterable of a file's bytes, or stdin for `-`/undefined. */
export function inputOf(file: string | undefined): AsyncIterable<Buffer> {
  if (file === undefined || file === '-') return process.stdin;
  return fs.createReadStream(file);
}

/** Layer progress for image import/export. */
export function layerProgress(label: string): { onLayer: (i: number, n: number) => void; stop: () => void } {
  const p = progress(label, 0);
  return {
    onLayer: (i, n) => {
      p.step(`${label} layer ${i + 1}/${n}`, n);
      p.update(i + 1);
    },
    stop: () => p.stop(),
  };
}
