/**
 * The in-process API creates as open(2)/mkdir(2) do on Linux: the parent's default ACL (the umask
 * ignored) or else the umask; copyFile gives the copy exactly the source's mode.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UnionFS } from '../../src/api/index.js';

test('UnionFS: default ACL of a lower dir on writeFile/mkdir, umask elsewhere, copyFile keeps the mode', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'layerfs-api-acl-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const [lower, upper, work] = ['lower', 'upper', 'work'].map((n) => join(base, n)) as [string, string, string];
  for (const d of [lower, upper, work, join(lower, 'inh'), join(lower, 'plain')]) mkdirSync(d, { recursive: true });
  writeFileSync(join(lower, 'plain', 'src'), 'x');
  chmodSync(join(lower, 'plain', 'src'), 0o666);
  const r = spawnSync('setfacl', ['-m', 'd:u::rwx,d:u:1000:rwx,d:g::r-x,d:o::---,d:m::rwx', join(lower, 'inh')], { encoding: 'utf8' });
  if (r.error) throw new Error(`setfacl is missing (Debian package acl): ${r.error.message}`);
  assert.equal(r.status, 0, r.stderr);
  const ufs = new UnionFS(`lowerdir=${lower},upperdir=${upper},workdir=${work}`, { umask: 0o077 });
  await ufs.writeFile('/inh/f', 'data');
  await ufs.mkdir('/inh/d');
  await ufs.writeFile('/plain/f', 'data');
  await ufs.mkdir('/plain/d');
  await ufs.copyFile('/plain/src', '/plain/copy');
  const mode = (p: string): number => lstatSync(join(upper, p)).mode & 0o7777;
  assert.equal(mode('inh/f'), 0o660, '0666 masked by the default ACL, umask 077 ignored');
  assert.equal(mode('inh/d'), 0o770);
  assert.equal(mode('plain/f'), 0o600, '0666 & ~077');
  assert.equal(mode('plain/d'), 0o700);
  assert.equal(mode('plain/copy'), 0o666, 'copyFile: the source mode, no umask');
  const acl = spawnSync('getfacl', ['-npc', join(upper, 'inh', 'f')], { encoding: 'utf8' }).stdout;
  assert.match(acl, /user:1000:rwx\t#effective:rw-/);
});
