/**
 * Introspection like AUFS's /sys/fs/aufs/si_<id>/: for each live mount,
 *   <run>/si_<id>/br0..brN   `/abs/path=rw|ro|rr[+attr]`
 *   <run>/si_<id>/brid0..N   branch ids (64, 65, ...)
 *   <run>/si_<id>/xi_path    the inode table path
 * so `cat <run>/si_*\/*` prints what AUFS prints. Everything else about the mount (mount point,
 * pid, options) lives in <run>/mounts/<id>.json, out of the si_ dir. <run> is /run/layerfs, or
 * $LAYERFS_RUN_DIR. Removed on unmount.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '../sys/process.js';

export interface BranchInfo {
  path: string;
  /** `rw`, `ro`, `rr`, with attributes: `ro+wh`. */
  perm: string;
  brid: number;
}

export interface MountInfo {
  id: string;
  mountpoint: string;
  source: string;
  pid: number;
  options: string;
  branches: BranchInfo[];
  xiPath: string;
  startedAt: string;
}

/** First branch id, as AUFS numbers them. */
export const FIRST_BRID = 64;

export function runDir(): string {
  return process.env.LAYERFS_RUN_DIR || '/run/layerfs';
}

export function newMountId(): string {
  return randomBytes(8).toString('hex');
}

export function siDir(id: string): string {
  return join(runDir(), `si_${id}`);
}

function metaPath(id: string): string {
  return join(runDir(), 'mounts', `${id}.json`);
}

/** Path of a mount's daemon log (background mounts write their stderr there). */
export function logPath(id: string): string {
  return join(runDir(), 'mounts', `${id}.log`);
}

export function ensureRunDir(): void {
  mkdirSync(join(runDir(), 'mounts'), { recursive: true, mode: 0o755 });
}

/** The lines `cat si_<id>/*` prints, in that order. */
export function siLines(info: MountInfo): string[] {
  return [...info.branches.map((b) => `${b.path}=${b.perm}`), ...info.branches.map((b) => `${b.brid}`), info.xiPath];
}

/** Publish a mount (written to a temp dir, then renamed into place). */
export function writeMountInfo(info: MountInfo): void {
  ensureRunDir();
  const tmp = join(runDir(), `.tmp_${info.id}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { mode: 0o755 });
  info.branches.forEach((b, i) => writeFileSync(join(tmp, `br${i}`), `${b.path}=${b.perm}\n`));
  info.branches.forEach((b, i) => writeFileSync(join(tmp, `brid${i}`), `${b.brid}\n`));
  writeFileSync(join(tmp, 'xi_path'), `${info.xiPath}\n`);
  writeFileSync(metaPath(info.id), JSON.stringify(info, null, 2) + '\n');
  rmSync(siDir(info.id), { recursive: true, force: true });
  renameSync(tmp, siDir(info.id));
}

export function removeMountInfo(id: string, keepLog = false): void {
  rmSync(siDir(id), { recursive: true, force: true });
  rmSync(metaPath(id), { force: true });
  if (!keepLog) rmSync(logPath(id), { force: true });
}

/** Live mounts (entries whose daemon is gone are cleaned up), ordered by start time. */
export function listMounts(): MountInfo[] {
  let names: string[];
  try {
    names = readdirSync(join(runDir(), 'mounts'));
  } catch {
    return [];
  }
  const out: MountInfo[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    let info: MountInfo;
    try {
      info = JSON.parse(readFileSync(join(runDir(), 'mounts', n), 'utf8')) as MountInfo;
    } catch {
      continue;
    }
    if (!processAlive(info.pid)) {
      removeMountInfo(info.id, true);
      continue;
    }
    out.push(info);
  }
  return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

/** The live mount at `mountpoint` (absolute, resolved), if any. */
export function findMount(mountpoint: string): MountInfo | undefined {
  return listMounts().find((m) => m.mountpoint === mountpoint);
}
