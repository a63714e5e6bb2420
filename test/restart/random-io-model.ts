/**
 * The in-memory model the random I/O checker runs against: files as objects (an fd keeps its file
 * through renames and unlink, as a kernel inode), directories, modes and user.* xattrs, plus the
 * lower branches' starting contents (so files start below and are copied up under the workload).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface MFile {
  kind: 'file';
  data: Buffer;
  mode: number;
  xattrs: Map<string, string>;
}
export interface MDir {
  kind: 'dir';
  mode: number;
}
export type MNode = MFile | MDir;

/** Deterministic content of a lower file (no PRNG needed: a pattern keyed by name and size). */
function pattern(name: string, size: number): Buffer {
  const b = Buffer.alloc(size);
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  for (let i = 0; i < size; i++) {
    h = (h * 1103515245 + 12345) >>> 0;
    b[i] = h >>> 24;
  }
  return b;
}

/** The lower branches: lo1 is above lo2; lo1's d0/f0 hides lo2's. Sizes cross page boundaries. */
export const LOWER_SPEC: Record<'lo1' | 'lo2', Record<string, number>> = {
  lo2: { 'd0/f0': 5000, 'd0/f1': 70_000, 'd1/s0/f2': 200_000, 'f3': 4096, 'd3/s1/f5': 12_345 },
  lo1: { 'd0/f0': 9000, 'd2/f4': 100_000, 'd1/s0/f1': 300, 'd3/f0': 0 },
};

export function fillLowers(lo1: string, lo2: string): void {
  for (const [dir, files] of [[lo1, LOWER_SPEC.lo1], [lo2, LOWER_SPEC.lo2]] as const) {
    for (const [rel, size] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      writeFileSync(join(dir, rel), pattern(`${dir === lo1 ? 'lo1' : 'lo2'}/${rel}`, size), { mode: 0o644 });
    }
  }
}

/** The merged starting tree ('' is the root). */
export function initialModel(): Map<string, MNode> {
  const m = new Map<string, MNode>([['', { kind: 'dir', mode: 0o755 }]]);
  for (const layer of ['lo2', 'lo1'] as const) {
    for (const [rel, size] of Object.entries(LOWER_SPEC[layer])) {
      const parts = rel.split('/');
      for (let i = 1; i < parts.length; i++) m.set(parts.slice(0, i).join('/'), { kind: 'dir', mode: 0o755 });
      m.set(rel, { kind: 'file', data: pattern(`${layer}/${rel}`, size), mode: 0o644, xattrs: new Map() });
    }
  }
  return m;
}

export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

export function childrenOf(m: Map<string, MNode>, dir: string): string[] {
  const pre = dir === '' ? '' : dir + '/';
  return [...m.keys()].filter((k) => k !== '' && k.startsWith(pre) && !k.slice(pre.length).includes('/')).map((k) => k.slice(pre.length)).sort();
}

/** First difference of two buffers: a readable account, or null. */
export function firstDifference(expected: Buffer, actual: Buffer): string | null {
  const n = Math.min(expected.length, actual.length);
  for (let i = 0; i < n; i++) {
    if (expected[i] !== actual[i]) {
      let j = i;
      while (j < n && expected[j] !== actual[j]) j++;
      return `content differs at offset ${i} (${j - i} bytes from there; expected 0x${expected[i]!.toString(16)}, got 0x${actual[i]!.toString(16)}; sizes ${expected.length}/${actual.length})`;
    }
  }
  if (expected.length !== actual.length) return `size differs: expected ${expected.length}, got ${actual.length}`;
  return null;
}
