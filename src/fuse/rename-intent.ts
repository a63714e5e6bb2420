/**
 * A rename's ids across a daemon crash. Before the engine renames, ops.rename journals its intent
 * (node-journal.ts MOVE records: the source's old name, the ids that get the new name, the ids of
 * the replaced target); after it, the outcome (NAME / DROP records), which supersedes the intent.
 * A daemon that finds an intent with no outcome died inside the rename: whether the rename was
 * done is read from the disk (the source's old name is gone once it is: a serving thread handles
 * one request at a time, so nothing else made that name since), and the journal's names are set
 * to match: done -> the moved ids have the new name, the replaced ids are gone; not done -> all
 * keep their names. Without this an id of the replaced target resolved to the moved node and the
 * moved ids to nothing (or, before the rename, the reverse).
 */
import { isCode } from '../errors/index.js';
import { ROOT_ID } from './abi.js';
import { MoveKind, type JournalState } from './node-journal.js';
import type { OpsJournal } from './restore.js';

/** Journal a rename's intent (before the engine renames; not for RENAME_EXCHANGE: no name goes). */
export function intendRename(j: OpsJournal, olddir: number, oldName: string, newdir: number, newName: string, moved: number[], replaced: number[]): void {
  j.moving?.(MoveKind.SOURCE, 0, olddir, oldName);
  for (const id of moved) j.moving?.(MoveKind.MOVED, id, newdir, newName);
  for (const id of replaced) j.moving?.(MoveKind.REPLACED, id, 0, '');
}

/**
 * Apply the pending intent in `state` (clears it) and journal its outcome in `j`: true when the
 * rename was found done, false when not, null when there was none (or nothing to judge by).
 */
export function settleMoves<N>(state: JournalState, root: N, lookup: (parent: N, name: string) => N, j: OpsJournal | null): boolean | null {
  if (state.moves.length === 0) return null;
  const moves = state.moves;
  const r = judge(state, root, lookup);
  if (r === true && j !== null) {
    // the journal this daemon started (compacted before the judgement) must say the same: killed
    // before it journals anything else, the next daemon finds the names as they are now
    for (const m of moves) if (m.kind === MoveKind.REPLACED) j.dropped(m.id);
    for (const m of moves) if (m.kind === MoveKind.MOVED) j.named(m.id, m.parent, m.name);
  }
  j?.moved?.();
  return r;
}

function judge<N>(state: JournalState, root: N, lookup: (parent: N, name: string) => N): boolean | null {
  const moves = state.moves;
  state.moves = [];
  const src = moves.find((m) => m.kind === MoveKind.SOURCE);
  if (src === undefined) return null;
  const walk = (id: number, depth: number): N | undefined => {
    if (id === ROOT_ID) return root;
    const e = state.names.get(id);
    if (e === undefined || depth > 4096) return undefined;
    const p = walk(e.parent, depth + 1);
    if (p === undefined) return undefined;
    try {
      return lookup(p, e.name);
    } catch {
      return undefined;
    }
  };
  const dir = walk(src.parent, 0);
  if (dir === undefined) return null; // the old parent is gone: nothing to judge by, names stay
  let done: boolean;
  try {
    lookup(dir, src.name);
    done = false;
  } catch (e) {
    if (!isCode(e, 'ENOENT')) return null;
    done = true;
  }
  if (!done) return false;
  for (const m of moves) {
    if (m.kind === MoveKind.REPLACED) state.names.delete(m.id);
  }
  for (const m of moves) {
    if (m.kind === MoveKind.MOVED) state.names.set(m.id, { parent: m.parent, name: m.name });
  }
  return true;
}
