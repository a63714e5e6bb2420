/**
 * Memory of what serves many mounts: the resident layerfs daemon of a runtime dir (one process),
 * or every FUSE process whose command line names one of the mount points (fuse-overlayfs: one per
 * mount). RSS counts shared pages in each process; PSS divides them among the processes sharing
 * them (the fair sum over 100 processes).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pidsMentioning } from './mount.js';

export interface Memory {
  pids: number;
  /** Sum of VmRSS, MB (10^6 bytes). */
  rssMB: number;
  /** Sum of Pss (smaps_rollup), MB. */
  pssMB: number;
}

function kb(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

export function memoryOf(pids: number[]): Memory {
  let rss = 0;
  let pss = 0;
  let n = 0;
  for (const pid of pids) {
    try {
      rss += kb(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS');
      pss += kb(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss');
      n++;
    } catch {
      // exited meanwhile
    }
  }
  return { pids: n, rssMB: (rss * 1024) / 1e6, pssMB: (pss * 1024) / 1e6 };
}

/** The pid of the resident daemon of runtime dir `run` (from its pid file), or undefined. */
export function daemonPid(run: string): number | undefined {
  try {
    const f = fs.readdirSync(run).find((n) => /^daemon-.*\.pid$/.test(n));
    if (!f) return undefined;
    const pid = Number(fs.readFileSync(path.join(run, f), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function daemonMemory(run: string): Memory {
  const pid = daemonPid(run);
  return memoryOf(pid === undefined ? [] : [pid]);
}

/** Memory summed over the processes naming any of `mnts` in their command line. */
export function processMemory(mnts: string[]): Memory {
  const pids = new Set<number>();
  for (const m of mnts) for (const p of pidsMentioning(m)) pids.add(p);
  return memoryOf([...pids]);
}
