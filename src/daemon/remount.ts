/**
 * The daemon's side of `mount -o remount,add:1:/x,... MNT` (and `layerfs mount -o remount,...`):
 * a mount request whose options hold `remount` changes the branches of the live mount at MNT
 * (fuse/session-branches.ts). Remounts of one mount run one after the other. A mount this daemon
 * does not serve (a foreground `layerfs mount -f`, or none) is refused with a line saying so.
 */
import { resolve } from 'node:path';
import { errnoCode } from '../errors/index.js';
import { splitOptionList } from '../engine/params.js';
import { changeMountBranches } from '../fuse/session-branches.js';
import { listMounts } from '../fuse/runtime-dir.js';
import type { Session } from '../fuse/session.js';
import type { MountRequest, Reply } from './protocol.js';

/** Whether a mount request is a remount (mount(8) passes `remount` among the options). */
export function isRemount(options: string): boolean {
  return splitOptionList(options).some((p) => p.trim() === 'remount');
}

const chains = new Map<string, Promise<unknown>>();

export async function remount(req: MountRequest, served: { session: Session } | undefined): Promise<Reply> {
  const mnt = resolve(req.cwd, req.mountpoint);
  if (!served) {
    const fg = listMounts().find((m) => m.mountpoint === mnt && m.pid !== process.pid);
    const message = fg
      ? `${mnt} is a foreground mount (pid ${fg.pid}): only mounts served by the layerfs daemon can change their branches (mount without -f)`
      : `${mnt} is not a layerfs mount point`;
    return { ok: false, code: 'EINVAL', message };
  }
  const s = served.session;
  const prev = chains.get(s.info.id) ?? Promise.resolve();
  const run = prev.then(() => changeMountBranches(s, req.options, req.cwd));
  const tail = run.catch(() => {});
  chains.set(s.info.id, tail);
  try {
    const r = await run;
    return { ok: true, id: s.info.id, pid: process.pid, ...(r.warning ? { warning: r.warning } : {}) };
  } catch (e) {
    const c = errnoCode(e);
    return { ok: false, code: c !== undefined && /^E[A-Z0-9]+$/.test(c) ? c : 'EIO', message: e instanceof Error ? e.message.split('\n')[0]! : String(e) };
  } finally {
    if (chains.get(s.info.id) === tail) chains.delete(s.info.id);
  }
}
