/**
 * What the benchmark's child processes (stat-child, read-child) measure: the paths listed one
 * per line in the file argv[2], joined to the root argv[3]. Exits with `usage` when either is missing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export function listedPaths(usage: string): string[] {
  const [listFile, root] = process.argv.slice(2);
  if (!listFile || !root) {
    console.error(`usage: ${usage} LIST_FILE ROOT`);
    process.exit(2);
  }
  return fs
    .readFileSync(listFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((p) => path.join(root, p));
}
