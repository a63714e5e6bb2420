/**
 * `npm start` (dist/examples/walkthrough.js): the seed walkthrough on a scratch copy of
 * examples/aufs, through a real FUSE mount when root with /dev/fuse (required in CI), and
 * in-process. Checks the key output lines, that nothing stays mounted, and examples/ unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readTree } from '../helpers/tree-spec.js';

const REPO = process.cwd();
const SCRIPT = join(REPO, 'dist', 'examples', 'walkthrough.js');
const EXAMPLES = join(REPO, 'examples');

function walkthroughMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes('layerfs-walkthrough-'));
}

function runWalkthrough(env: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [SCRIPT], { cwd: REPO, env, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGTERM' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertSeedOutput(out: string): void {
  const expectLines = (block: string[]): void => {
    assert.ok(out.includes(block.join('\n') + '\n'), `missing:\n${block.join('\n')}\n--- in ---\n${out}`);
  };
  expectLines(['# cat aufs/container-layer/container-layer.txt', 'I am container layer']);
  expectLines(['# cat aufs/image-layer4/image-layer4.txt', 'I am image layer 4']);
  expectLines([
    '# tree mnt/',
    'mnt/',
    '├── container-layer.txt',
    '├── image-layer1.txt',
    '├── image-layer2.txt',
    '├── image-layer3.txt',
    '└── image-layer4.txt',
    '',
    '0 directories, 5 files',
  ]);
  assert.match(out, /\n\/\S+\/aufs\/container-layer=rw\n\/\S+\/aufs\/image-layer4=ro\n\/\S+\/aufs\/image-layer3=ro\n\/\S+\/aufs\/image-layer2=ro\n\/\S+\/aufs\/image-layer1=ro\n64\n65\n66\n67\n68\n/);
  expectLines(['# cat mnt/image-layer4.txt', 'I am image layer 4', '', "write to mnt's image-layer1.txt"]);
  expectLines(['# cat image-layer4/image-layer4.txt', 'I am image layer 4']);
  expectLines(['# ls container-layer', 'container-layer.txt  image-layer4.txt']);
}

test('npm start through a real FUSE mount (when root with /dev/fuse; required in CI)', (t) => {
  const canFuse = process.getuid?.() === 0 && existsSync('/dev/fuse');
  if (!canFuse && process.env.CI) assert.fail('FUSE is unavailable (need root and /dev/fuse) but CI is set');
  const before = readTree(EXAMPLES);
  t.after(() => {
    for (const l of walkthroughMounts()) spawnSync('umount', ['-l', l.split(' ')[4]!], { timeout: 10_000 });
  });
  const env = { ...process.env };
  delete env.LAYERFS_WALKTHROUGH;
  const r = runWalkthrough(env);
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0);
  if (canFuse) {
    assert.match(r.stdout, /^layerfs walkthrough: through a real FUSE mount/);
    assert.ok(!r.stdout.includes('FUSE mount failed'), r.stdout);
    assert.ok(r.stdout.includes('# layerfs mount -o dirs=./container-layer:./image-layer4:./image-layer3:./image-layer2:./image-layer1 ./mnt\n'));
    assert.match(r.stdout, /\n# cat \S+\/si_[0-9a-f]+\/\*\n/);
    assert.ok(r.stdout.includes('# layerfs umount ./mnt\n'));
  } else {
    assert.match(r.stdout, /^layerfs walkthrough: in-process/);
  }
  assertSeedOutput(r.stdout);
  assert.deepEqual(walkthroughMounts(), [], 'the walkthrough left a mount behind');
  assert.deepEqual(readTree(EXAMPLES), before, 'examples/ changed');
});

test('npm start in-process (LAYERFS_WALKTHROUGH=inprocess)', () => {
  const before = readTree(EXAMPLES);
  const r = runWalkthrough({ ...process.env, LAYERFS_WALKTHROUGH: 'inprocess' });
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^layerfs walkthrough: in-process, through the engine and API, no FUSE mount/);
  assertSeedOutput(r.stdout);
  assert.deepEqual(readTree(EXAMPLES), before, 'examples/ changed');
});
