/**
 * A mount request whose daemon dies before it answers (a crash, the OOM killer, a kill loop) is
 * sent again by the client to the daemon the supervisor starts next, and ends in exactly one live
 * mount: answered with the mount already made when the first daemon had handed it to the
 * supervisor, or mounted afresh (the dead mount left by the first try detached) when it had not.
 * Both clients: the C fast path (bin/layerfs) and Node (dist/src/cli/main.js).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, CLI_MAIN, forceUnmount, pidAlive, requireFuse, stopDaemons, waitFor } from '../helpers/mount.js';
import { mountTable } from '../../src/sys/mountinfo.js';

test('a mount whose daemon is killed before it answers is mounted once, by either client, at either point', async (t) => {
  if (!requireFuse(t)) return;
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'layerfs-mretry-')));
  const run = join(root, 'run');
  const die = join(root, 'die');
  mkdirSync(join(root, 'lo'));
  writeFileSync(join(root, 'lo', 'base.txt'), 'base\n');
  const cases = [
    { client: 'C', at: 'registered' },
    { client: 'C', at: 'mounted' },
    { client: 'node', at: 'registered' },
    { client: 'node', at: 'mounted' },
  ] as const;
  const mnts: string[] = [];
  for (let i = 0; i <= cases.length; i++) {
    mkdirSync(join(root, `up${i}`));
    mkdirSync(join(root, `mnt${i}`));
    mnts.push(join(root, `mnt${i}`));
  }
  const env = { ...process.env, LAYERFS_RUN_DIR: run, LAYERFS_DAEMON_IDLE_MS: '300', LAYERFS_DAEMON_TEST_HOOKS: '1', LAYERFS_TEST_DIE_FILE: die };
  t.after(async () => {
    for (const m of mnts) forceUnmount(m);
    await stopDaemons(run);
    rmSync(root, { recursive: true, force: true });
  });
  const mount = (i: number, client: 'C' | 'node') => {
    const args = ['mount', '-o', `dirs=${root}/up${i}=rw:${root}/lo=ro`, mnts[i]!];
    const [cmd, argv] = client === 'C' ? [BIN, args] : [process.execPath, [CLI_MAIN, ...args]];
    return spawnSync(cmd, argv, { env: { ...env, LAYERFS_CLIENT_TRACE: '1' }, encoding: 'utf8', timeout: 60_000 });
  };
  const daemonPid = (): number => {
    const f = readdirSync(run).find((x) => /^daemon-\d+\.pid$/.test(x));
    return f ? Number(readFileSync(join(run, f), 'utf8').trim()) : 0;
  };
  const layerfsAt = (mnt: string) => mountTable().filter((m) => m.mountpoint === mnt && m.fstype === 'fuse.layerfs').length;

  // a first mount: the supervisor then has something to keep, and replaces each daemon that dies
  const first = mount(0, 'C');
  assert.equal(first.status, 0, first.stderr);
  for (const [k, c] of cases.entries()) {
    const i = k + 1;
    const before = daemonPid();
    assert.ok(before > 0 && pidAlive(before));
    writeFileSync(die, c.at);
    const r = mount(i, c.client);
    const what = `${c.client} client, daemon killed when ${c.at}`;
    assert.equal(r.status, 0, `${what}: ${r.stderr}`);
    assert.ok(!existsSync(die), `${what}: the daemon reached the point where it dies`);
    if (c.client === 'C') assert.match(r.stderr, /layerfs-client: node \(the daemon died before answering\)/, what);
    assert.equal(layerfsAt(mnts[i]!), 1, `${what}: exactly one layerfs mount at ${mnts[i]}`);
    assert.ok(await waitFor(() => daemonPid() !== before && pidAlive(daemonPid())), `${what}: a new daemon serves`);
    // the mount works, through the union, and the other mounts still do
    assert.equal(readFileSync(join(mnts[i]!, 'base.txt'), 'utf8'), 'base\n', what);
    writeFileSync(join(mnts[i]!, 'new.txt'), `${i}\n`);
    assert.equal(readFileSync(join(root, `up${i}`, 'new.txt'), 'utf8'), `${i}\n`, `${what}: writes reach the upper branch`);
    for (let j = 0; j < i; j++) assert.equal(readFileSync(join(mnts[j]!, 'base.txt'), 'utf8'), 'base\n', `${what}: mount ${j} still serves`);
    // and the daemon knows it: a plain umount works
    const list = spawnSync(process.execPath, [CLI_MAIN, 'info', mnts[i]!], { env, encoding: 'utf8' });
    assert.equal(list.status, 0, `${what}: info: ${list.stderr}`);
  }
  for (const m of mnts) {
    const u = spawnSync(process.execPath, [CLI_MAIN, 'umount', m], { env, encoding: 'utf8' });
    assert.equal(u.status, 0, u.stderr);
    assert.equal(layerfsAt(m), 0, `${m} unmounted, nothing left under it`);
  }
});
