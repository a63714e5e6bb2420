/**
 * The input of a differential run: a stack of lower layers (overlay on-disk format, with whiteouts and
 * opaque dirs) and a sequence of operations, as plain data, with fast-check generators for both.
 * Names come from a small pool so that operations collide with the lower trees and with each other.
 */
import fc from 'fast-check';
import { chmodSync, lutimesSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeOpaque, makeWhiteout } from '../helpers/overlay.js';

/** Paths the lower trees and the operations draw from (parents first). */
export const PATHS = ['a', 'b', 'c', 'a/x', 'a/y', 'b/x', 'b/y', 'c/x', 'a/x/p', 'b/x/p', 'd'] as const;

export type LayerEntry =
  | { kind: 'file'; path: string; data: string; mode: number }
  | { kind: 'dir'; path: string; mode: number; opaque: boolean }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'whiteout'; path: string };

/** Topmost lower layer first, as in lowerdir=. */
export type LowerSpec = LayerEntry[][];

export type Op =
  | { op: 'create'; path: string; mode: number; excl: boolean; trunc: boolean }
  | { op: 'write'; path: string; offset: number; data: string }
  | { op: 'append'; path: string; data: string }
  | { op: 'truncate'; path: string; len: number }
  | { op: 'mkdir'; path: string; mode: number }
  | { op: 'rmdir'; path: string }
  | { op: 'unlink'; path: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'link'; from: string; to: string }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'utimes'; path: string; atime: number; mtime: number }
  | { op: 'setxattr'; path: string; name: string; value: string }
  | { op: 'openRename'; path: string; to: string; data: string }
  | { op: 'openUnlink'; path: string; data: string }
  | { op: 'read'; path: string }
  /** Unmount and mount again on the same layers. */
  | { op: 'remount' }
  /** Unmount; the upper becomes the topmost lower under a fresh upper; mount. */
  | { op: 'rotate' };

const path = fc.constantFrom(...PATHS);
const data = fc.constantFrom('', 'x', 'hello', 'lower-data', 'a much longer piece of content\n'.repeat(3));
const fileMode = fc.constantFrom(0o644, 0o600, 0o755, 0o444, 0o4755);
const dirMode = fc.constantFrom(0o755, 0o700, 0o777, 0o1777, 0o2755);
const linkTarget = fc.constantFrom('a', '../a', 'a/x', 'nowhere', '/etc/hostname');

const entry: fc.Arbitrary<LayerEntry> = fc.oneof(
  fc.record({ kind: fc.constant('file' as const), path, data, mode: fileMode }),
  fc.record({ kind: fc.constant('dir' as const), path, mode: dirMode, opaque: fc.boolean() }),
  fc.record({ kind: fc.constant('symlink' as const), path, target: linkTarget }),
  fc.record({ kind: fc.constant('whiteout' as const), path }),
);

export const lowerSpec: fc.Arbitrary<LowerSpec> = fc.array(fc.array(entry, { maxLength: 8 }), {
  minLength: 2,
  maxLength: 4,
});

const smallOffset = fc.constantFrom(0, 1, 3, 5, 100, 4095, 4096, 70000);

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.constantFrom({ op: 'remount' as const }, { op: 'rotate' as const }), weight: 1 },
  fc.record({ op: fc.constant('create' as const), path, mode: fileMode, excl: fc.boolean(), trunc: fc.boolean() }),
  fc.record({ op: fc.constant('write' as const), path, offset: smallOffset, data }),
  fc.record({ op: fc.constant('append' as const), path, data }),
  fc.record({ op: fc.constant('truncate' as const), path, len: smallOffset }),
  fc.record({ op: fc.constant('mkdir' as const), path, mode: dirMode }),
  fc.record({ op: fc.constant('rmdir' as const), path }),
  fc.record({ op: fc.constant('unlink' as const), path }),
  fc.record({ op: fc.constant('rename' as const), from: path, to: path }),
  fc.record({ op: fc.constant('link' as const), from: path, to: path }),
  fc.record({ op: fc.constant('symlink' as const), target: linkTarget, path }),
  fc.record({ op: fc.constant('chmod' as const), path, mode: fc.constantFrom(0o600, 0o755, 0o000, 0o2711, 0o1777) }),
  fc.record({
    op: fc.constant('utimes' as const),
    path,
    atime: fc.integer({ min: 0, max: 2_000_000_000 }),
    mtime: fc.integer({ min: 0, max: 2_000_000_000 }),
  }),
  fc.record({
    op: fc.constant('setxattr' as const),
    path,
    name: fc.constantFrom('user.a', 'user.b'),
    value: fc.constantFrom('1', 'two', ''),
  }),
  fc.record({ op: fc.constant('openRename' as const), path, to: path, data }),
  fc.record({ op: fc.constant('openUnlink' as const), path, data }),
  fc.record({ op: fc.constant('read' as const), path }),
);

