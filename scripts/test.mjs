#!/usr/bin/env node
// Builds, then runs every dist/test/**/*.test.js with node:test, one file at a time
// (mount tests must not overlap). Extra args are test file filters (substrings).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('test: TypeScript build failed');
  process.exit(1);
}

function walk(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const filters = process.argv.slice(2);
const files = walk(join(root, 'dist/test'), []).filter(
  (f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)),
);
if (files.length === 0) {
  console.error('test: no test files matched');
  process.exit(1);
}
// Mounts made by these tests go through a resident daemon of THIS checkout: its own runtime dir (a
// daemon already serving /run/layerfs may run another checkout's code), unless the caller chose one.
const ownRun = process.env.LAYERFS_RUN_DIR ? null : mkdtempSync(join(tmpdir(), 'layerfs-test-run-'));
const env = ownRun ? { ...process.env, LAYERFS_RUN_DIR: ownRun } : { ...process.env };
// Daemons a test starts (any runtime dir) exit soon after their last mount, not after the 5-minute default.
env.LAYERFS_DAEMON_IDLE_MS ??= '2000';
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit', cwd: root, env });
if (ownRun) stopOwnDaemons(ownRun);
process.exit(r.status ?? 1);

/** The daemons of `run` exit on their own once idle; wait for that (then kill by pid), remove the dir. */
function stopOwnDaemons(run) {
  const pids = () => readdirSync(run).filter((f) => /^daemon-.*\.pid$/.test(f)).map((f) => Number(readFileSync(join(run, f), 'utf8')))
      .filter((pid) => Number.isInteger(pid) && pid > 1);
  const alive = (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const end = Date.now() + 20_000;
  while (Date.now() < end && pids().some(alive)) spawnSync('sleep', ['0.2']);
  for (const pid of pids().filter(alive)) process.kill(pid, 'SIGKILL');
  rmSync(run, { recursive: true, force: true });
}
