/**
 * Child process of the benchmark (workload smallcpup): one change per path listed (one per line)
 * in the file argv[3], under the root argv[4]; argv[2] says which:
 * - `chmod`: chmodSync(path, 0o600) (a lower file: copy-up of data and metadata);
 * - `append`: open O_WRONLY|O_APPEND, write 1 byte, close (a lower file: copy-up on open);
 * - `create`: open O_WRONLY|O_CREAT|O_EXCL, write 4 KiB, close (a new name).
 * Prints one JSON line {ms, n, errors, firstError}. Only the loop is timed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const [mode, listFile, root] = process.argv.slice(2);
if ((mode !== 'chmod' && mode !== 'append' && mode !== 'create') || !listFile || !root) {
  console.error('usage: write-child chmod|append|create LIST_FILE ROOT');
  process.exit(2);
}
const paths = fs
  .readFileSync(listFile, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((p) => path.join(root, p));
const one = Buffer.from('+');
const page = Buffer.alloc(4096, 'n');
const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL } = fs.constants;
let errors = 0;
let firstError = '';
const t0 = process.hrtime.bigint();
for (const p of paths) {
  try {
    if (mode === 'chmod') fs.chmodSync(p, 0o600);
    else {
      const fd = fs.openSync(p, mode === 'append' ? O_WRONLY | O_APPEND : O_WRONLY | O_CREAT | O_EXCL, 0o644);
      try {
        fs.writeSync(fd, mode === 'append' ? one : page);
      } finally {
        fs.closeSync(fd);
      }
    }
  } catch (e) {
    errors++;
    if (!firstError) firstError = e instanceof Error ? e.message : String(e);
  }
}
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
process.stdout.write(`${JSON.stringify({ ms, n: paths.length, errors, firstError })}\n`);
