/** A command run to its end with its output in a log file (for servers that stay running and keep the log open). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/** Runs `cmd` to its end (30 s at most); its output goes to `log`, shown when it fails. */
export function runLogged(cmd: string, args: string[], log: string): void {
  const fd = openSync(log, 'w');
  try {
    const r = spawnSync(cmd, args, { stdio: ['ignore', fd, fd], timeout: 30_000 });
    assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${readFileSync(log, 'utf8')}`);
  } finally {
    closeSync(fd);
  }
}
