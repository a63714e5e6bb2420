import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { processAlive } from '../../src/sys/process.js';

test('processAlive: this process and init (EPERM when not root) run; a reaped child, a zombie and non-pids do not', async () => {
  assert.equal(processAlive(process.pid), true);
  assert.equal(processAlive(1), true);
  const done = spawnSync('true');
  assert.equal(processAlive(done.pid!), false, 'reaped');
  for (const bad of [0, -1, 1.5, Number.NaN]) assert.equal(processAlive(bad), false, String(bad));
  // a zombie: a child of a shell that exits at once and is not waited for while the shell sleeps
  const sh = spawn('sh', ['-c', 'true & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const pid = await new Promise<number>((res) => sh.stdout!.once('data', (b: Buffer) => res(Number(b.toString().trim()))));
    for (let i = 0; i < 100 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(processAlive(pid), false, 'zombie counts as gone');
  } finally {
    sh.kill();
  }
});
