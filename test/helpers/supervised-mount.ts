/**
 * A scratch dir for one supervised mount made through the CLI (README "Surviving a daemon crash"):
 * its own runtime dir (so its own daemon and supervisor), the CLI with that environment, the
 * serving daemon's pid, kill -9 of it waiting for the next daemon, and fds the test holds on the
 * mount, closed before the mount is torn down.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN, forceUnmount, pidAlive, stopDaemons, waitFor } from './mount.js';

/** `dirs` (relative to the scratch root) are made beside `mnt` and `run`; `extraEnv` adds to the CLI's environment. */
export function supervisedScratch(
  t: { after(fn: () => Promise<void> | void): void },
  prefix: string,
  dirs: string[],
  extraEnv: (root: string) => NodeJS.ProcessEnv = () => ({}),
) {
  const root = realpathSync(mkdtempSync(join(tmpdir(), `layerfs-${prefix}-`)));
  const run = join(root, 'run');
  const mnt = join(root, 'mnt');
  for (const d of [...dirs, 'mnt']) mkdirSync(join(root, d), { recursive: true });
  const env = { ...process.env, LAYERFS_RUN_DIR: run, LAYERFS_DAEMON_IDLE_MS: '300', ...extraEnv(root) };
  let held: number[] = [];
  const closeHeld = (): void => {
    for (const fd of held) closeSync(fd);
    held = [];
  };
  t.after(async () => {
    for (const fd of held) {
      try {
        closeSync(fd);
      } catch {
        /* the mount is gone */
      }
    }
    forceUnmount(mnt);
    await stopDaemons(run);
    rmSync(root, { recursive: true, force: true });
  });
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI_MAIN, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  const daemonPid = (): number => {
    const f = readdirSync(run).find((x) => /^daemon-\d+\.pid$/.test(x));
    return f ? Number(readFileSync(join(run, f), 'utf8').trim()) : 0;
  };
  /** kill -9 of the serving daemon; resolves once the next one serves. */
  const killAndWait = async (timeoutMs = 10_000): Promise<void> => {
    const old = daemonPid();
    assert.ok(old > 0 && pidAlive(old), 'a serving daemon runs');
    process.kill(old, 'SIGKILL');
    assert.ok(await waitFor(() => daemonPid() !== old && pidAlive(daemonPid()), timeoutMs), 'a new daemon serves');
  };
  return {
    root,
    run,
    mnt,
    env,
    cli,
    daemonPid,
    killAndWait,
    /** Fds on the mount: closed by `closeHeld`, or after the test. */
    hold: (...fds: number[]): void => void held.push(...fds),
    closeHeld,
  };
}
