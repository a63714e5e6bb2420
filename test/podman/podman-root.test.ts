/**
 * podman (as root) with layerfs as its overlay mount program, against podman on kernel overlayfs:
 * `podman run`, `podman build` (RUN steps that create, delete, chmod, rename lower files and dirs,
 * replace a lower dir, append to /etc/passwd), `podman diff` of a container and of an image, and
 * `podman commit`. Each podman has its own storage and runroot under a temp dir; the layerfs one
 * its own resident daemon (LAYERFS_RUN_DIR), stopped by pid at the end. The base image is built
 * locally from the static busybox (no registry).
 *
 * What must match: the committed and exported contents exactly (every path, type, mode, owner, size,
 * content, link target), and the `podman diff` lists. podman diffs with kernel overlayfs natively
 * (walking the upper dir) but with any mount program through its "naive" diff (merged against
 * merged), which says the same changes another way (podman.ts naiveDiffForm); layerfs's list must
 * equal kernel overlayfs's list said that way.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN, fuseUnavailable } from '../helpers/mount.js';
import { getXattr } from '../helpers/tree-spec.js';
import { PODMAN, Podman, VM_RUN_FLAGS, busyboxImageTar, mountsUnder, naiveDiffForm, treeLines, unmountUnder, type Tree } from './podman.js';

const why = fuseUnavailable() ?? (fs.existsSync(PODMAN) ? null : `${PODMAN} missing`) ?? (fs.existsSync('/bin/busybox') ? null : '/bin/busybox missing');
if (why !== null && process.env.CI) throw new Error(`podman tests cannot run: ${why}`);
const opts = { skip: why ?? false, timeout: 900_000 };

const CONTAINERFILE_1 = `FROM base:1
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && mkdir -p /home/app && echo hi > /home/app/.profile && chown -R 1000:1000 /home/app
RUN rm -r /data/gone && mkdir /data/gone && echo new > /data/gone/n
RUN chmod 0700 /data/keep && chmod 0600 /data/keep/f && mv /data/keep/f /data/keep/g && rm /bin/vi && mkdir -p /opt/x && ln -s /data/keep/g /opt/link
RUN mv /data/keep /data/moved && echo z >> /etc/passwd && rm /data/tree/a/b/c && touch /data/tree/a/b/d
`;
const CONTAINERFILE_2 = `FROM built:1
RUN rm -r /data/tree && mkdir /data/tree && echo t > /data/tree/fresh && echo 'app:x:1000:' >> /etc/group && chmod 1777 /opt/x
`;
// run in a container of built:1, then committed
const CONTAINER_SCRIPT =
  'echo q >> /etc/passwd; rm -r /data/moved; mkdir /data/moved; rm /home/app/.profile; ' +
  'mkdir -p /srv/a/b && echo deep > /srv/a/b/f; mv /data/gone/n /data/gone/m; chmod 0640 /etc/group; touch /tmp/new';

let top = '';
let lfs: Podman;
let kern: Podman;
const runDir = () => path.join(top, 'layerfs-run');

before(() => {
  if (why !== null) return;
  top = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-podman-'));
  const env = { ...process.env, LAYERFS_RUN_DIR: runDir(), LAYERFS_DAEMON_IDLE_MS: '1000' };
  lfs = new Podman({ dir: path.join(top, 'layerfs'), mountProgram: BIN, env });
  kern = new Podman({ dir: path.join(top, 'kernel') });
  const tar = busyboxImageTar(top, 'base', {
    'etc/hosts': '',
    'etc/hostname': '',
    'etc/resolv.conf': '',
    'data/gone/deep/f': 'x\n',
    'data/gone/g': 'g\n',
    'data/keep/f': 'k\n',
    'data/tree/a/b/c': 'c\n',
    'data/tree/top': 't\n',
  });
  for (const p of [lfs, kern]) p.importTar(tar, 'base:1');
});

after(async () => {
  if (!top) return;
  for (const p of [lfs, kern]) p.clean();
  // what the podman storages leave mounted (the storage home bind mount), then our daemon by pid
  const left = unmountUnder(top);
  const pidFiles = fs.existsSync(runDir()) ? fs.readdirSync(runDir()).filter((f) => /^daemon-.*\.pid$/.test(f)) : [];
  for (const f of pidFiles) {
    const pid = Number(fs.readFileSync(path.join(runDir(), f), 'utf8'));
    const end = Date.now() + 15_000;
    while (Date.now() < end && alive(pid)) await new Promise((r) => setTimeout(r, 200));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  assert.deepEqual(mountsUnder(top), []);
  fs.rmSync(top, { recursive: true, force: true });
  assert.ok(left.every((m) => !m.includes('/merged')), `container mounts left after podman rm: ${left.join(' ')}`);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function both<T>(fn: (p: Podman) => T): [T, T] {
  return [fn(lfs), fn(kern)];
}

test('podman run through layerfs: output, exit status, nothing mounted after --rm', opts, () => {
  const [a, b] = both((p) => p.ok(['run', '--rm', ...VM_RUN_FLAGS, 'base:1', 'sh', '-c', 'cat /data/keep/f; echo x > /tmp/y; cat /tmp/y; ls /data']));
  assert.equal(a, 'k\nx\ngone\nkeep\ntree\n');
  assert.equal(a, b);
  const r = lfs.run(['run', '--rm', ...VM_RUN_FLAGS, 'base:1', 'sh', '-c', 'exit 7']);
  assert.equal(r.status, 7);
  assert.ok(fs.readdirSync(runDir()).some((f) => f.startsWith('daemon-')), 'our own layerfs daemon served the mounts');
  assert.deepEqual(mountsUnder(lfs.root).filter((m) => m.endsWith('/merged')), [], 'no container mount left after run --rm');
});

test('podman build (create, delete, chmod, rename, replace a lower dir, append): same image contents as kernel overlayfs', opts, async () => {
  for (const [i, text] of [CONTAINERFILE_1, CONTAINERFILE_2].entries()) {
    const ctx = path.join(top, `ctx${i + 1}`);
    fs.mkdirSync(ctx, { recursive: true });
    fs.writeFileSync(path.join(ctx, 'Containerfile'), text);
  }
  for (const p of [lfs, kern]) {
    p.build(path.join(top, 'ctx1'), 'built:1');
    p.build(path.join(top, 'ctx2'), 'built:2');
  }
  const [t1, k1] = await Promise.all(both((p) => p.imageTree('built:1')));
  assert.deepEqual(treeLines(t1), treeLines(k1));
  const [t2, k2] = await Promise.all(both((p) => p.imageTree('built:2')));
  assert.deepEqual(treeLines(t2), treeLines(k2));
  // what the steps did, as a user would check it
  assert.match(t1.get('/etc/passwd')!, /^file 644 0:0 /);
  assert.equal(lfs.ok(['run', '--rm', ...VM_RUN_FLAGS, 'built:2', 'cat', '/etc/passwd']), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nz\n');
  assert.equal(t1.has('/data/gone/deep'), false);
  assert.equal(t1.has('/data/gone/g'), false);
  assert.ok(t1.get('/data/gone/n')?.startsWith('file '));
  assert.ok(t1.get('/data/moved')?.startsWith('directory 700 '));
  assert.ok(t1.get('/data/moved/g')?.startsWith('file 600 '));
  assert.equal(t1.has('/data/keep'), false);
  assert.equal(t1.has('/bin/vi'), false);
  assert.equal(t1.get('/opt/link'), 'symlink 777 0:0 0 -> /data/keep/g');
  assert.ok(t1.get('/home/app/.profile')?.startsWith('file 644 1000:1000 3 '));
  assert.deepEqual([...t2.keys()].filter((k) => k.startsWith('/data/tree')), ['/data/tree', '/data/tree/fresh']);
  assert.ok(t2.get('/opt/x')?.startsWith('directory 1777 '));
});

test('podman diff of a container and of a built image: the changes kernel overlayfs lists', opts, async () => {
  for (const p of [lfs, kern]) p.runSh('work-ctr', 'built:1', CONTAINER_SCRIPT);
  const [lc, kc] = both((p) => p.diff('work-ctr'));
  const [parent, child] = await Promise.all([kern.imageTree('built:1'), kern.containerTree('work-ctr')]);
  assert.deepEqual(lc, naiveDiffForm(kc, parent, child));
  for (const line of ['C /etc/passwd', 'C /etc/group', 'A /srv/a/b/f', 'A /tmp/new', 'D /home/app/.profile', 'D /data/moved/g', 'D /data/gone/n', 'A /data/gone/m']) {
    assert.ok(lc.includes(line), `podman diff lists ${line}: ${lc.join(', ')}`);
  }
  // the image's top layer against its parent (the RUN step that replaced /data/tree)
  const [li, ki] = both((p) => p.diff('built:2', 'image'));
  const k2 = await kern.imageTree('built:2');
  assert.deepEqual(li, naiveDiffForm(ki, parent, k2));
  assert.ok(li.includes('D /data/tree/a') && li.includes('A /data/tree/fresh'), li.join(', '));

  // the container's upper dir holds what kernel overlayfs writes there: char 0/0 whiteouts and a
  // trusted.overlay.opaque=y dir where a lower dir was removed and made again; no `.wh.` files
  const [lm, km] = both((p) => upperMarkers(p.ok(['inspect', '--format', '{{.GraphDriver.Data.UpperDir}}', 'work-ctr']).trim()));
  assert.deepEqual(lm, km);
  assert.ok(km.includes('/data/moved opaque') && km.includes('/home/app/.profile whiteout'), km.join(', '));
});

/** Whiteouts, opaque dirs and `.wh.` names in an upper dir (layerfs's private `.wh..wh.layerfs*` left out). */
function upperMarkers(upper: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const d of fs.readdirSync(path.join(upper, rel), { withFileTypes: true })) {
      const r = `${rel}/${d.name}`;
      if (d.name.startsWith('.wh..wh.layerfs')) continue;
      if (d.name.startsWith('.wh.')) out.push(`${r} aufs-marker`);
      else if (d.isCharacterDevice() && fs.lstatSync(path.join(upper, r)).rdev === 0) out.push(`${r} whiteout`);
      else if (d.isDirectory()) {
        if (getXattr(path.join(upper, r), 'trusted.overlay.opaque') === 'y') out.push(`${r} opaque`);
        walk(r);
      }
    }
  };
  walk('');
  return out.sort();
}

test('podman commit of that container: same contents as kernel overlayfs', opts, async () => {
  const [lcTree, kcTree] = await Promise.all(both((p) => p.containerTree('work-ctr')));
  assert.deepEqual(treeLines(lcTree), treeLines(kcTree));
  for (const p of [lfs, kern]) p.ok(['commit', '--quiet', 'work-ctr', 'committed:1']);
  const [a, b]: [Tree, Tree] = await Promise.all(both((p) => p.imageTree('committed:1')));
  assert.deepEqual(treeLines(a), treeLines(b));
  assert.equal(a.has('/data/moved/g'), false);
  assert.ok(a.get('/data/moved')?.startsWith('directory '));
  assert.ok(a.get('/etc/group')?.startsWith('file 640 '));
  // the committed image runs and shows the container's changes
  assert.equal(lfs.ok(['run', '--rm', ...VM_RUN_FLAGS, 'committed:1', 'sh', '-c', 'cat /srv/a/b/f /data/gone/m; ls -A /data/moved']), 'deep\nnew\n');
  for (const p of [lfs, kern]) p.ok(['rm', 'work-ctr']);
  assert.deepEqual(mountsUnder(lfs.root).filter((m) => m.endsWith('/merged')), [], 'no container mount left');
});
