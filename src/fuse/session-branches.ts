/**
 * Live branch changes from the main thread (the daemon's remount request): the DIRs are resolved
 * here, never on the serving thread, since a path may lead into the very mount that thread serves
 * (realpath of a branch the mount covers, or a DIR inside the mount): only the main thread may
 * wait on the mount. New branches are opened here (O_PATH) and handed over as fds, after the
 * mount-point rules: a DIR that is the mount point, lies inside it, or holds it is refused.
 * Then one `branches` command to the serving thread (fuse/branch-change.ts), whose reply updates
 * the runtime dir (si_<id>/br*, mounts/<id>.json; `layerfs info` reads them).
 */
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parseBranchChanges, type ResolvedChange } from '../engine/branch-changes.js';
import { realDir } from '../engine/branch-set.js';
import type { BranchState } from '../engine/types.js';
import { O_DIRECTORY, O_PATH } from '../sys/constants.js';
import type { BranchChangeReply } from './branch-change.js';
import { MountError } from './mount-error.js';
import { writeMountInfo, type MountInfo } from './runtime-dir.js';
import type { ServingThread } from './serving-thread.js';

export interface BranchChangeRequest {
  changes: ResolvedChange[];
  reals: string[];
  fds: Array<[string, number]>;
}

let seq = 0;

/** Send one branch change to the thread serving mount `id` and wait for its reply. */
export function sendBranchChange(
  thread: ServingThread,
  id: string,
  c: BranchChangeRequest,
  replies: Map<number, (m: BranchChangeReply) => void>,
): Promise<BranchChangeReply> {
  const n = ++seq;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      replies.delete(n);
      resolve({ t: 'branches', id, seq: n, ok: false, code: 'ETIMEDOUT', message: 'the serving thread did not answer the branch change in time' });
    }, 60_000);
    replies.set(n, (m) => {
      clearTimeout(timer);
      replies.delete(n);
      resolve(m);
    });
    if (thread.exited) {
      clearTimeout(timer);
      replies.delete(n);
      for (const [, fd] of c.fds) closeQuietly(fd);
      resolve({ t: 'branches', id, seq: n, ok: false, code: 'ESHUTDOWN', message: 'the mount is no longer served' });
      return;
    }
    thread.send({ t: 'branches', id, seq: n, ...c });
  });
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* closed */
  }
}

function inside(child: string, parent: string): boolean {
  return child.startsWith(parent === '/' ? '/' : parent + '/');
}

/**
 * Change the branches of a live mount as the remount option string `options` says (relative DIRs
 * against `cwd`). Resolves with the new list (runtime dir updated) or throws a MountError with
 * the one line naming the problem; nothing changed then. Hooks (daemon/supervised-remount.ts):
 * `before` once the request is checked, just before the serving thread is asked to switch;
 * `after` as soon as it has switched, with the list it left (before anything else may fail).
 */
export async function changeMountBranches(
  s: { info: MountInfo; changeBranches(c: BranchChangeRequest): Promise<BranchChangeReply> },
  options: string,
  cwd: string,
  hooks: { before?(): void; after?(state: BranchState | undefined): void } = {},
): Promise<{ info: MountInfo; state?: BranchState; warning?: string }> {
  const info = s.info;
  const mnt = info.mountpoint;
  let changes;
  let others: string[];
  try {
    ({ changes, others } = parseBranchChanges(options, isAbsolute(cwd) ? cwd : '/'));
  } catch (e) {
    throw new MountError('EINVAL', oneLine(e));
  }
  const whole = others.find((o) => /^(dirs|br|lowerdir|upperdir|workdir)[=:]/.test(o));
  if (whole !== undefined) {
    throw new MountError('EINVAL', `remount: '${whole.split(/[=:]/)[0]}' cannot change on a live mount; change branches with add:, del:, mod:...`);
  }
  if (changes.length === 0) {
    throw new MountError('EINVAL', 'remount: nothing to change (give add:INDEX:DIR, ins:, append:DIR, prepend:DIR, del:DIR or mod:DIR=PERM)');
  }
  const fds = new Map<string, number>();
  const resolved: ResolvedChange[] = [];
  try {
    let mntDev: number | undefined;
    for (const c of changes) {
      const real = realDir(c.path);
      resolved.push({ ...c, real });
      if (c.op !== 'add' || real === null || fds.has(real)) continue;
      if (real === mnt || inside(real, mnt)) throw new MountError('EINVAL', `remount: '${c.text}': ${c.path} is ${real === mnt ? 'the mount point' : 'inside the mount'} (a branch must be a directory outside the mount)`);
      if (inside(mnt, real)) throw new MountError('EINVAL', `remount: '${c.text}': the mount point ${mnt} is inside ${c.path}`);
      const fd = openSync(real, O_PATH | O_DIRECTORY);
      fds.set(real, fd);
      mntDev ??= statSync(mnt).dev;
      if (fstatSync(fd).dev === mntDev) throw new MountError('EINVAL', `remount: '${c.text}': ${c.path} is inside the mount`);
    }
  } catch (e) {
    for (const fd of fds.values()) closeQuietly(fd);
    throw e instanceof MountError ? e : new MountError('EINVAL', `remount: ${oneLine(e)}`);
  }
  const reals = info.branches.map((b) => realDir(b.path) ?? b.path);
  hooks.before?.();
  const r = await s.changeBranches({ changes: resolved, reals, fds: [...fds] });
  if (!r.ok) throw new MountError(r.code, `remount: ${r.message.replace(/, remount$/, '')}`);
  info.branches = r.branches.map((b) => ({ path: b.path, perm: b.perm, brid: b.id }));
  hooks.after?.(r.state);
  writeMountInfo(info);
  return { info, ...(r.state ? { state: r.state } : {}), ...(r.warning ? { warning: r.warning } : {}) };
}

function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return (m.split('\n')[0] ?? m).replace(/, remount$/, '');
}
