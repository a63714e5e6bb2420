/**
 * Child process of the benchmark (never the FUSE daemon): lstat every path
 * listed (one per line) in the file argv[2], under the root argv[3], and print
 * one JSON line {ms, n, ok, enoent, errors, firstError}. Only the loop is timed.
 */
import * as fs from 'node:fs';
import { listedPaths } from './child-list.js';

const paths = listedPaths('stat-child');
let ok = 0;
let enoent = 0;
let errors = 0;
let firstError = '';
const t0 = process.hrtime.bigint();
for (const p of paths) {
  try {
    if (fs.lstatSync(p, { throwIfNoEntry: false })) ok++;
    else enoent++;
  } catch (e) {
    errors++;
    if (!firstError) firstError = e instanceof Error ? e.message : String(e);
  }
}
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
process.stdout.write(`${JSON.stringify({ ms, n: paths.length, ok, enoent, errors, firstError })}\n`);
