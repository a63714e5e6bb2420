/** SIGTERM/SIGINT/SIGHUP end a mount: unmount lazily; the session then ends by itself (ENODEV). */
import type { Session } from './session.js';

export function unmountOnSignals(s: Session): void {
  let asked = false;
  const stop = (): void => {
    if (asked) return;
    asked = true;
    s.unmount(true).catch((e: unknown) => process.stderr.write(`layerfs: umount ${s.info.mountpoint}: ${(e as Error).message}\n`));
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, stop);
}
