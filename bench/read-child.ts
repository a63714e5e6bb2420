/**
 * Child process of the benchmark: open+read+close (fs.readFileSync) every file
 * listed in argv[2] under the root argv[3]; prints one JSON line
 * {ms, n, bytes, errors, firstError}. Only the loop is timed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const [listFile, root] = process.argv.slice(2);
if (!listFile || !root) {
  console.error('usage: read-child LIST_FILE ROOT');
  process.exit(2);
}
const paths = fs
  .readFileSync(listFile, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((p) => path.join(root, p));
let bytes = 0;
let errors = 0;
let firstError = '';
const t0 = process.hrtime.bigint();
for (const p of paths) {
  try {
    bytes += fs.readFileSync(p).length;
  } catch (e) {
    errors++;
    if (!firstError) firstError = e instanceof Error ? e.message : String(e);
  }
}
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
process.stdout.write(`${JSON.stringify({ ms, n: paths.length, bytes, errors, firstError })}\n`);
