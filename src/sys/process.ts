/** Whether a process (a lock holder, a mount's server, a daemon) still runs. */
import { existsSync, readFileSync } from 'node:fs';
import { isCode } from '../errors/index.js';

/**
 * True when process `pid` runs: it exists (kill(pid, 0) succeeds, or fails with EPERM: it is
 * someone else's) and is not a zombie waiting for its reaper. Not a positive integer: false.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if (!isCode(e, 'EPERM')) return false;
  }
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // gone since kill(2) answered, unless there is no /proc to ask: then kill's word stands
    return !existsSync('/proc/self/stat');
  }
  // `PID (COMM) STATE ...`: COMM may hold spaces and parentheses, the state follows the last ')'
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state !== 'Z' && state !== 'X';
}
