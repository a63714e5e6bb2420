/**
 * `layerfs tree --dirs=SPEC [PATH]`: the merged tree of a union, printed as tree(1) prints it,
 * read in-process through the engine (nothing mounted, nothing written: the union is opened
 * read-only). `--origin` appends the branch each entry comes from (for directories, every
 * branch that merges into it).
 */
import { lstatSync, promises as fsp } from 'node:fs';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import type { Dirent, UnionFS } from '../../api/index.js';
import { parseOptions, type UnionOptions } from '../../engine/index.js';
import { OPQ, OVL_OPAQUE, USER_MARKERS, isOpaqueValue, isOverlayWhiteout } from '../../format/index.js';
import { tryLgetxattr } from '../../sys/index.js';
import { collect, unionSpecString, type UnionSpecArgs } from '../program.js';

interface TreeOpts extends UnionSpecArgs {
  origin?: boolean;
  all?: boolean;
}

/** The union's options with every branch read-only, so looking never writes to a branch. */
export function readOnlyOptions(o: UnionOptions): UnionOptions {
  const branches = o.branches.map((b) =>
    b.perm === 'rw' ? { path: b.path, perm: 'ro' as const, attrs: b.attrs.includes('wh') ? b.attrs : [...b.attrs, 'wh'] } : b,
  );
  return { branches, whiteout: o.whiteout, dirRename: o.dirRename, extra: {} };
}

function isDirAt(p: string): 'dir' | 'other' | 'none' {
  try {
    return lstatSync(p).isDirectory() ? 'dir' : 'other';
  } catch {
    return 'none';
  }
}

function overlayOpaque(p: string): boolean {
  try {
    return isOpaqueValue(tryLgetxattr(p, OVL_OPAQUE)) || isOpaqueValue(tryLgetxattr(p, USER_MARKERS.opaque));
  } catch {
    return false; // no xattrs on this filesystem
  }
}

/** Branch indexes (topmost first) an entry at `rel` comes from: the topmost; for a dir, all merged. */
export function originOf(branchPaths: readonly string[], rel: readonly string[]): number[] {
  const out: number[] = [];
  outer: for (let i = 0; i < branchPaths.length; i++) {
    let p = branchPaths[i]!;
    for (let k = 0; k < rel.length - 1; k++) {
      p = join(p, rel[k]!);
      if (isDirAt(p) !== 'dir') continue outer;
    }
    const full = join(p, rel[rel.length - 1] ?? '');
    let st;
    try {
      st = lstatSync(full);
    } catch {
      continue;
    }
    if (isOverlayWhiteout(st)) continue;
    out.push(i);
    if (!st.isDirectory()) break;
    if (isDirAt(join(full, OPQ)) !== 'none' || overlayOpaque(full)) break;
  }
  return out;
}

function branchLabels(paths: readonly string[]): string[] {
  const names = paths.map((p) => basename(p) || p);
  return names.map((n, i) => (names.indexOf(n) !== names.lastIndexOf(n) ? paths[i]! : n));
}

/** What renderTree needs to read: a union (unionTreeFs) or host directories (hostTreeFs). */
export interface TreeFs {
  list(dir: string): Promise<Array<{ name: string; isDirectory(): boolean; isSymbolicLink(): boolean }>>;
  readlink(p: string): Promise<string>;
  /** Follows symlinks; false when the target is missing. */
  isDir(p: string): Promise<boolean>;
}

export function unionTreeFs(ufs: UnionFS): TreeFs {
  return {
    list: async (dir) => (await ufs.readdir(dir, { withFileTypes: true })) as Dirent[],
    readlink: async (p) => String(await ufs.readlink(p)),
    isDir: async (p) => (await ufs.stat(p).catch(() => null))?.isDirectory() ?? false,
  };
}

