/**
 * Live branch changes, as AUFS's remount options (fs/aufs/opts.c): a remount's option string names
 * changes to the branch list of a live union, applied in the order given:
 *   add:INDEX:DIR[=PERM]   (ins:INDEX:DIR[=PERM] the same)  DIR becomes branch INDEX (0 = topmost)
 *   append:DIR[=PERM]      DIR becomes the bottom branch;  prepend:DIR[=PERM]: the topmost
 *   del:DIR                the branch DIR leaves the union
 *   mod:DIR=PERM           the branch DIR gets permission PERM (rw, ro, rr, with +ATTR)
 * A new branch without =PERM is `ro` (AUFS's default for every branch but a writable first one).
 *
 * Three steps, so a bad piece anywhere changes nothing:
 * 1. parseBranchChanges: the option string -> changes (syntax: index, permission), no filesystem;
 * 2. the caller resolves each DIR (realpath; and, in the daemon, its mount-point rules and the
 *    O_PATH fd of a new branch) into `real` (null: missing);
 * 3. planBranchChanges: the changes applied to the current list, every rule checked (not a branch,
 *    already a branch, nesting, the rw rules, the last writable branch of a rw mount) -> the new
 *    list, each entry saying which current branch it was (or none). Only then does
 *    engine/branch-set.ts touch the union.
 */
import * as path from 'node:path';
import { FsError } from '../errors/index.js';
import { parseBranchElement, splitOptionList } from './params.js';
import type { BranchPerm } from './types.js';
import { rwNotTopmost } from './validate.js';

export type BranchChange =
  | { op: 'add'; index: number | 'end'; path: string; perm?: BranchPerm; attrs: string[]; text: string }
  | { op: 'del'; path: string; text: string }
  | { op: 'mod'; path: string; perm: BranchPerm; attrs: string[]; text: string };

/** A change with its DIR resolved (realpath; null: no such directory). */
export type ResolvedChange = BranchChange & { real: string | null };

/** A branch as the planner sees it. */
export interface BranchEntry {
  path: string;
  perm: BranchPerm;
  attrs: readonly string[];
  /** realpath of the branch root. */
  real: string;
}

export interface PlannedBranch extends BranchEntry {
  /** Index of this branch in the current list, or -1 for a new one. */
  from: number;
  /** The change (text) that added it, for messages. */
  addedBy?: string;
}

export interface BranchPlan {
  branches: PlannedBranch[];
  /** Current indices that leave the union. */
  removed: number[];
}

const CHANGE_RE = /^(add|ins|append|prepend|del|mod):/;

function bad(code: string, detail: string): FsError {
  return new FsError(code, 'remount', undefined, undefined, detail);
}

/** Whether an option piece is a branch change (`add:`, `del:`, ...). */
export function isBranchChange(piece: string): boolean {
  return CHANGE_RE.test(piece);
}

const PERM_WORD = /^(rw|ro|rr)((?:\+[a-z0-9_]+)*)$/;

/** `DIR[=PERM]` of one piece: path (resolved against cwd) and permission, or a one-line error. */
function dirAndPerm(text: string, body: string, cwd: string, needPerm: boolean): { path: string; perm?: BranchPerm; attrs: string[] } {
  const el = parseBranchElement(body);
  if (el.perm === undefined) {
    // an `=` whose right side is not a permission: a misspelt one, not part of the name
    const eq = body.lastIndexOf('=');
    if (eq > 0 && body[eq - 1] !== '\\' && !PERM_WORD.test(body.slice(eq + 1))) {
      throw bad('EINVAL', `unknown branch permission '${body.slice(eq + 1)}' in '${text}' (rw, ro or rr, with +ATTR)`);
    }
    if (needPerm) throw bad('EINVAL', `'${text}' needs a permission (mod:DIR=rw|ro|rr)`);
  }
  if (el.path === '') throw bad('EINVAL', `'${text}' names no directory`);
  return { path: path.resolve(cwd, el.path), ...(el.perm !== undefined ? { perm: el.perm } : {}), attrs: el.attrs };
}

/**
 * The branch changes of a remount option string (every other piece returned in `others`, in order).
 * Throws EINVAL naming the first malformed piece.
 */
