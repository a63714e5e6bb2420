/**
 * Mount the floor (floor-union.ts) at a mount point:
 *   node dist/bench/floor-serve.js OPTIONS MOUNTPOINT     (OPTIONS: lowerdir=... or tree=DIR)
 * returns once mounted, leaving a detached server process (its command line names the mount
 * point, so the bench finds its pid for CPU and memory) that ends when the mount is unmounted;
 * with -f as first argument it serves in the foreground instead.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startSession } from '../src/fuse/session.js';

const args = process.argv.slice(2);
const foreground = args[0] === '-f';
const [options, mnt] = foreground ? args.slice(1) : args;
if (!options || !mnt) {
  console.error('usage: floor-serve [-f] OPTIONS MOUNTPOINT');
  process.exit(2);
}

const mounted = (): boolean => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === mnt);

if (foreground) {
  const s = await startSession({ options, mountpoint: mnt, unionModule: new URL('./floor-union.js', import.meta.url).href });
  process.on('SIGTERM', () => void s.unmount(true));
  await s.done;
} else {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '-f', options, mnt], { detached: true, stdio: 'inherit' });
  let exited = false;
  child.on('exit', () => (exited = true));
  const end = Date.now() + 60_000;
  while (!mounted() && !exited && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  if (!mounted()) {
    console.error(`floor-serve: ${mnt} did not mount`);
    if (!exited) child.kill('SIGTERM');
    process.exit(1);
  }
  child.unref();
  process.exit(0);
}
