/**
 * A union for the daemon's fault-isolation test (loaded through the daemon's test hook): the
 * in-memory union of the transport tests, except that looking up `boom` throws a plain Error (a
 * bug in the handler: answered EIO) and looking up `crash` ends the serving thread outright.
 */
import type { OpenedUnion } from '../../src/fuse/open-union.js';
import { MemUnion, type MemNode } from '../fuse/mem-union.js';

class FaultyUnion extends MemUnion {
  override lookup(parent: MemNode, name: string): MemNode {
    if (name === 'boom') throw new Error('injected bug in lookup');
    if (name === 'crash') process.exit(7); // in a worker thread: ends that thread only
    return super.lookup(parent, name);
  }
}

export function openUnion(_options: string, _cwd: string): OpenedUnion {
  const union = new FaultyUnion();
  return { union, branches: [{ path: '/mem', perm: 'rw' }], xiPath: '/mem/.xino', close: () => union.close() };
}