export function parseBranchChanges(options: string, cwd: string): { changes: BranchChange[]; others: string[] } {
  const changes: BranchChange[] = [];
  const others: string[] = [];
  for (const text of splitOptionList(options)) {
    const m = CHANGE_RE.exec(text);
    if (!m) {
      if (text !== '') others.push(text);
      continue;
    }
    const op = m[1]!;
    const rest = text.slice(m[0].length);
    if (op === 'add' || op === 'ins') {
      const colon = rest.indexOf(':');
      const idx = colon < 0 ? '' : rest.slice(0, colon);
      if (!/^[0-9]+$/.test(idx)) throw bad('EINVAL', `'${text}' needs a branch index (${op}:INDEX:DIR[=PERM])`);
      const d = dirAndPerm(text, rest.slice(colon + 1), cwd, false);
      changes.push({ op: 'add', index: Number(idx), text, ...d });
    } else if (op === 'append' || op === 'prepend') {
      const d = dirAndPerm(text, rest, cwd, false);
      changes.push({ op: 'add', index: op === 'append' ? 'end' : 0, text, ...d });
    } else if (op === 'del') {
      if (rest === '') throw bad('EINVAL', `'${text}' names no directory`);
      changes.push({ op: 'del', path: path.resolve(cwd, rest.replace(/\\([,:\\])/g, '$1')), text });
    } else {
      const d = dirAndPerm(text, rest, cwd, true);
      changes.push({ op: 'mod', path: d.path, perm: d.perm!, attrs: d.attrs, text });
    }
  }
  return { changes, others };
}

function inside(child: string, parent: string): boolean {
  return child.startsWith(parent === '/' ? '/' : parent + '/');
}

/**
 * The branch list after `changes` (applied in order to `current`). `mountRw`: the mount is not
 * read-only, so a union that has a writable branch must keep one (AUFS refuses to remove the last
 * writable branch of a rw mount). Throws (EINVAL, ENOENT, ENOTDIR) naming the first bad piece; the
 * union is not touched here.
 */
export function planBranchChanges(current: readonly BranchEntry[], changes: readonly ResolvedChange[], mountRw: boolean): BranchPlan {
  if (changes.length === 0) throw bad('EINVAL', 'nothing to change (give add:, ins:, append:, prepend:, del: or mod:)');
  const list: PlannedBranch[] = current.map((b, i) => ({ ...b, attrs: [...b.attrs], from: i }));
  const find = (c: ResolvedChange): number => {
    const i = list.findIndex((b) => b.path === c.path || (c.real !== null && b.real === c.real));
    if (i < 0) throw bad('EINVAL', `'${c.text}': ${c.path} is not a branch of this mount`);
    return i;
  };
  for (const c of changes) {
    if (c.op === 'add') {
      const at = c.index === 'end' ? list.length : c.index;
      if (at > list.length) throw bad('EINVAL', `'${c.text}': branch index ${at} is out of range (0..${list.length})`);
      if (c.real === null) throw bad('ENOENT', `'${c.text}': ${c.path} does not exist or is not a directory`);
      const real = c.real;
      const same = list.findIndex((b) => b.real === real || b.path === c.path);
      if (same >= 0) throw bad('EINVAL', `'${c.text}': ${c.path} is already branch ${same}`);
      for (let j = 0; j < list.length; j++) {
        const o = list[j]!;
        if (inside(real, o.real)) throw bad('EINVAL', `'${c.text}': ${c.path} is inside branch ${j} (${o.path})`);
        if (inside(o.real, real)) throw bad('EINVAL', `'${c.text}': branch ${j} (${o.path}) is inside ${c.path}`);
      }
      list.splice(at, 0, { path: c.path, perm: c.perm ?? 'ro', attrs: c.attrs, real, from: -1, addedBy: c.text });
    } else if (c.op === 'del') {
      const i = find(c);
      if (list.length === 1) throw bad('EINVAL', `'${c.text}': cannot delete the only branch`);
      list.splice(i, 1);
    } else {
      const i = find(c);
      list[i] = { ...list[i]!, perm: c.perm, attrs: c.attrs };
    }
  }
  // the union's rules on writable branches (as engine/validate.ts at mount time)
  const misplaced = rwNotTopmost(list.map((b) => b.perm));
  if (misplaced) throw bad('EINVAL', `${misplaced.rule} (${list[misplaced.index]!.path} would be branch ${misplaced.index})`);
  if (mountRw && !list.some((b) => b.perm === 'rw') && current.some((b) => b.perm === 'rw')) {
    throw bad('EINVAL', 'the change leaves no writable branch on a read-write mount (keep one rw branch; a mount made with ro may drop them all)');
  }
  const kept = new Set(list.map((b) => b.from));
  const removed = current.map((_, i) => i).filter((i) => !kept.has(i));
  return { branches: list, removed };
}
