import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { makeTar, tempDir } from '../store/helpers.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');

function fuseUsable(): boolean {
  return fs.existsSync('/dev/fuse') && process.getuid?.() === 0;
}

async function layerfs(root: string, ...args: string[]): Promise<string> {
  const r = await run(process.execPath, [CLI, ...args], { env: { ...process.env, LAYERFS_ROOT: root }, timeout: 60_000 });
  return r.stdout;
}

async function layerfsFails(root: string, ...args: string[]): Promise<string> {
  try {
    await run(process.execPath, [CLI, ...args], { env: { ...process.env, LAYERFS_ROOT: root }, timeout: 60_000 });
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    assert.equal(err.code, 1);
    const lines = (err.stderr ?? '').trimEnd().split('\n');
    assert.equal(lines.length, 1, `one-line error, got: ${err.stderr}`);
    return lines[0]!;
  }
  throw new Error(`layerfs ${args.join(' ')} succeeded`);
}

function mounted(dir: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
}

function forceUnmountAll(root: string): void {
  const mnt = path.join(root, 'mnt');
  if (!fs.existsSync(mnt)) return;
  for (const id of fs.readdirSync(mnt)) {
    const d = path.join(mnt, id);
    if (mounted(d)) {
      try {
        execFileSync('umount', ['-l', d], { timeout: 10_000 });
      } catch {
        // best effort
      }
    }
  }
}

test('container lifecycle through a real FUSE mount: create, write, diff, commit, mount the new image', { timeout: 120_000 }, async (t) => {
  if (!fuseUsable()) {
    if (process.env.CI) assert.fail('FUSE is not usable (need root and /dev/fuse)');
    t.skip('FUSE not usable here');
    return;
  }
  const top = tempDir();
  const root = path.join(top, 'store');
  t.after(() => {
    forceUnmountAll(root);
    fs.rmSync(top, { recursive: true, force: true });
  });
  const l1 = path.join(top, 'l1.tar');
  fs.writeFileSync(l1, await makeTar([{ name: 'image-layer1.txt', body: 'I am image layer 1\n' }, { name: 'etc/', type: 'directory' }, { name: 'etc/old', body: 'old' }]));
  const l2 = path.join(top, 'l2.tar');
  fs.writeFileSync(l2, await makeTar([{ name: 'image-layer2.txt', body: 'I am image layer 2\n' }]));
  const base = (await layerfs(root, 'layer', 'import', l1, '--name', 'base')).trim();
  const v2 = (await layerfs(root, 'layer', 'import', l2, '--parent', 'base', '--name', 'base:v2')).trim();
  assert.equal(fs.readFileSync(path.join(root, 'layers', v2), 'utf8'), `${base}\n`);

  const cid = (await layerfs(root, 'container', 'create', 'base:v2')).trim();
  assert.match(cid, /^[0-9a-f]{64}$/);
  const mnt = (await layerfs(root, 'container', 'mount', cid)).trim();
  assert.equal(mnt, path.join(root, 'mnt', cid));
  assert.ok(mounted(mnt));
  assert.deepEqual(fs.readdirSync(mnt).sort(), ['etc', 'image-layer1.txt', 'image-layer2.txt']);
  fs.writeFileSync(path.join(mnt, 'container-layer.txt'), 'I am container layer\n');
  fs.appendFileSync(path.join(mnt, 'image-layer1.txt'), 'changed\n');
  fs.unlinkSync(path.join(mnt, 'etc/old'));
  // the write went to the container's diff dir, the image layer is untouched (copy-on-write)
  assert.equal(fs.readFileSync(path.join(root, 'diff', base, 'image-layer1.txt'), 'utf8'), 'I am image layer 1\n');
  assert.ok(fs.existsSync(path.join(root, 'diff', cid, 'etc/.wh.old')));

  assert.equal(await layerfs(root, 'container', 'diff', cid), 'C /etc\nD /etc/old\nA /container-layer.txt\nC /image-layer1.txt\n'.split('\n').filter(Boolean).sort(byPath).map((l) => l + '\n').join(''));
  assert.match(await layerfsFails(root, 'container', 'rm', cid), /EBUSY.*mounted/);
  await layerfs(root, 'container', 'umount', cid);
  assert.ok(!mounted(mnt));

  const v3 = (await layerfs(root, 'container', 'commit', cid, 'base:v3')).trim();
  const inspect = JSON.parse(await layerfs(root, 'layer', 'inspect', v3)) as { diffId: string; parent: string; images: string[] }[];
  assert.equal(inspect[0]!.parent, v2);
  assert.deepEqual(inspect[0]!.images, ['base:v3']);
  assert.match(inspect[0]!.diffId, /^sha256:[0-9a-f]{64}$/);
  // the committed layer exports to the DiffID it recorded
  const exported = execFileSync(process.execPath, [CLI, 'layer', 'export', v3], { env: { ...process.env, LAYERFS_ROOT: root }, maxBuffer: 1 << 26 });
  assert.equal(`sha256:${(await import('node:crypto')).createHash('sha256').update(exported).digest('hex')}`, inspect[0]!.diffId);
  await layerfs(root, 'container', 'rm', cid);
  assert.ok(!fs.existsSync(path.join(root, 'diff', cid)));

  const c2 = (await layerfs(root, 'container', 'create', 'base:v3')).trim();
  const mnt2 = (await layerfs(root, 'container', 'mount', c2)).trim();
  try {
    assert.equal(fs.readFileSync(path.join(mnt2, 'container-layer.txt'), 'utf8'), 'I am container layer\n');
    assert.equal(fs.readFileSync(path.join(mnt2, 'image-layer1.txt'), 'utf8'), 'I am image layer 1\nchanged\n');
    assert.ok(!fs.existsSync(path.join(mnt2, 'etc/old')));
    assert.deepEqual(fs.readdirSync(mnt2).sort(), ['container-layer.txt', 'etc', 'image-layer1.txt', 'image-layer2.txt']);
  } finally {
    await layerfs(root, 'container', 'umount', c2);
  }
  const tree = await layerfs(root, 'layer', 'ls');
  assert.match(tree, new RegExp(`└─ ${base.slice(0, 12)} layer .* base:latest`));
  assert.match(tree, new RegExp(`\\s+└─ ${v3.slice(0, 12)} layer .*base:v3`));
  assert.match(await layerfsFails(root, 'layer', 'rm', 'base'), /EBUSY/);
});

