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
import type { RemountRecord } from './supervised-remount.js';

/** Whether a mount request is a remount (mount(8) passes `remount` among the options). */
export function isRemount(options: string): boolean {
  return splitOptionList(options).some((p) => p.trim() === 'remount');
}

const chains = new Map<string, Promise<unknown>>();

/**
 * `record`: for a supervised mount, keeps the supervisor's blob in step with the branch list
 * (supervised-remount.ts): marked before the switch, the new list registered before the reply.
 */
export async function remount(req: MountRequest, served: { session: Session } | undefined, record?: RemountRecord | null): Promise<Reply> {
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
  const token = typeof req.token === 'string' && req.token !== '' ? req.token : undefined;
  const run = prev.then(async (): Promise<{ warning?: string }> => {
    // sent again by a client whose daemon died after making it: made (the successor serves it)
    if (record?.made(token)) return {};
    const at = { asked: false, switched: false };
    try {
      return await changeMountBranches(s, req.options, req.cwd, {
        before: () => {
          at.asked = true;
          record?.changing();
        },
        after: (state) => {
          at.switched = true;
          record?.changed(state, token);
        },
      });
    } catch (e) {
      if (at.asked && !at.switched) record?.unchanged();
      throw e;
    }
  });
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
