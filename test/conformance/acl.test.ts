/**
 * POSIX ACLs through a real mount (issue 14): layerfs negotiates FUSE_POSIX_ACL, so the kernel
 * keeps and enforces ACLs, and the engine applies a parent's default ACL on create/mkdir (the umask
 * where there is none), as kernel overlayfs does through its upper filesystem. One script of
 * setfacl/getfacl/chmod/creates and permission checks as non-root users (setpriv) runs on kernel
 * overlayfs and on layerfs: the transcripts must be the same, and the overlayfs one must say what
 * the test expects (so the script itself is checked). `noacl` turns ACLs off as fuse-overlayfs's.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { mountUnion, requireMount, type Mounted, type UnionKind, type UnionLayers } from '../helpers/overlay.js';
import { removeTree } from './posix-fixture.js';

/** The user named in ACL entries, and one named nowhere (only `other` applies to it). */
const NAMED = 1000;
const STRANGER = 1001;

function sh(script: string, cwd: string): string {
  const r = spawnSync('sh', ['-c', script], { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return r.stdout + r.stderr;
}

function need(tool: string): void {
  const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  if (r.error) throw new Error(`${tool} is missing (Debian package acl / util-linux): ${r.error.message}`);
}

/** Lower layers with ACLs, as an image would bring them. */
function layout(base: string): UnionLayers {
  const l0 = join(base, 'l0');
  const l1 = join(base, 'l1');
  const up = join(base, 'upper');
  for (const d of [l0, l1, up, join(base, 'work'), join(base, 'mnt')]) mkdirSync(d, { recursive: true });
  chmodSync(base, 0o755);
  for (const d of [l0, l1, join(base, 'mnt')]) chmodSync(d, 0o755);
  // a lower file readable by all but one named user (mode 644 + user:NAMED:---)
  writeFileSync(join(l1, 'denied'), 'secret\n');
  chmodSync(join(l1, 'denied'), 0o644);
  // a lower file private by mode but granted to one named user
  writeFileSync(join(l1, 'granted'), 'shared\n');
  chmodSync(join(l1, 'granted'), 0o600);
  // a lower dir with a default ACL (new entries inherit it) and one without
  mkdirSync(join(l0, 'inherit'), { mode: 0o755 });
  mkdirSync(join(l1, 'inherit'), { mode: 0o755 });
  mkdirSync(join(l1, 'plain'), { mode: 0o777 });
  chmodSync(join(l1, 'plain'), 0o777);
  const r = spawnSync(
    'sh',
    [
      '-c',
      [
        `setfacl -m u:${NAMED}:--- denied`,
        `setfacl -m u:${NAMED}:rw- granted`,
        // l0 is the topmost lower: its inherit/ is the one that counts
        `setfacl -m d:u::rwx,d:u:${NAMED}:rwx,d:g::r-x,d:o::---,d:m::rwx ../l0/inherit`,
      ].join(' && '),
    ],
    { cwd: l1, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`setfacl on the lower layer failed: ${r.stderr}`);
  return { lowers: [l0, l1], upper: up, work: join(base, 'work') };
}

/** Run as `uid` (no supplementary groups): prints `ok` or the failure. */
function as(uid: number, cmd: string): string {
  return `setpriv --reuid=${uid} --regid=${uid} --clear-groups sh -c '${cmd}' 2>/dev/null && echo ok || echo denied`;
}

/**
 * The steps and what each prints. getfacl -n -p -c: numeric ids, no header (the path differs).
 * Each line is "label: output" so a difference names its step.
 */
const STEPS: [string, string][] = [
  ['lower access ACL', 'getfacl -npc denied granted'],
  ['ls -l shows +', "ls -l denied granted | cut -c1-11"],
  ['named user denied by ACL', as(NAMED, 'cat denied')],
  ['stranger reads by mode', as(STRANGER, 'cat denied')],
  ['named user granted by ACL', as(NAMED, 'cat granted')],
  ['named user writes by ACL (copy-up)', as(NAMED, 'echo more >> granted')],
  ['stranger still denied', as(STRANGER, 'cat granted')],
  ['ACL after copy-up', 'getfacl -npc granted; cat granted'],
  ['chmod 600 sets the mask', 'chmod 600 granted && getfacl -npc granted'],
  ['named user denied after chmod', as(NAMED, 'cat granted')],
  ['setfacl through the mount', `setfacl -m u:${STRANGER}:--- denied && getfacl -npc denied && stat -c %a denied`],
  ['stranger denied by new entry', as(STRANGER, 'cat denied')],
  ['setfacl -b', 'setfacl -b denied && getfacl -npc denied && stat -c %a denied'],
  ['stranger reads again', as(STRANGER, 'cat denied')],
  ['default ACL of a merged dir', 'getfacl -npcd inherit'],
  ['create under default ACL (umask ignored)', 'umask 077; : > inherit/f && mkdir inherit/d && stat -c "%n %a" inherit/f inherit/d'],
  ['inherited file ACL', 'getfacl -npc inherit/f'],
  ['inherited dir ACL and default', 'getfacl -npc inherit/d'],
  ['create 600 under default ACL', 'umask 000; python3 -c "import os; os.close(os.open(\\"inherit/g\\", os.O_CREAT|os.O_WRONLY, 0o600))" && stat -c "%n %a" inherit/g && getfacl -npc inherit/g'],
  ['nested inheritance', 'umask 077; mkdir inherit/d/e && : > inherit/d/e/x && stat -c "%n %a" inherit/d/e inherit/d/e/x && getfacl -npc inherit/d/e/x'],
  ['named user writes into inherited dir', as(NAMED, 'umask 077; echo n > inherit/d/byuser && stat -c "%n %a %u" inherit/d/byuser')],
  ['stranger cannot list inherited dir', as(STRANGER, 'ls inherit/d')],
  ['mknod (fifo) under default ACL', 'umask 077; mkfifo inherit/p && stat -c "%n %a" inherit/p'],
  ['umask where no default ACL', 'umask 027; : > plain/f && mkdir plain/d && stat -c "%n %a" plain/f plain/d && getfacl -npc plain/f'],
  ['non-root umask where no default ACL', as(NAMED, 'umask 002; : > plain/u && mkdir plain/ud && stat -c "%n %a %u" plain/u plain/ud')],
  ['setfacl -d through the mount', `setfacl -d -m u:${STRANGER}:r-x,g::---,o::--- plain && umask 022 && mkdir plain/later && stat -c "%n %a" plain/later && getfacl -npc plain/later`],
  ['chmod of an inheriting dir', 'chmod 700 inherit/d && getfacl -npc inherit/d | grep -v default'],
  // hard links: one file, so an ACL set through one name counts through the other
  ['hard link made', 'echo h > plain/h && chmod 644 plain/h && ln plain/h plain/hl && stat -c %a plain/hl'],
  ['named user reads through the link (the kernel caches its ACL)', as(NAMED, 'cat plain/hl >/dev/null && stat -c %a plain/hl')],
  ['hard link sees the ACL of its other name', `setfacl -m u:${NAMED}:--- plain/h && getfacl -npc plain/hl && stat -c %a plain/hl`],
  ['named user denied through the other name', as(NAMED, 'cat plain/hl')],
  ['ACL removed through the other name', 'setfacl -b plain/hl && getfacl -npc plain/h'],
  ['named user reads through the first name', as(NAMED, 'cat plain/h >/dev/null')],
  // an ACL change that leaves the mode as it is (-n: the mask is not recomputed)
  ['named user granted by ACL on the first name', `setfacl -m u:${NAMED}:r--,m::r-- plain/h && stat -c %a plain/h plain/hl`],
  ['named user reads through the other name (cached)', as(NAMED, 'cat plain/hl >/dev/null')],
  ['ACL change without a mode change', `setfacl -n -m u:${NAMED}:--- plain/h && stat -c %a plain/h plain/hl`],
  ['named user denied through the other name again', as(NAMED, 'cat plain/hl')],
];

function transcript(mnt: string): string {
  return STEPS.map(([label, cmd]) => `${label}: ${sh(cmd, mnt).trim().replace(/\n/g, ' | ')}`).join('\n');
}

function withMount(kind: UnionKind, extra: string[], fn: (m: Mounted) => void): void {
  const base = mkdtempSync(join(tmpdir(), `layerfs-acl-${kind}-`));
  let m: Mounted | undefined;
  try {
    m = mountUnion(kind, layout(base), join(base, 'mnt'), { extra });
    fn(m);
  } finally {
    m?.unmount();
    removeTree(base);
  }
}

test('ACLs: layerfs gives what kernel overlayfs gives (setfacl/getfacl, copy-up, chmod, default ACLs, non-root checks)', (t) => {
  if (!requireMount(t, 'overlay') || !requireMount(t, 'layerfs')) return;
  need('setfacl');
  need('setpriv');
  const got: Record<string, string> = {};
  for (const kind of ['overlay', 'layerfs'] as const) withMount(kind, [], (m) => (got[kind] = transcript(m.mnt)));
  const ov = got.overlay!;
  if (process.env.LAYERFS_ACL_SHOW) console.log(`${ov}\n----\n${got.layerfs}`);
  // the oracle says what the script means to check
  const line = (s: string, label: string): string => s.split('\n').find((l) => l.startsWith(label + ':')) ?? '';
  const verdict = (label: string): string => line(ov, label).split(' ').at(-1)!;
  assert.equal(verdict('named user denied by ACL'), 'denied');
  assert.equal(verdict('stranger reads by mode'), 'ok');
  assert.equal(verdict('named user writes by ACL (copy-up)'), 'ok');
  assert.equal(verdict('named user denied after chmod'), 'denied');
  assert.equal(verdict('stranger denied by new entry'), 'denied');
  assert.match(line(ov, 'create under default ACL (umask ignored)'), /inherit\/f 660 \| inherit\/d 2?770/);
  assert.match(line(ov, 'umask where no default ACL'), /plain\/f 640 \| plain\/d 750/);
  assert.match(line(ov, 'non-root umask where no default ACL'), /plain\/u 664 1000 \| plain\/ud 775 1000/);
  const a = got.layerfs!.split('\n');
  const b = ov.split('\n');
  for (let i = 0; i < b.length; i++) assert.equal(a[i], b[i], `step ${i}: layerfs vs overlayfs`);
});

test('ACLs: noacl turns them off (the kernel neither enforces ACLs nor leaves the umask to us)', (t) => {
  if (!requireMount(t, 'layerfs')) return;
  need('setfacl');
  withMount('layerfs', ['noacl'], (m) => {
    // the ACL entry that denies NAMED is not enforced: the mode lets everyone read
    assert.equal(sh(as(NAMED, 'cat denied >/dev/null'), m.mnt).trim(), 'ok');
    // nor is the one that grants: the mode alone counts
    assert.equal(sh(as(NAMED, 'cat granted >/dev/null'), m.mnt).trim(), 'denied');
    // the ACL xattrs still show as stored
    assert.match(sh('getfacl -npc denied', m.mnt), new RegExp(`user:${NAMED}:---`));
    // the kernel applied the umask; the default ACL's other::--- does not reach the mode
    assert.equal(sh('umask 022; : > inherit/f && stat -c %a inherit/f', m.mnt).trim(), '644');
  });
  withMount('layerfs', [], (m) => {
    // the same steps with ACLs on: both entries count, the default ACL gives the mode
    assert.equal(sh(as(NAMED, 'cat denied >/dev/null'), m.mnt).trim(), 'denied');
    assert.equal(sh(as(NAMED, 'cat granted >/dev/null'), m.mnt).trim(), 'ok');
    assert.equal(sh('umask 022; : > inherit/f && stat -c %a inherit/f', m.mnt).trim(), '660');
  });
});
