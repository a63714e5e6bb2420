/**
 * A set of lower layers every target reads: written once in overlay on-disk
 * format (whiteout = char 0/0, opaque dir = trusted.overlay.opaque=y), which
 * kernel overlayfs, fuse-overlayfs and layerfs read; converted to unionfs-fuse's
 * format in hard-linked copies; and merged into one plain dir (the native floor).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lsetxattr, makedev, mknod } from '../../src/sys/index.js';

export interface LayerSet {
  /** Overlay format lower dirs, topmost first (overlay `lowerdir=` order). */
  lowers: string[];
  /** The same layers in unionfs-fuse format (the overlay ones when there is nothing to convert). */
  unionfsLowers: string[];
  /** The merged view in one plain directory. */
  native: string;
}

/** Where a layer hides what lies below: a whiteout (the name) or an opaque dir (its contents). */
export interface Marker {
  layer: number;
  rel: string;
  kind: 'whiteout' | 'opaque';
}

export function put(file: string, content: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

export function whiteout(layerDir: string, rel: string): void {
  fs.mkdirSync(path.dirname(path.join(layerDir, rel)), { recursive: true });
  mknod(path.join(layerDir, rel), fs.constants.S_IFCHR | 0o600, makedev(0, 0));
}

export function opaque(layerDir: string, rel: string): void {
  fs.mkdirSync(path.join(layerDir, rel), { recursive: true });
  lsetxattr(path.join(layerDir, rel), 'trusted.overlay.opaque', Buffer.from('y'), 0);
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.error?.message || `status ${r.status}`).trim()}`);
}

/**
 * unionfs-fuse hides NAME below a branch when that branch holds
 * `.unionfs-fuse/NAME_HIDDEN~` (a hidden dir hides everything under it, which is
 * how an opaque dir is expressed). The copies are hard links: no data copied.
 */
function unionfsCopies(root: string, lowers: string[], markers: Marker[]): string[] {
  if (markers.length === 0) return lowers;
  const out = lowers.map((_, i) => path.join(root, `u${i}`));
  lowers.forEach((l, i) => run('cp', ['-al', l, out[i]!]));
  for (const m of markers) {
    const dir = out[m.layer]!;
    if (m.kind === 'whiteout') fs.rmSync(path.join(dir, m.rel));
    put(path.join(dir, '.unionfs-fuse', `${m.rel}_HIDDEN~`), '');
  }
  return out;
}

/** The merged view, copied out of a read-only kernel overlay mount (or the one layer). */
function nativeCopy(root: string, lowers: string[]): string {
  const native = path.join(root, 'native');
  if (lowers.length === 1) {
    run('cp', ['-a', lowers[0]!, native]);
    return native;
  }
  const mnt = path.join(root, 'merge-mnt');
  fs.mkdirSync(mnt);
  run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lowers.join(':')}`, mnt]);
  try {
    run('cp', ['-a', `${mnt}/.`, native]);
  } finally {
    run('umount', [mnt]);
    fs.rmdirSync(mnt);
  }
  return native;
}

/** Finishes a set whose overlay format `lowers` (under `root`) are written. */
export function finishLayerSet(root: string, lowers: string[], markers: Marker[]): LayerSet {
  return { lowers, unionfsLowers: unionfsCopies(root, lowers, markers), native: nativeCopy(root, lowers) };
}

/** `n` empty layer dirs root/l0.. (topmost first). */
export function layerDirs(root: string, n: number): string[] {
  const out = Array.from({ length: n }, (_, i) => path.join(root, `l${i}`));
  for (const l of out) fs.mkdirSync(l, { recursive: true });
  return out;
}
