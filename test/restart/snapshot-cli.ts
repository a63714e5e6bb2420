/**
 * `node snapshot-cli.js DIR [IGNORE_JSON]`: the fs-snapshot of DIR (names, types, modes, owners, sizes,
 * sha256, symlink targets, user.* xattrs; no times) as JSON entries on stdout. A process of its own so
 * that a hung mount hangs it, not the test (kill-loop.ts runs it under a hard timeout).
 * IGNORE_JSON: relative paths left out (with everything under them).
 */
import { snapshot } from '../helpers/fs-snapshot.js';

const dir = process.argv[2];
if (dir === undefined) {
  console.error('snapshot-cli: usage: snapshot-cli.js DIR [IGNORE_JSON]');
  process.exit(2);
}
const ignore = JSON.parse(process.argv[3] ?? '[]') as string[];
const snap = snapshot(dir);
const keep = [...snap].filter(([p]) => !ignore.some((i) => p === i || p.startsWith(i + '/')));
process.stdout.write(JSON.stringify(keep));
