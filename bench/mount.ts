/**
 * Mounting and unmounting a target, and watching its FUSE daemon (CPU time,
 * peak memory). Mount commands write their output to a log file (a daemon that
 * stays in the background may keep its stdio open forever).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { MountSpec, Target } from './targets.js';

/** True when `mnt` is a mount point now (from /proc/self/mountinfo). */
export function isMounted(mnt: string): boolean {
  const info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => line.split(' ')[4] === mnt);
}

/** `arg` holds `needle` not followed by a name character (mnt-layerfs must not match mnt-layerfs-x). */
function mentions(arg: string, needle: string): boolean {
  for (let i = arg.indexOf(needle); i >= 0; i = arg.indexOf(needle, i + 1)) {
    if (!/[\w.-]/.test(arg.charAt(i + needle.length))) return true;
  }
  return false;
}

/** Pids of processes whose command line mentions `needle` (the daemons serving our unique mount dir). */
export function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').some((a) => mentions(a, needle))) out.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** USER_HZ is 100 on Linux (every architecture Node runs on). */
const CLOCK_TICK_MS = 10;

/** CPU time (user + system, ms) used so far by the processes `pids` (from /proc/PID/stat). */
export function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) start at ') '; utime, stime are 14, 15.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks * CLOCK_TICK_MS;
}

/** Peak resident set (VmHWM, MiB) summed over `pids`; undefined when none reports it. */
export function peakRssMiB(pids: number[]): number | undefined {
  let kb = 0;
  let seen = false;
  for (const pid of pids) {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) {
        kb += Number(m[1]);
        seen = true;
      }
    } catch {
      // exited meanwhile
    }
  }
  return seen ? kb / 1024 : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs the mount command and waits until `mnt` is mounted. Resolves to null on
 * success, else to a one-line reason. Never leaves a mount behind on failure.
 */
export async function mountTarget(
  t: Target,
  spec: MountSpec,
  mnt: string,
  log: string,
  timeoutMs = 30_000,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | null> {
  const { cmd, args } = t.command(spec, mnt);
  const fd = fs.openSync(log, 'w');
  let exitCode: number | null | undefined;
  let spawnError: Error | undefined;
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env });
  fs.closeSync(fd);
  child.on('error', (e) => (spawnError = e));
  child.on('exit', (code, signal) => (exitCode = code ?? (signal ? 128 : 1)));
  const deadline = Date.now() + timeoutMs;
  // Done when the command has exited (background daemons detach) and the mount is there.
  while (Date.now() < deadline) {
    if (spawnError) return `cannot run ${cmd}: ${spawnError.message}`;
    if (exitCode !== undefined) {
      if (exitCode === 0 && isMounted(mnt)) return null;
      if (exitCode !== 0) break;
    }
    await sleep(10);
  }
  const text = fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
  // The telling line: an error message rather than a stack frame or source excerpt.
  const telling = text.find((l) => /^(\w*Error\b|layerfs:|fuse-overlayfs:|mount:|unionfs)/.test(l.trim())) ?? text[text.length - 1];
  if (exitCode === undefined) {
    if (child.pid !== undefined) child.kill('SIGTERM'); // our own child, by pid
    await unmountTarget(mnt);
    return `timed out after ${timeoutMs} ms${telling ? `: ${telling.trim()}` : ''}`;
  }
  await unmountTarget(mnt);
  if (exitCode === 0) return 'mount command exited 0 but nothing is mounted';
  return `exit ${exitCode}${telling ? `: ${telling.trim()}` : ''}`;
}

/**
 * Unmounts `mnt` (lazily if plain umount fails) and waits for any daemon that
 * served it to exit; returns a note when something had to be forced.
 */
export async function unmountTarget(mnt: string): Promise<string | null> {
  let note: string | null = null;
  if (isMounted(mnt)) {
    const r = spawnSync('umount', [mnt], { encoding: 'utf8', timeout: 20_000 });
    if (isMounted(mnt)) {
      spawnSync('umount', ['-l', mnt], { encoding: 'utf8', timeout: 20_000 });
      note = `umount failed (${(r.stderr || r.error?.message || '').trim()}), detached`;
    }
  }
  // Daemons started for this mount mention its unique path in their argv.
  const deadline = Date.now() + 5_000;
  let pids = pidsMentioning(mnt);
  while (pids.length > 0 && Date.now() < deadline) {
    await sleep(20);
    pids = pidsMentioning(mnt);
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // exited meanwhile
    }
    note = `${note ? `${note}; ` : ''}daemon ${pid} still running after unmount, sent SIGTERM`;
  }
  return note;
}
