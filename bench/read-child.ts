/**
 * Child process of the benchmark: open+read+close (fs.readFileSync) every file
 * listed in argv[2] under the root argv[3]; prints one JSON line
 * {ms, n, bytes, errors, firstError}. Only the loop is timed.
 */
import * as fs from 'node:fs';
import { listedPaths } from './child-list.js';

const paths = listedPaths('read-child');
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
