/** `docker diff` lines for the store's change list: `A /path`, one per line. */
import type { Change } from '../store/changes.js';

export function formatChanges(list: readonly Change[]): string {
  return list.map((c) => `${c.kind} ${c.path}\n`).join('');
}
