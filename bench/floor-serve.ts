/**
 * Serve the floor (floor-union.ts) at a mount point until it is unmounted:
 *   node dist/bench/floor-serve.js TREE_DIR MOUNTPOINT
 * The process is the whole daemon, so its CPU time is the floor's per-workload cost.
 */
import { startSession } from '../src/fuse/session.js';

const [tree, mnt] = process.argv.slice(2);
if (!tree || !mnt) {
  console.error('usage: floor-serve TREE_DIR MOUNTPOINT');
  process.exit(2);
}
const s = await startSession({ options: `tree=${tree}`, mountpoint: mnt, unionModule: new URL('./floor-union.js', import.meta.url).href });
process.on('SIGTERM', () => void s.unmount(true));
await s.done;
