/**
 * Default ACLs and the umask on create (engine/acl.ts): with the caller's umask in the context (FUSE
 * with POSIX ACLs), a new entry under a directory with a default ACL gets the requested mode masked
 * by that ACL and inherits it, the umask ignored; elsewhere mode & ~umask. Without a umask the mode
 * is used as given. The parent is a lower directory: its ACL comes up with its copy-up.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { O_CREAT, O_EXCL, O_WRONLY, ctx, setup } from './fixture.js';

function setfacl(args: string[]): void {
  const r = spawnSync('setfacl', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`setfacl is missing (Debian package acl): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`setfacl ${args.join(' ')}: ${r.stderr}`);
}

function getfacl(path: string): string {
  const r = spawnSync('getfacl', ['-npc', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`getfacl ${path}: ${r.stderr}`);
  return r.stdout.trim();
}

test('create/mkdir/mknod under a default ACL: mode from the ACL, inherited, umask ignored', (t) => {
  const f = setup(t, { rw: {}, lo: { inh: {}, plain: {} } });
  setfacl(['-m', 'd:u::rwx,d:u:1000:rwx,d:g::r-x,d:o::---,d:m::rwx', join(f.br.lo!, 'inh')]);
  // a fresh union: the lower dir's xattrs as they are now
  const u = f.remount();
  const r = u.root;
  const inh = u.lookup(r, 'inh');
  const c = { ...ctx, umask: 0o077 };
  const { fh } = u.create(inh, 'f', 0o666, O_CREAT | O_EXCL | O_WRONLY, c);
  u.release(fh);
  u.mkdir(inh, 'd', 0o777, c);
  u.mknod(inh, 'p', 0o010666, 0, c);
  const up = join(f.br.rw!, 'inh');
  assert.equal(lstatSync(join(up, 'f')).mode & 0o7777, 0o660, 'file: 666 masked by the ACL (other ---), umask 077 ignored');
  assert.equal(lstatSync(join(up, 'd')).mode & 0o7777, 0o770);
  assert.equal(lstatSync(join(up, 'p')).mode & 0o7777, 0o660);
  assert.match(getfacl(join(up, 'f')), /user:1000:rwx\t#effective:rw-/);
  assert.match(getfacl(join(up, 'd')), /default:user:1000:rwx/);
  // a requested 600 stays 600, the ACL's mask follows it
  const g = u.create(inh, 'g', 0o600, O_CREAT | O_EXCL | O_WRONLY, c);
  u.release(g.fh);
  assert.equal(lstatSync(join(up, 'g')).mode & 0o7777, 0o600);
  assert.match(getfacl(join(up, 'g')), /mask::---/);
});

test('create/mkdir without a default ACL: mode & ~umask; without a umask: the mode as given', (t) => {
  const f = setup(t, { rw: {}, lo: { plain: {} } });
  const u = f.u;
  const plain = u.lookup(u.root, 'plain');
  const c = { ...ctx, umask: 0o027 };
  u.release(u.create(plain, 'f', 0o666, O_CREAT | O_EXCL | O_WRONLY, c).fh);
  u.mkdir(plain, 'd', 0o777, c);
  u.release(u.create(plain, 'g', 0o666, O_CREAT | O_EXCL | O_WRONLY, ctx).fh);
  u.mkdir(plain, 'e', 0o777, ctx);
  const up = join(f.br.rw!, 'plain');
  assert.equal(lstatSync(join(up, 'f')).mode & 0o7777, 0o640);
  assert.equal(lstatSync(join(up, 'd')).mode & 0o7777, 0o750);
  assert.equal(lstatSync(join(up, 'g')).mode & 0o7777, 0o666, 'no umask in the context: final mode');
  assert.equal(lstatSync(join(up, 'e')).mode & 0o7777, 0o777);
});