export function hostTreeFs(): TreeFs {
  return {
    list: (dir) => fsp.readdir(dir, { withFileTypes: true }),
    readlink: (p) => fsp.readlink(p),
    isDir: async (p) => (await fsp.stat(p).catch(() => null))?.isDirectory() ?? false,
  };
}

/** tree(1)'s continuation line in UTF-8: a vertical bar, two no-break spaces, a space. */
const VERTICAL = '\u2502\u00a0\u00a0 ';

function byName(a: { name: string }, b: { name: string }): number {
  return Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
}

/**
 * Render the tree under `start` (first line `label`) byte for byte as tree(1) draws it in a UTF-8
 * locale (continuation lines are `│` + two no-break spaces + a space): names sorted bytewise, dot
 * names hidden unless `all`, symlinks as `name -> target` (counted as directories when they point
 * to one, never descended), and the closing `N directories, M files` (the start not counted).
 * `origin` (union only): branch paths, topmost first, to label each entry with its branch.
 */
export async function renderTree(
  tfs: TreeFs,
  start: string,
  label: string,
  opts: { all?: boolean; origin?: { paths: readonly string[] } } = {},
): Promise<string> {
  const lines: string[] = [label];
  let dirs = 0;
  let files = 0;
  const labels = opts.origin ? branchLabels(opts.origin.paths) : [];
  const suffix = (rel: string[]): string => {
    if (!opts.origin) return '';
    const o = originOf(opts.origin.paths, rel);
    return `  [${o.map((i) => labels[i]).join(', ')}]`;
  };
  const walk = async (dir: string, rel: string[], prefix: string): Promise<void> => {
    let entries = await tfs.list(dir);
    if (!opts.all) entries = entries.filter((e) => !e.name.startsWith('.'));
    entries.sort(byName);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const last = i === entries.length - 1;
      const p = dir.endsWith('/') ? `${dir}${e.name}` : `${dir}/${e.name}`;
      const r = [...rel, e.name];
      let text = e.name;
      let isDir = e.isDirectory();
      if (e.isSymbolicLink()) {
        text += ` -> ${await tfs.readlink(p)}`;
        isDir = await tfs.isDir(p);
      }
      lines.push(`${prefix}${last ? '└── ' : '├── '}${text}${suffix(r)}`);
      if (isDir) dirs++;
      else files++;
      if (e.isDirectory()) await walk(p, r, prefix + (last ? '    ' : VERTICAL));
    }
  };
  const startRel = start.split('/').filter((c) => c !== '' && c !== '.');
  await walk(start, startRel, '');
  lines.push('', `${dirs} ${dirs === 1 ? 'directory' : 'directories'}, ${files} ${files === 1 ? 'file' : 'files'}`);
  return lines.join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('tree')
    .description('print the merged tree of a union, like tree(1), without mounting it')
    .argument('[path]', 'directory inside the union (default: its root)')
    .option('--dirs <spec>', 'branches, as in the dirs= mount option: A=rw:B=ro:C')
    .option('-o, --options <opts>', 'mount options (dirs=... or lowerdir=...,upperdir=...)', collect)
    .option('--origin', 'show which branch each entry comes from')
    .option('-a, --all', 'also list names starting with a dot')
    .action(async (path: string | undefined, opts: TreeOpts) => {
      const parsed = parseOptions(unionSpecString('tree', opts));
      const { UnionFS } = await import('../../api/index.js'); // loaded on use: keeps `layerfs --help` light
      const ufs = new UnionFS(readOnlyOptions(parsed));
      try {
        const label = path ?? '.';
        const startPath = path === undefined ? '/' : path.startsWith('/') ? path : `/${path}`;
        const origin = opts.origin ? { paths: parsed.branches.map((b) => b.path) } : undefined;
        process.stdout.write(await renderTree(unionTreeFs(ufs), startPath, label, { all: opts.all ?? false, ...(origin ? { origin } : {}) }));
      } finally {
        await ufs.close();
      }
    });
}
