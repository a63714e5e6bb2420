/**
 * Running layerfs as a normal user from a test that runs as root (as CI does): a test user
 * `layerfs-test` (made with useradd when absent, with /etc/subuid and /etc/subgid ranges for
 * rootless containers), commands run as that user through `setpriv --reuid --regid --init-groups`,
 * and /dev/fuse opened up to mode 0666 (fusermount3 and a user namespace's root open it as the
 * user; some machines leave it 0600) and put back afterwards.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { BIN, CLI_MAIN, REPO } from './mount.js';

export const TEST_USER = 'layerfs-test';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** bin/layerfs of this checkout, at a path the user can reach. */
  bin: string;
}

export interface AsUserRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

function idOf(flag: '-u' | '-g', name: string): number | null {
  const r = spawnSync('id', [flag, name], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : null;
}

/** Append `name:start:65536` to a subordinate-id file when the user has no line there. */
function ensureSubIds(file: string, name: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  if (text.split('\n').some((l) => l.startsWith(`${name}:`))) return;
  // a range past every one in use
  let start = 100000;
  for (const l of text.split('\n')) {
    const [, s, n] = l.split(':');
    if (s && n) start = Math.max(start, Number(s) + Number(n));
  }
  spawnSync('sh', ['-c', `printf '%s:%d:65536\\n' "$1" "$2" >> "$3"`, 'sh', name, String(start), file]);
}

/** The test user (created when absent), or the reason it cannot be had (not root, no useradd). */
export function ensureTestUser(): TestUser | string {
  if (process.getuid?.() !== 0) return 'not root: cannot create or become the test user';
  for (const tool of ['setpriv', 'useradd', 'unshare', 'fusermount3']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is missing (util-linux, passwd, fuse3)`;
  }
  if (idOf('-u', TEST_USER) === null) {
    const r = spawnSync('useradd', ['-m', '-s', '/bin/sh', TEST_USER], { encoding: 'utf8' });
    if (r.status !== 0 && idOf('-u', TEST_USER) === null) return `useradd ${TEST_USER} failed: ${r.stderr.trim()}`;
  }
  ensureSubIds('/etc/subuid', TEST_USER);
  ensureSubIds('/etc/subgid', TEST_USER);
  const uid = idOf('-u', TEST_USER);
  const gid = idOf('-g', TEST_USER);
  if (uid === null || gid === null) return `no ids for ${TEST_USER}`;
  const u = { name: TEST_USER, uid, gid, bin: BIN };
  // the user must be able to run our CLI from this checkout; a clone under a private dir (/root)
  // is reached through a bind mount of it in /tmp (removed when the test process exits)
  if (!userCanRead(u, CLI_MAIN)) {
    const repo = repoBindMount();
    if (repo === null || !userCanRead(u, join(repo, relative(REPO, CLI_MAIN)))) return `${TEST_USER} cannot read ${CLI_MAIN} (checkout in a private directory?)`;
    u.bin = join(repo, relative(REPO, BIN));
  }
  return u;
}

function userCanRead(u: TestUser, path: string): boolean {
  return runAs(u, [process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(path)}, 4)`], {}).status === 0;
}

let boundRepo: string | null | undefined;

/** The checkout bind-mounted at a fresh /tmp dir (once per process), or null when that fails. */
function repoBindMount(): string | null {
  if (boundRepo !== undefined) return boundRepo;
  const dir = mkdtempSync(join(tmpdir(), 'layerfs-repo-'));
  chmodSync(dir, 0o755);
  if (spawnSync('mount', ['--bind', REPO, dir]).status !== 0) {
    rmdirSync(dir);
    return (boundRepo = null);
  }
  process.once('exit', () => {
    spawnSync('umount', ['-l', dir]);
    try {
      rmdirSync(dir);
    } catch {
      /* still busy: left empty */
    }
  });
  return (boundRepo = dir);
}

/** Run argv as the user, with exactly `env` (plus a PATH); hard timeout. */
export function runAs(u: TestUser, argv: string[], env: NodeJS.ProcessEnv, o: { timeoutMs?: number; cwd?: string } = {}): AsUserRun {
  const r = spawnSync('setpriv', ['--reuid', String(u.uid), '--regid', String(u.gid), '--init-groups', '--', ...argv], {
    env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: `/home/${u.name}`, ...env },
    cwd: o.cwd ?? '/',
    encoding: 'utf8',
    timeout: o.timeoutMs ?? 60_000,
    killSignal: 'SIGKILL',
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** A shell script as the user. */
export function shAs(u: TestUser, script: string, env: NodeJS.ProcessEnv, o: { timeoutMs?: number } = {}): AsUserRun {
  return runAs(u, ['/bin/sh', '-c', script], env, o);
}

/**
 * Make /dev/fuse usable by every user (mode 0666) for the duration of a test; returns the undo
 * (puts the old mode back; a no-op when it already was open).
 */
export function openDevFuse(): () => void {
  const before = statSync('/dev/fuse').mode & 0o7777;
  if ((before & 0o666) === 0o666) return () => {};
  chmodSync('/dev/fuse', 0o666);
  return () => chmodSync('/dev/fuse', before);
}
