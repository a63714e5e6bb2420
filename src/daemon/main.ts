/**
 * The daemon process's entry (started detached by client.ts; `node main.js`). Exits 0 at once
 * when another daemon already holds this runtime dir and mount namespace.
 */
import { Daemon, takePidFile } from './server.js';
import { daemonPaths, idleMsFromEnv } from './paths.js';
import { rmSync } from 'node:fs';
import { ensureRunDir } from '../fuse/runtime-dir.js';
import { SupervisorLink } from './supervised.js';
import { keepSpareThreads } from '../fuse/serving-thread.js';
import { DEFAULT_THREAD_KIND } from '../fuse/session.js';

// Error stacks are never shown to clients; errno answers are hot in the serving threads.
Error.stackTraceLimit = 0;

const paths = daemonPaths();
ensureRunDir();
// Under the supervisor: it holds the pid file for us; a standby daemon waits here, loaded and
// with a serving thread started, until a dead daemon's mounts are handed to it.
const supervisor = SupervisorLink.fromEnv();
if (supervisor) keepSpareThreads(DEFAULT_THREAD_KIND);
const handover = supervisor?.waitForGo() ?? null;
if (!supervisor && !takePidFile(paths.pid)) process.exit(0);
process.title = 'layerfs daemon';
try {
  process.chdir('/');
} catch {
  /* keep the cwd */
}
const daemon = new Daemon({ paths, idleMs: idleMsFromEnv(), testHooks: process.env.LAYERFS_DAEMON_TEST_HOOKS === '1', supervisor });
// A bug on the main thread must not take every mount down: log it and keep serving.
process.on('uncaughtException', (e) => process.stderr.write(`layerfs daemon ${process.pid}: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`));
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => daemon.stop());
if (handover && handover.mounts.length > 0) await daemon.resume(handover);
try {
  await daemon.listen();
} catch (e) {
  rmSync(paths.pid, { force: true });
  process.stderr.write(`layerfs daemon ${process.pid}: cannot listen on ${paths.socket}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
await daemon.exited;
process.exit(0);