function byPath(a: string, b: string): number {
  const pa = a.slice(2);
  const pb = b.slice(2);
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

test('two imports at once from two processes both land, and the lock is released', { timeout: 120_000 }, async (t) => {
  const top = tempDir();
  const root = path.join(top, 'store');
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  const base = (await layerfs(root, 'layer', 'import', '--name', 'base', await writeTar(top, 'b.tar', 'base'))).trim();
  const files = await Promise.all([0, 1, 2, 3].map((i) => writeTar(top, `l${i}.tar`, `layer ${i}`, 2_000_000)));
  const ids = await Promise.all(files.map((f, i) => layerfs(root, 'layer', 'import', f, '--parent', base, '--name', `app:${i}`)));
  const metas = fs.readdirSync(path.join(root, 'meta'));
  assert.equal(metas.length, 5);
  for (const [i, id] of ids.entries()) {
    const d = path.join(root, 'diff', id.trim());
    assert.equal(fs.readFileSync(path.join(d, 'content'), 'utf8').slice(0, 7), `layer ${i}`);
    assert.equal(fs.readFileSync(path.join(root, 'layers', id.trim()), 'utf8'), `${base}\n`);
  }
  const images = JSON.parse(fs.readFileSync(path.join(root, 'images.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(images).sort(), ['app:0', 'app:1', 'app:2', 'app:3', 'base:latest']);
  assert.ok(!fs.existsSync(path.join(root, 'lock')));
  assert.deepEqual(fs.readdirSync(path.join(root, 'tmp')), []);
});

async function writeTar(dir: string, name: string, text: string, pad = 0): Promise<string> {
  const f = path.join(dir, name);
  fs.writeFileSync(f, await makeTar([{ name: 'content', body: text.padEnd(pad, '.') }]));
  return f;
}

test('Ctrl-C during an import leaves no layer behind; a stale lock and crash debris are cleaned up', { timeout: 120_000 }, async (t) => {
  const top = tempDir();
  const root = path.join(top, 'store');
  t.after(() => fs.rmSync(top, { recursive: true, force: true }));
  await layerfs(root, 'layer', 'ls');
  // an import fed slowly through stdin, interrupted halfway
  const big = await makeTar([{ name: 'big', body: Buffer.alloc(4_000_000, 1) }]);
  const child = spawn(process.execPath, [CLI, 'layer', 'import', '-'], { env: { ...process.env, LAYERFS_ROOT: root }, stdio: ['pipe', 'ignore', 'ignore'] });
  child.stdin.on('error', () => {}); // the child is killed with input pending
  child.stdin.write(big.subarray(0, 2_000_000));
  await waitFor(() => fs.readdirSync(path.join(root, 'tmp')).length > 0);
  child.kill('SIGINT');
  await new Promise((r) => child.once('exit', r));
  assert.deepEqual(fs.readdirSync(path.join(root, 'meta')), [], 'no layer visible');
  // debris of a crash: a diff dir without metadata, a staging dir of a dead pid, a stale lock
  const orphan = path.join(root, 'diff', 'a'.repeat(64));
  fs.mkdirSync(orphan);
  fs.mkdirSync(path.join(root, 'tmp', '999999999-deadbeef'));
  fs.writeFileSync(path.join(root, 'lock'), '999999999\n');
  const id = (await layerfs(root, 'layer', 'import', await writeTar(top, 'x.tar', 'x'))).trim();
  assert.ok(fs.existsSync(path.join(root, 'meta', `${id}.json`)));
  assert.ok(!fs.existsSync(orphan));
  assert.deepEqual(fs.readdirSync(path.join(root, 'tmp')), []);
  assert.deepEqual(fs.readdirSync(path.join(root, 'diff')), [id]);
  assert.ok(!fs.existsSync(path.join(root, 'lock')));
});

async function waitFor(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
