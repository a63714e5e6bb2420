/**
 * The background mount daemon: `node daemon.js '<json SessionParams>'`, started detached by
 * startMount() with a readiness pipe as fd 3. It mounts, writes one JSON line to fd 3
 * (`{"ok":true,"id":..,"pid":..}` or `{"ok":false,"code":..,"message":..}`), closes it, and serves
 * until the filesystem is unmounted (umount from anywhere, or SIGTERM/SIGINT/SIGHUP here, which
 * unmount lazily), then removes its runtime files and exits.
 */
import { closeSync, writeSync } from 'node:fs';
import { startSession, type Session, type SessionParams } from './session.js';
import { unmountOnSignals } from './daemon-signals.js';

const READY_FD = 3;

function ready(msg: Record<string, unknown>): void {
  try {
    writeSync(READY_FD, JSON.stringify(msg) + '\n');
    closeSync(READY_FD);
  } catch {
    /* the parent is gone; keep serving */
  }
}

async function main(): Promise<void> {
  const params = JSON.parse(process.argv[2] ?? '{}') as SessionParams;
  let s: Session;
  try {
    s = await startSession(params);
  } catch (e) {
    const code = typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'EIO';
    ready({ ok: false, code, message: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  }
  process.title = `layerfs ${s.info.mountpoint}`;
  unmountOnSignals(s);
  ready({ ok: true, id: s.info.id, pid: process.pid });
  const r = await s.done;
  if (r.error) process.stderr.write(`layerfs: ${s.info.mountpoint}: serving stopped: ${r.error}\n`);
  process.exit(r.error ? 1 : 0);
}

await main();
