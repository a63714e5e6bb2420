import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { makeTar, tempDir } from '../store/helpers.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');

async function layerfs(root: string, ...args: string[]): Promise<string> {
  const r = await run(process.execPath, [CLI, ...args], { env: { ...process.env, LAYERFS_ROOT: root }, timeout: 60_000 });
  assert.equal(r.stderr, '', 'nothing on stderr when piped (no progress bar)');
  return r.stdout;
}

test('image export/import through the CLI: OCI layout and docker archive, ls, inspect, tag, rm', { timeout: 120_000 }, async (t) => {
  const top = tempDir();
  const root = path.join(top, 'store');
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const l1 = path.join(top, 'l1.tar');
  fs.writeFileSync(l1, await makeTar([{ name: 'hello', body: 'world' }]));
  const l2 = path.join(top, 'l2.tar');
  fs.writeFileSync(l2, await makeTar([{ name: '.wh.hello' }, { name: 'bye', body: 'now' }]));
  await layerfs(root, 'layer', 'import', l1, '--name', 'demo:1');
  const topId = (await layerfs(root, 'layer', 'import', l2, '--parent', 'demo:1', '--name', 'demo:2')).trim();

  await layerfs(root, 'image', 'export', 'demo:2', path.join(top, 'oci') + ':v2');
  assert.ok(fs.existsSync(path.join(top, 'oci', 'oci-layout')));
  await layerfs(root, 'image', 'export', 'demo:2', path.join(top, 'demo.tar'));
  const manifest = JSON.parse(await (async () => {
    const { extract } = await import('tar-stream');
    const x = extract();
    let text = '';
    const done = (async () => {
      for await (const e of x) {
        if (e.header.name === 'manifest.json') for await (const c of e) text += (c as Buffer).toString();
        else e.resume();
      }
    })();
    x.end(fs.readFileSync(path.join(top, 'demo.tar')));
    await done;
    return text;
  })()) as { RepoTags: string[]; Layers: string[] }[];
  assert.deepEqual(manifest[0]!.RepoTags, ['demo:2']);
  assert.equal(manifest[0]!.Layers.length, 2);

  const root2 = path.join(top, 'store2');
  const fromOci = (await layerfs(root2, 'image', 'import', path.join(top, 'oci') + ':v2', 'copy:oci')).trim();
  const fromDocker = (await layerfs(root2, 'image', 'import', path.join(top, 'demo.tar'))).trim();
  assert.equal(fromOci, fromDocker, 'same layers (same ChainIDs) are shared');
  const ls = await layerfs(root2, 'image', 'ls');
  assert.match(ls, /^copy:oci {2}[0-9a-f]{12} {2}2 layer\(s\)/m);
  assert.match(ls, /^demo:2 {2}/m);
  const insp = JSON.parse(await layerfs(root2, 'image', 'inspect', 'demo:2')) as { layers: { diffId: string }[]; chainId: string };
  // the imported layers' DiffIDs are the digests of our reproducible layer exports
  const orig = JSON.parse(await layerfs(root, 'image', 'inspect', topId)) as { layers: { id: string }[] };
  const exported = await Promise.all(
    orig.layers.map(async (l) => {
      const r = await run(process.execPath, [CLI, 'layer', 'export', l.id], { env: { ...process.env, LAYERFS_ROOT: root }, encoding: 'buffer', maxBuffer: 1 << 26 });
      return `sha256:${createHash('sha256').update(r.stdout).digest('hex')}`;
    }),
  );
  assert.deepEqual(insp.layers.map((l) => l.diffId), exported);
  await layerfs(root2, 'image', 'tag', 'demo:2', 'again');
  await layerfs(root2, 'image', 'rm', 'copy:oci', 'again');
  assert.doesNotMatch(await layerfs(root2, 'image', 'ls'), /copy:oci|again/);
});

test('a progress bar is drawn on a terminal (and the id still printed)', { timeout: 60_000 }, async (t) => {
  const top = tempDir();
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const big = path.join(top, 'big.tar');
  fs.writeFileSync(big, await makeTar([{ name: 'big', body: Buffer.alloc(20_000_000, 3) }]));
  // script(1) runs the command on a pseudo-terminal
  const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} layer import ${JSON.stringify(big)}`;
  const r = await run('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, LAYERFS_ROOT: path.join(top, 'store') }, timeout: 60_000 });
  assert.match(r.stdout, /import \[[^\]]*\] 100% 20\.0MB\/20\.0MB/);
  assert.match(r.stdout, /^[0-9a-f]{64}\r?$/m);
});
