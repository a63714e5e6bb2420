/**
 * The `layerfs` launcher and program: help, version, exit statuses, one-line errors, the
 * mount-helper argument forms, and bin/layerfs from anywhere, through a symlink, with PATH unset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createProgram, loadCommands, rewriteArgs } from '../../src/cli/program.js';
import { CliError, errorLine, UsageError } from '../../src/cli/errors.js';
import { FsError } from '../../src/errors/index.js';
import { mkTemp } from '../helpers/tree-spec.js';

const REPO = process.cwd();
const BIN = join(REPO, 'bin', 'layerfs');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

function run(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; bin?: string } = {}) {
  const r = spawnSync(opts.bin ?? BIN, args, { cwd: opts.cwd ?? REPO, env: opts.env ?? process.env, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--help lists the commands and exits 0; --version prints the package version', () => {
  const h = run(['--help']);
  assert.equal(h.status, 0);
  for (const c of ['tree', 'diff']) assert.match(h.stdout, new RegExp(`^  ${c} `, 'm'));
  const v = run(['--version']);
  assert.equal(v.status, 0);
  assert.equal(v.stdout.trim(), VERSION);
});

test('unknown option and unknown command: one usage line on stderr, exit 2', () => {
  const a = run(['tree', '--bogus']);
  assert.equal(a.status, 2);
  assert.equal(a.stderr.trim().split('\n').length, 1, a.stderr);
  assert.match(a.stderr, /^layerfs: unknown option '--bogus'/);
  const c = run(['nosuchcmd']);
  assert.equal(c.status, 2);
  assert.equal(c.stderr.trim().split('\n').length, 1, c.stderr);
  assert.match(c.stderr, /^layerfs: unknown command 'nosuchcmd'/);
  const b = run(['diff']);
  assert.equal(b.status, 2);
  assert.equal(b.stderr, 'layerfs: diff: no branches: give --dirs=A=rw:B=ro:... or -o lowerdir=...,upperdir=...\n');
});

test('bin/layerfs works from another directory, through a symlink, with PATH unset', (t) => {
  const tmp = mkTemp('layerfs-bin-');
  t.after(() => tmp.cleanup());
  const link = tmp.path('layerfs');
  symlinkSync(BIN, link);
  const r = run(['--version'], { bin: link, cwd: tmp.dir, env: {} });
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0);
  assert.equal(r.stdout.trim(), VERSION);
});

test('mount-helper forms are rewritten to `mount`', () => {
  const names = new Set(['tree', 'diff', 'mount', 'umount', 'help']);
  assert.deepEqual(rewriteArgs(['none', '/mnt', '-o', 'dirs=a:b'], names), ['mount', 'none', '/mnt', '-o', 'dirs=a:b']);
  assert.deepEqual(rewriteArgs(['-o', 'lowerdir=a,upperdir=b,workdir=c', '/mnt'], names), ['mount', '-o', 'lowerdir=a,upperdir=b,workdir=c', '/mnt']);
  assert.deepEqual(rewriteArgs(['-f', '-olowerdir=a', '/mnt'], names), ['mount', '-f', '-olowerdir=a', '/mnt']);
  assert.deepEqual(rewriteArgs(['-o', 'rw'], names), ['mount', '-o', 'rw']);
  assert.deepEqual(rewriteArgs(['tree', '--dirs=a'], names), ['tree', '--dirs=a']);
  assert.deepEqual(rewriteArgs(['--help'], names), ['--help']);
  assert.deepEqual(rewriteArgs([], names), []);
  // a lone unknown word is an unknown command, not a mount
  assert.deepEqual(rewriteArgs(['nosuch'], names), ['nosuch']);
  assert.deepEqual(rewriteArgs(['-d', 'none', '/mnt'], names), ['mount', '-d', 'none', '/mnt']);
  // a mount point named like a command still mounts when a source precedes it
  assert.deepEqual(rewriteArgs(['layerfs', 'tree', '-o', 'dirs=a'], names), ['mount', 'layerfs', 'tree', '-o', 'dirs=a']);
  // without a mount command registered, nothing is rewritten
  assert.deepEqual(rewriteArgs(['none', '/mnt'], new Set(['tree'])), ['none', '/mnt']);
});

test('errorLine: one line, "layerfs: <what>: <reason>", no stack', () => {
  assert.equal(errorLine('tree', new FsError('ENOENT', 'scandir', '/x')), "layerfs: tree: ENOENT: no such file or directory, scandir '/x'");
  assert.equal(errorLine('tree', new CliError('mount /m', 'busy')), 'layerfs: mount /m: busy');
  assert.equal(errorLine('diff', new Error('first\nsecond')), 'layerfs: diff: first');
  assert.equal(new UsageError('x', 'y').exitCode, 2);
  assert.equal(new CliError('x', 'y').exitCode, 1);
});

test('a command module that fails to load disables only its own command, with a one-line reason', async () => {
  const mods = await loadCommands([
    { name: 'good', load: async () => ({ register: (p) => void p.command('good').action(() => undefined) }) },
    { name: 'broken', load: () => Promise.reject(new SyntaxError("The requested module './x.js' does not provide an export named 'y'")) },
  ]);
  const program = createProgram(mods);
  assert.deepEqual(program.commands.map((c) => c.name()), ['good', 'broken']);
  await program.parseAsync(['good'], { from: 'user' });
  const fresh = createProgram(mods);
  await assert.rejects(fresh.parseAsync(['broken', '-x', 'arg'], { from: 'user' }), (e: unknown) => {
    assert.ok(e instanceof CliError);
    assert.equal(errorLine('x', e), "layerfs: broken: command unavailable: The requested module './x.js' does not provide an export named 'y'");
    return true;
  });
});
