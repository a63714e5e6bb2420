/**
 * The C floor of the bench (native/floor-server.c via bench/floor-c-serve.ts, issue 14): over a
 * small two-layer tree, a real /dev/fuse mount shows the names, modes, sizes and link targets the
 * engine shows for the same layers; chmod works (in memory); unmount leaves no server running.
 * Needs root and /dev/fuse: fails without them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unionEntries } from '../../bench/floor-c-serve.js';

const SERVE = fileURLToPath(new URL('../../bench/floor-c-serve.js', import.meta.url));
const S_IFMT = 0o170000;

const mounted = (m: string): boolean => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === m);

/** Pids whose command line holds `mnt` as an argument (the server names its mount point). */
function serversOf(mnt: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(mnt)) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

/** path -> "mode size [-> target]" of every entry below `root`. */
function view(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      const type = st.mode & S_IFMT;
      out.set(r, `${st.mode.toString(8)} ${type === 0o040000 ? '-' : st.size}${st.isSymbolicLink() ? ` -> ${readlinkSync(p)}` : ''}`);
      if (st.isDirectory()) walk(p, r);
    }
  };
  walk(root, '');
  return out;
}

/** The same from the engine's entries (bench/floor-c-serve.ts reads the layers this way). */
function engineView(lowerdir: string): Map<string, string> {
  const entries = unionEntries(lowerdir);
  const paths: string[] = [''];
  const out = new Map<string, string>();
  entries.forEach((e, i) => {
    if (i === 0) return;
    const rel = paths[e.parent] ? `${paths[e.parent]}/${e.name}` : e.name;
    paths[i] = rel;
    const type = e.attr.mode & S_IFMT;
    out.set(rel, `${e.attr.mode.toString(8)} ${type === 0o040000 ? '-' : e.attr.size}${e.link !== undefined ? ` -> ${e.link}` : ''}`);
  });
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

test('floor-c serves the merged tree the engine shows, chmod works, unmount stops it', (t) => {
  assert.ok(existsSync('/dev/fuse'), '/dev/fuse is missing: FUSE is needed for this test');
  assert.equal(process.getuid?.(), 0, 'root is needed to mount');
  const root = mkdtempSync(join(tmpdir(), 'layerfs-floorc-'));
  const [top, bottom, mnt] = ['l1', 'l2', 'mnt'].map((d) => join(root, d)) as [string, string, string];
  for (const d of [top, bottom, mnt, join(bottom, 'd', 'sub'), join(top, 'd')]) mkdirSync(d, { recursive: true });
  writeFileSync(join(bottom, 'd', 'a'), 'bottom copy');
  writeFileSync(join(top, 'd', 'a'), 'top'); // the top layer's copy wins
  writeFileSync(join(bottom, 'd', 'sub', 'b'), 'x'.repeat(5000));
  chmodSync(join(bottom, 'd', 'sub', 'b'), 0o640);
  writeFileSync(join(top, 'c'), '');
  chmodSync(join(top, 'c'), 0o751);
  symlinkSync('d/sub/b', join(top, 'link'));
  symlinkSync('/nowhere/at/all', join(bottom, 'd', 'dangling'));
  const lowerdir = `${top}:${bottom}`;
  t.after(() => {
    if (mounted(mnt)) spawnSync('umount', ['-l', mnt]);
    rmSync(root, { recursive: true, force: true });
  });

  const r = spawnSync(process.execPath, [SERVE, `lowerdir=${lowerdir}`, mnt], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `floor-c-serve failed: ${r.stderr}`);
  assert.ok(mounted(mnt), 'not mounted');
  const pids = serversOf(mnt);
  assert.equal(pids.length, 1, `one server expected, got ${pids.join(',')}`);

  const want = engineView(lowerdir);
  assert.equal(want.get('d/a'), `100644 3`, 'the engine shows the top copy');
  assert.deepEqual([...view(mnt)], [...want]);
  assert.equal(readlinkSync(join(mnt, 'link')), 'd/sub/b');
  assert.equal(readFileSync(join(mnt, 'd', 'sub', 'b')).length, 5000, 'reads give the size (zeros)');

  chmodSync(join(mnt, 'd', 'sub', 'b'), 0o600);
  assert.equal(lstatSync(join(mnt, 'd', 'sub', 'b')).mode & 0o7777, 0o600);
  assert.equal(lstatSync(join(bottom, 'd', 'sub', 'b')).mode & 0o7777, 0o640, 'the layers are never written');

  const u = spawnSync('umount', [mnt], { encoding: 'utf8' });
  assert.equal(u.status, 0, `umount: ${u.stderr}`);
  const end = Date.now() + 5000;
  while (serversOf(mnt).length > 0 && Date.now() < end) spawnSync('sleep', ['0.05']);
  assert.deepEqual(serversOf(mnt), [], 'the server still runs after unmount');
  assert.ok(!existsSync(`/proc/${pids[0]}`) || readFileSync(`/proc/${pids[0]}/stat`, 'utf8').includes(') Z '), 'the server process is gone');
});