export const opsArb: fc.Arbitrary<Op[]> = fc.array(opArb, { minLength: 1, maxLength: 25 });

function parentOf(p: string): string | undefined {
  const i = p.lastIndexOf('/');
  return i < 0 ? undefined : p.slice(0, i);
}

/** A layer after the building rules: path -> entry, implicit parent dirs included. */
export type Layer = Map<string, LayerEntry>;

/**
 * The first entry for a path wins; an entry is dropped when an ancestor in the same layer is not a
 * directory; missing ancestors become plain 0755 dirs.
 */
export function normalizeLayer(entries: LayerEntry[]): Layer {
  const out: Layer = new Map();
  const sorted = [...entries].sort((x, y) => x.path.split('/').length - y.path.split('/').length);
  for (const e of sorted) {
    if (out.has(e.path)) continue;
    let ok = true;
    const missing: string[] = [];
    for (let p = parentOf(e.path); p !== undefined; p = parentOf(p)) {
      const k = out.get(p);
      if (k === undefined) missing.unshift(p);
      else if (k.kind !== 'dir') ok = false;
    }
    if (!ok) continue;
    for (const m of missing) out.set(m, { kind: 'dir', path: m, mode: 0o755, opaque: false });
    out.set(e.path, e);
  }
  return out;
}

/** Layers (topmost first) that make up the merged directory `dir` ('' = root), as overlayfs looks it up. */
function mergedDirLayers(layers: Layer[], dir: string): number[] {
  let inPlay = layers.map((_l, i) => i);
  const parts = dir === '' ? [] : dir.split('/');
  for (let n = 1; n <= parts.length; n++) {
    const prefix = parts.slice(0, n).join('/');
    const next: number[] = [];
    for (const i of inPlay) {
      const e = layers[i]!.get(prefix);
      if (e === undefined) continue;
      if (e.kind !== 'dir') break;
      next.push(i);
      if (e.opaque) break;
    }
    inPlay = next;
  }
  return inPlay;
}

/**
 * Normalize every layer and drop whiteouts whose directory is not merged in the final view: kernel
 * overlayfs lists those in readdir while lookup says ENOENT (overlayfs itself never writes them).
 */
export function normalizeSpec(spec: LowerSpec): Layer[] {
  const layers = spec.map(normalizeLayer);
  layers.forEach((layer, i) => {
    for (const [p, e] of [...layer]) {
      if (e.kind !== 'whiteout') continue;
      const merged = mergedDirLayers(layers, parentOf(p) ?? '');
      if (merged.length === 1 && merged[0] === i) layer.delete(p);
    }
  });
  return layers;
}

/** Write one normalized layer under `root`. */
export function buildLayer(root: string, layer: Layer): void {
  mkdirSync(root, { recursive: true });
  const dirModes: Array<[string, number]> = [];
  const sorted = [...layer.values()].sort((x, y) => x.path.split('/').length - y.path.split('/').length);
  for (const e of sorted) {
    const abs = join(root, e.path);
    switch (e.kind) {
      case 'file':
        writeFileSync(abs, e.data);
        chmodSync(abs, e.mode);
        break;
      case 'dir':
        mkdirSync(abs);
        if (e.opaque) makeOpaque(abs);
        dirModes.push([abs, e.mode]);
        break;
      case 'symlink':
        symlinkSync(e.target, abs);
        break;
      case 'whiteout':
        makeWhiteout(abs);
        break;
    }
  }
  // Modes last, deepest first, so a 0700 dir does not stop us from filling it.
  for (const [abs, mode] of dirModes.reverse()) chmodSync(abs, mode);
  // Fixed times, deepest first (then the root), so both sides start with identical lower times.
  const byDepth = [...layer.values()].sort((x, y) => y.path.split('/').length - x.path.split('/').length);
  for (const e of byDepth) {
    if (e.kind === 'whiteout') continue;
    lutimesSync(join(root, e.path), LOWER_TIME, LOWER_TIME);
  }
  lutimesSync(root, LOWER_TIME, LOWER_TIME);
}

/** atime and mtime (seconds) of everything in the lower layers. */
export const LOWER_TIME = 1_000_000_000;

/** Build every layer of `spec` as `<dir>/<tag>-L<i>`; returns the dirs, topmost first. */
export function buildLowers(dir: string, tag: string, spec: LowerSpec): string[] {
  return normalizeSpec(spec).map((layer, i) => {
    const root = join(dir, `${tag}-L${i}`);
    buildLayer(root, layer);
    return root;
  });
}
