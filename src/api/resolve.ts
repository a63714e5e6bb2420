/**
 * Union paths -> engine nodes, component by component, as the kernel's path walk does:
 * symlinks are followed inside the union for every component but the last, and for the last
 * when asked; `..` goes back up the walked chain (never above the root); ELOOP after 40 links.
 */
import { FsError } from '../errors/index.js';
import { S_IFDIR, S_IFLNK, S_IFMT } from '../sys/constants.js';
import type { DirHandleLike, FileHandleLike, UnionNodeLike, UnionOps } from '../engine/types.js';

/** The engine as the API sees it (the contract, with its own node/handle types erased). */
export type Engine = UnionOps<UnionNodeLike, FileHandleLike, DirHandleLike>;

export const MAX_SYMLINKS = 40;

export interface Resolved {
  node: UnionNodeLike;
  /** Directory holding the final name (the root for the root itself). */
  parent: UnionNodeLike;
  /** Final component ('' for the root). */
  name: string;
  /** Canonical union path of the node ('/a/b'). */
  path: string;
}

interface Step {
  node: UnionNodeLike;
  name: string;
}

/** Split a union path into its components ('' and '.' dropped, '..' kept). */
export function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

export function isDirMode(mode: number): boolean {
  return (mode & S_IFMT) === S_IFDIR;
}

export class Resolver {
  constructor(private readonly engine: Engine) {}

  /**
   * Resolve `p` to a node. `followLast`: follow a symlink in the final component (stat, open)
   * or not (lstat, readlink, unlink). A trailing slash forces following and requires a dir.
   */
  resolve(p: string, followLast: boolean): Resolved {
    if (p === '') throw new FsError('ENOENT');
    const trailingSlash = /\/\.?$/.test(p) && components(p).length > 0;
    const steps = this.walk([], components(p), followLast || trailingSlash, 0);
    const top = steps[steps.length - 1];
    const root = this.engine.root;
    const node = top ? top.node : root;
    if (trailingSlash && !isDirMode(this.engine.getattr(node).mode)) throw new FsError('ENOTDIR');
    return {
      node,
      parent: steps.length >= 2 ? steps[steps.length - 2]!.node : root,
      name: top ? top.name : '',
      path: '/' + steps.map((s) => s.name).join('/'),
    };
  }

  /**
   * For create-type calls: the directory that will hold the last component (followed fully),
   * the last name (never '.'/'..'), and the existing entry of that name, if any (not followed).
   */
  resolveParent(p: string): { parent: UnionNodeLike; name: string; existing: UnionNodeLike | undefined; parentPath: string } {
    if (p === '') throw new FsError('ENOENT');
    const comps = components(p);
    const name = comps.pop();
    if (name === undefined || name === '..') throw new FsError('EEXIST'); // '/' or 'a/..' exist
    const dir = this.resolve(comps.length ? '/' + comps.join('/') + '/' : '/', true);
    let existing: UnionNodeLike | undefined;
    try {
      existing = this.engine.lookup(dir.node, name);
    } catch (e) {
      if (!(e instanceof FsError) || e.code !== 'ENOENT') throw e;
    }
    return { parent: dir.node, name, existing, parentPath: dir.path };
  }

  private walk(start: Step[], comps: string[], followLast: boolean, links: number): Step[] {
    const steps = [...start];
    const pending = [...comps];
    while (pending.length > 0) {
      const c = pending.shift()!;
      if (c === '..') {
        steps.pop();
        continue;
      }
      const cur = steps.length ? steps[steps.length - 1]!.node : this.engine.root;
      const node = this.engine.lookup(cur, c);
      const last = pending.length === 0;
      if ((!last || followLast) && (this.engine.getattr(node).mode & S_IFMT) === S_IFLNK) {
        if (++links > MAX_SYMLINKS) throw new FsError('ELOOP');
        const target = this.engine.readlink(node);
        if (target === '') throw new FsError('ENOENT');
        if (target.startsWith('/')) steps.length = 0;
        pending.unshift(...components(target));
        continue;
      }
      steps.push({ node, name: c });
    }
    return steps;
  }
}
