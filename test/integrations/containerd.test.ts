/**
 * `layerfs containerd-snapshotter`: the gRPC service on its own (every method, bad requests
 * answered with the right code while serving goes on, state kept across a restart), and a real
 * containerd 1.6 using it as a proxy snapshotter (images import, ctr run writing and deleting
 * lower files, ctr snapshots ls/info/usage/commit/view/rm, image removal freeing every layer),
 * compared with the same containerd on its `native` snapshotter.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startContainerdSnapshotter, type Snapshotter } from '../../src/integrations/containerd-snapshotter.js';
import { BIN, REPO, cli } from '../helpers/mount.js';
import { CONTAINERD, CTR, busyboxTar, daemonsIn, mountsUnder, ok, requireTools, sh, startLayerfs, startServer, unmountUnder, waitFor, writeContainerdConfig } from './hosts.js';

const RUNC = '/usr/sbin/runc';
const MOUNT_FUSE3 = '/usr/sbin/mount.fuse3';

// ---- a grpc-js client of our own .proto ----------------------------------------------------------

type Reply = Record<string, unknown>;
interface Client {
  call(method: string, req: Reply): Promise<Reply>;
  list(filters?: string[]): Promise<Reply[]>;
  /** Sends `bytes` as the request of `method`, unparsed. */
  raw(method: string, bytes: Buffer): Promise<Reply>;
  close(): void;
}

function client(socket: string): Client {
  const def = protoLoader.loadSync('snapshots.proto', { includeDirs: [path.join(REPO, 'proto')], keepCase: true, longs: Number, enums: String, defaults: true });
  const Ctor = (grpc.loadPackageDefinition(def) as unknown as { containerd: { services: { snapshots: { v1: { Snapshots: grpc.ServiceClientConstructor } } } } }).containerd.services.snapshots.v1.Snapshots;
  const c = new Ctor(`unix://${socket}`, grpc.credentials.createInsecure());
  const svc = Ctor.service;
  return {
    call: (method, req) =>
      new Promise((resolve, reject) => {
        (c[method] as (r: Reply, cb: (e: grpc.ServiceError | null, v: Reply) => void) => void).call(c, req, (e, v) => (e ? reject(e) : resolve(v)));
      }),
    list: (filters = []) =>
      new Promise((resolve, reject) => {
        const out: Reply[] = [];
        const s = (c.List as (r: Reply) => grpc.ClientReadableStream<Reply>).call(c, { filters });
        s.on('data', (d: Reply) => out.push(...(d.info as Reply[])));
        s.on('error', reject);
        s.on('end', () => resolve(out));
      }),
    raw: (method, bytes) =>
      new Promise((resolve, reject) => {
        const m = svc[method]!;
        c.makeUnaryRequest(m.path, (b: Buffer) => b, m.responseDeserialize, bytes, (e, v) => (e ? reject(e) : resolve(v as Reply)));
      }),
    close: () => c.close(),
  };
}

async function rejectsWith(p: Promise<unknown>, code: grpc.status, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: grpc.ServiceError) => {
    assert.equal(e.code, code, `${grpc.status[e.code]}: ${e.details}`);
    assert.match(e.details, re);
    assert.ok(!e.details.includes('\n'), 'one line');
    return true;
  });
}

const S = grpc.status;

test('gRPC service: every method, mounts by layer count, bad requests get a clean status, state survives a restart', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-snap-'));
  const socket = path.join(dir, 'snap.sock');
  const root = path.join(dir, 'root');
  const lines: string[] = [];
  let srv: Snapshotter | undefined = await startContainerdSnapshotter({ address: socket, root, log: (l) => lines.push(l) });
  let c = client(socket);
  t.after(async () => {
    c.close();
    await srv?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const diff = (id: number): string => path.join(root, 'diff', String(id));

  // a base layer: active without parent is a plain rw bind mount of its layer dir
  let r = await c.call('Prepare', { key: 'base-a', labels: { 'containerd.io/snapshot.ref': 'x' } });
  assert.deepEqual(r.mounts, [{ type: 'bind', source: diff(1), target: '', options: ['rw', 'rbind'] }]);
  fs.mkdirSync(path.join(diff(1), 'etc'));
  fs.writeFileSync(path.join(diff(1), 'etc/hello'), 'hello\n');
  assert.deepEqual(await c.call('Usage', { key: 'base-a' }), { size: 6, inodes: 3 });
  await c.call('Commit', { name: 'base', key: 'base-a', labels: { l: '1' } });
  await rejectsWith(c.call('Stat', { key: 'base-a' }), S.NOT_FOUND, /snapshot "base-a" does not exist/);
  r = await c.call('Stat', { key: 'base' });
  const info = r.info as Reply;
  assert.equal(info.name, 'base');
  assert.equal(info.kind, 'COMMITTED');
  assert.deepEqual(info.labels, { l: '1' });
  assert.ok(Math.abs(Number((info.created_at as Reply).seconds) - Date.now() / 1000) < 60);

  // over one committed layer: an active snapshot is a union (fuse3.layerfs), a view a ro bind mount
  r = await c.call('Prepare', { key: 'top-a', parent: 'base' });
  assert.deepEqual(r.mounts, [{ type: 'fuse3.layerfs', source: 'layerfs', target: '', options: [`dirs=${diff(2)}=rw:${diff(1)}=ro`] }]);
  assert.deepEqual((await c.call('Mounts', { key: 'top-a' })).mounts, r.mounts);
  fs.writeFileSync(path.join(diff(2), 'f'), 'abc');
  await c.call('Commit', { name: 'top', key: 'top-a' });
  r = await c.call('View', { key: 'v1', parent: 'base' });
  assert.deepEqual(r.mounts, [{ type: 'bind', source: diff(1), target: '', options: ['ro', 'rbind'] }]);
  r = await c.call('View', { key: 'v2', parent: 'top' });
  assert.deepEqual(r.mounts, [{ type: 'fuse3.layerfs', source: 'layerfs', target: '', options: [`dirs=${diff(2)}=ro:${diff(1)}=ro`, 'ro'] }]);
  assert.equal(((await c.call('Stat', { key: 'v2' })).info as Reply).kind, 'VIEW');

  // labels: one by path, all at once
  r = await c.call('Update', { info: { name: 'top', labels: { a: '1', b: '2' } }, update_mask: { paths: ['labels.a'] } });
  assert.deepEqual((r.info as Reply).labels, { a: '1' });
  r = await c.call('Update', { info: { name: 'top', labels: { b: '2' } }, update_mask: { paths: ['labels'] } });
  assert.deepEqual((r.info as Reply).labels, { b: '2' });

  // List with and without filters
  const names = (infos: Reply[]): string[] => infos.map((i) => String(i.name)).sort();
  assert.deepEqual(names(await c.list()), ['base', 'top', 'v1', 'v2']);
  assert.deepEqual(names(await c.list(['kind==view'])), ['v1', 'v2']);
  assert.deepEqual(names(await c.list(['labels.b==2', 'name==v1'])), ['top', 'v1']);
  assert.deepEqual(names(await c.list(['parent==base,kind==committed'])), ['top']);
  assert.deepEqual(names(await c.list(['labels."containerd.io/snapshot.ref"'])), []);

  // bad requests: a clean status each, logged once each, and serving goes on
  const before = lines.length;
  const bad: [Promise<unknown>, grpc.status, RegExp][] = [
    [c.call('Prepare', {}), S.INVALID_ARGUMENT, /missing key/],
    [c.call('Prepare', { key: 'x', parent: 'nope' }), S.NOT_FOUND, /parent snapshot "nope" does not exist/],
    [c.call('Prepare', { key: 'x', parent: 'v1' }), S.INVALID_ARGUMENT, /parent snapshot "v1" is not committed/],
    [c.call('Prepare', { key: 'top' }), S.ALREADY_EXISTS, /snapshot "top" already exists/],
    [c.call('Prepare', { key: 'x', labels: { k: 'v'.repeat(5000) } }), S.INVALID_ARGUMENT, /exceed 4096 bytes/],
    [c.call('View', { key: 'x'.repeat(5000) }), S.INVALID_ARGUMENT, /key longer than/],
    [c.call('Mounts', { key: 'top' }), S.FAILED_PRECONDITION, /is committed/],
    [c.call('Mounts', { key: 'nope' }), S.NOT_FOUND, /does not exist/],
    [c.call('Commit', { name: 'y', key: 'v1' }), S.FAILED_PRECONDITION, /not active/],
    [c.call('Commit', { name: 'y', key: 'nope' }), S.NOT_FOUND, /does not exist/],
    [c.call('Commit', { name: '', key: 'v1' }), S.INVALID_ARGUMENT, /missing name/],
    [c.call('Remove', { key: 'base' }), S.FAILED_PRECONDITION, /has a child/],
    [c.call('Remove', { key: 'nope' }), S.NOT_FOUND, /does not exist/],
    [c.call('Update', {}), S.INVALID_ARGUMENT, /missing info/],
    [c.call('Update', { info: { name: 'top', kind: 9 } }), S.INVALID_ARGUMENT, /unknown snapshot kind 9/],
    [c.call('Update', { info: { name: 'top' }, update_mask: { paths: ['parent'] } }), S.INVALID_ARGUMENT, /only labels can change/],
    [c.call('Update', { info: { name: 'nope' } }), S.NOT_FOUND, /does not exist/],
    [c.call('Usage', { key: '' }), S.INVALID_ARGUMENT, /missing key/],
    [c.list(['labels.a==1,']), S.INVALID_ARGUMENT, /invalid filter/],
    [c.list(['name~=(']), S.INVALID_ARGUMENT, /bad regular expression/],
  ];
  for (const [p, code, re] of bad) await rejectsWith(p, code, re);
  assert.equal(lines.length - before, bad.length, lines.slice(before).join('\n'));
  // bytes that are no protobuf at all
  await assert.rejects(c.raw('Stat', Buffer.from([0xff, 0xff, 0xff, 0xff])), (e: grpc.ServiceError) => e.code === S.INTERNAL);
  assert.equal(((await c.call('Stat', { key: 'top' })).info as Reply).name, 'top');

  // remove: children first; the layer goes with the record
  await c.call('Remove', { key: 'v2' });
  assert.ok(!fs.existsSync(diff(4)));
  // an orphan layer (a crash between making a layer and recording it) goes at Cleanup
  fs.mkdirSync(diff(99));
  await c.call('Cleanup', {});
  assert.ok(!fs.existsSync(diff(99)));
  assert.ok(fs.existsSync(diff(3)), 'v1 stays');

  // the state is on disk: a new server on the same root sees it; a second one on a live socket is refused
  await assert.rejects(startContainerdSnapshotter({ address: socket, root }), /another process serves this socket/);
  c.close();
  await srv.close();
  srv = undefined;
  assert.ok(!fs.existsSync(socket), 'socket removed');
  srv = await startContainerdSnapshotter({ address: socket, root, log: (l) => lines.push(l) });
  c = client(socket);
  assert.deepEqual(names(await c.list()), ['base', 'top', 'v1']);
  assert.deepEqual(await c.call('Usage', { key: 'top' }), { size: 3, inodes: 2 });
  for (const k of ['v1', 'top', 'base']) await c.call('Remove', { key: k });
  assert.deepEqual(fs.readdirSync(path.join(root, 'diff')), []);
  await assert.rejects(startContainerdSnapshotter({ address: path.join(dir, 'x.sock'), root: path.join(dir, 'a,b') }), /root path may not contain commas/);
});

// ---- a real containerd ---------------------------------------------------------------------------

/** A two-layer busybox image as a docker archive, made with our own store: busybox, then a layer
 *  adding /etc/motd, appending to /etc/passwd and deleting /bin/vi. */
function buildImage(tmp: string): string {
  const store = path.join(tmp, 'store');
  const base = busyboxTar(tmp);
  const l2 = path.join(tmp, 'l2');
  fs.mkdirSync(path.join(l2, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(l2, 'bin'));
  fs.writeFileSync(path.join(l2, 'etc/motd'), 'hello from layer 2\n');
  fs.writeFileSync(path.join(l2, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nlayer2:x:1:1::/:/bin/sh\n');
  fs.writeFileSync(path.join(l2, 'bin/.wh.vi'), '');
  ok('tar', ['-C', l2, '-cf', path.join(tmp, 'l2.tar'), '.']);
  const run = (args: string[]): void => {
    const r = cli([...args, '--root', store], { timeoutMs: 120_000 });
    assert.equal(r.status, 0, `layerfs ${args.join(' ')}: ${r.stderr}`);
  };
  run(['layer', 'import', '--name', 'bb:1', base]);
  run(['layer', 'import', '--parent', 'bb:1', '--name', 'bb:2', path.join(tmp, 'l2.tar')]);
  const archive = path.join(tmp, 'bb.tar');
  run(['image', 'export', '--tag', 'bb:2', 'bb:2', archive]);
  fs.rmSync(store, { recursive: true, force: true });
  return archive;
}

const IMAGE = 'docker.io/library/bb:2';
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

describe('containerd 1.6 with a layerfs proxy snapshotter', { timeout: 900_000 }, () => {
  test('images import, ctr run, ctr snapshots: as on native; nothing left behind', async (t) => {
    if (!requireTools(t, [CONTAINERD, CTR, RUNC, MOUNT_FUSE3])) return;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-ctrd-'));
    const servers: { stop(): Promise<void> }[] = [];
    t.after(async () => {
      for (const s of servers.reverse()) await s.stop();
      unmountUnder(tmp);
      fs.rmSync(tmp, { recursive: true, force: true });
    });
    const archive = buildImage(tmp);

    // mount.fuse3 runs `layerfs` from PATH: this tree's, for containerd, its shims and ctr
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(BIN, path.join(bin, 'layerfs'));
    // ... and a resident daemon of this tree's own, in its own runtime dir (never a daemon another
    // checkout started), stopped by pid at the end
    const run = path.join(tmp, 'run');
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`, LAYERFS_RUN_DIR: run };
    servers.push(daemonsIn(run));

    const snapSock = path.join(tmp, 'snap.sock');
    const snapRoot = path.join(tmp, 'snapshots');
    const snap = startLayerfs(['containerd-snapshotter', '--address', snapSock, '--root', snapRoot], path.join(tmp, 'snapshotter.log'));
    servers.push(snap);
    await waitFor('containerd-snapshotter', () => fs.existsSync(snapSock), 30_000, snap.proc);

    const address = path.join(tmp, 'containerd.sock');
    writeContainerdConfig(path.join(tmp, 'config.toml'), tmp, address, snapSock);
    const containerd = startServer(CONTAINERD, ['--config', path.join(tmp, 'config.toml')], path.join(tmp, 'containerd.log'), env);
    servers.push(containerd);
    const ctr = (args: string[], timeoutMs = 180_000): string => ok(CTR, ['-a', address, '-n', 'test', ...args], { env, timeoutMs });
    try {
      await waitFor('containerd', () => sh(CTR, ['-a', address, 'version'], { env, timeoutMs: 10_000 }).status === 0, 60_000, containerd.proc);
      assert.match(ctr(['plugins', 'ls']), /io\.containerd\.snapshotter\.v1\s+layerfs\s+-\s+ok/);

      const story = (sn: string): string[] => {
        const out: string[] = [];
        ctr(['images', 'import', '--snapshotter', sn, archive]);
        // the image's layers as snapshots: chain ids, parents, kinds
        out.push(ctr(['snapshots', '--snapshotter', sn, 'ls']).split('\n').sort().join('\n'));
        out.push(ctr(['run', '--rm', '--snapshotter', sn, IMAGE, `r1-${sn}`, 'sh', '-c', 'cat /etc/motd /etc/passwd; ls /bin/vi 2>&1; ls /bin | wc -l; true']));
        out.push(
          ctr(['run', '--rm', '--snapshotter', sn, IMAGE, `r2-${sn}`, 'sh', '-c',
            'echo x > /etc/new; echo more >> /etc/passwd; rm /bin/ls; mv /etc/motd /etc/motd2; mkdir -p /data/d; echo f > /data/d/f; ' +
              'cat /etc/new /etc/passwd /etc/motd2 2>&1; ls /data/d /etc 2>&1; ls /bin/ls /etc/motd 2>&1; true']),
        );
        // a kept container: its snapshot (active), info, usage, commit, a view of the commit
        ctr(['run', '--snapshotter', sn, IMAGE, `c-${sn}`, 'sh', '-c', 'echo kept > /etc/kept; rm /bin/vi /bin/echo 2>/dev/null; true']);
        const infoOf = (key: string): Record<string, unknown> => {
          const i = JSON.parse(ctr(['snapshots', '--snapshotter', sn, 'info', key])) as Record<string, unknown>;
          // label values hold times (containerd.io/gc.root): compare the names
          return { Name: i.Name, Parent: i.Parent, Kind: i.Kind, Labels: Object.keys((i.Labels as Record<string, string> | undefined) ?? {}).sort() };
        };
        out.push(JSON.stringify(infoOf(`c-${sn}`)));
        const usage = ctr(['snapshots', '--snapshotter', sn, 'usage', `c-${sn}`]);
        out.push(`usage of c-${sn}: ${usage.split('\n')[1]?.trim().split(/\s+/).slice(1).join(' ')}`);
        ctr(['snapshots', '--snapshotter', sn, 'commit', `kept-${sn}`, `c-${sn}`]);
        out.push(JSON.stringify(infoOf(`kept-${sn}`)).replace(`kept-${sn}`, 'kept'));
        ctr(['snapshots', '--snapshotter', sn, 'view', `v-${sn}`, `kept-${sn}`]);
        const target = path.join(tmp, `view-${sn}`);
        fs.mkdirSync(target);
        const cmd = ctr(['snapshots', '--snapshotter', sn, 'mounts', target, `v-${sn}`]).trim();
        // `mount -t TYPE SOURCE TARGET -o OPTS`, mounted as containerd would: fuse3.* through mount.fuse3
        const [, type, source, , opts] = /^mount -t (\S+) (\S+) (\S+) -o (\S+)$/.exec(cmd) ?? assert.fail(`ctr snapshots mounts printed ${cmd}`);
        out.push(type!);
        if (type!.startsWith('fuse3.')) ok(MOUNT_FUSE3, [source!, target, '-o', opts!, '-t', type!.slice('fuse3.'.length)], { env });
        else ok('mount', ['-t', type!, source!, target, '-o', opts!], { env });
        try {
          out.push(ok('/bin/sh', ['-c', `cd ${target} && cat etc/kept etc/motd && ls bin | wc -l && ls bin/vi bin/echo 2>&1; touch x 2>&1; true`]));
        } finally {
          ok('umount', [target]);
        }
        ctr(['snapshots', '--snapshotter', sn, 'rm', `v-${sn}`, `kept-${sn}`]);
        ctr(['containers', 'rm', `c-${sn}`]);
        return out;
      };

      const native = story('native');
      const ours = story('layerfs');
      const norm = (o: string[]): string[] => o.map((s) => s.replaceAll('-native', '-SN').replaceAll('-layerfs', '-SN'));
      // the container's own layer: layerfs keeps only what changed; native copies the whole tree
      const usageLine = (o: string[]): string => o.find((s) => s.startsWith('usage of'))!;
      t.diagnostic(`${usageLine(ours)}; ${usageLine(native)}`);
      assert.match(usageLine(ours), /: \d+(\.\d+)? (B|KiB) \d+$/, 'layerfs: a few bytes of changes');
      assert.match(usageLine(native), /: \d+(\.\d+)? MiB \d+$/, 'native: a copy of the tree');
      const withoutUsage = (o: string[]): string[] => norm(o).filter((s) => !s.startsWith('usage of'));
      // mount types differ by design (native: bind; layerfs: a union of three layers)
      const mountType = (o: string[]): string => o[6]!;
      assert.equal(mountType(native), 'bind');
      assert.equal(mountType(ours), 'fuse3.layerfs');
      assert.deepEqual(withoutUsage(ours).filter((s) => s !== 'fuse3.layerfs'), withoutUsage(native).filter((s) => s !== 'bind'));
      assert.match(ours[1]!, /hello from layer 2\n.*layer2:x:1:1.*\nls: \/bin\/vi: No such file or directory\n/s);
      assert.match(ours[2]!, /^x\nroot:x:0:0:root:\/root:\/bin\/sh\nlayer2:x:1:1::\/:\/bin\/sh\nmore\nhello from layer 2\n/);
      assert.match(ours[2]!, /ls: \/bin\/ls: No such file or directory\nls: \/etc\/motd: No such file or directory\n$/);
      assert.match(ours[ours.length - 1]!, /^kept\nhello from layer 2\n\d+\nls: .*bin\/vi.*: No such file or directory\nls: .*bin\/echo.*: No such file or directory\ntouch: .*x.*: Read-only file system\n$/);

      // ctr run --rm times: layerfs next to native and overlayfs
      ctr(['images', 'import', '--snapshotter', 'overlayfs', archive]);
      const times: Record<string, number[]> = { native: [], overlayfs: [], layerfs: [] };
      for (let i = 0; i < 5; i++) {
        for (const sn of Object.keys(times)) {
          const t0 = performance.now();
          ctr(['run', '--rm', '--snapshotter', sn, IMAGE, `t-${sn}-${i}`, 'true']);
          times[sn]!.push(performance.now() - t0);
        }
      }
      t.diagnostic(`ctr run --rm (median of 5): ${Object.entries(times).map(([k, v]) => `${k} ${median(v).toFixed(0)} ms`).join(', ')}`);

      // removing the image frees its snapshots through containerd's garbage collector
      ctr(['images', 'rm', '--sync', IMAGE]);
      await waitFor('snapshots removed', () => ctr(['snapshots', '--snapshotter', 'layerfs', 'ls']).trim().split('\n').length === 1, 30_000);
      assert.deepEqual(fs.readdirSync(path.join(snapRoot, 'diff')), []);
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(snapRoot, 'snapshots.json'), 'utf8')).snapshots, {});
    } catch (e) {
      const tail = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').slice(-15).join('\n') : '');
      throw new Error(`${(e as Error).message}\n--- containerd log ---\n${tail(path.join(tmp, 'containerd.log'))}\n--- snapshotter log ---\n${tail(path.join(tmp, 'snapshotter.log'))}`);
    } finally {
      await containerd.stop();
    }
    await snap.stop();
    assert.equal(snap.proc.exitCode, 0, fs.readFileSync(path.join(tmp, 'snapshotter.log'), 'utf8'));
    assert.ok(fs.readdirSync(run).some((n) => n.startsWith('daemon-')), 'the mounts went through our own daemon');
    assert.ok(!fs.existsSync(snapSock), 'socket removed');
    assert.deepEqual(mountsUnder(tmp), [], 'nothing left mounted');
  });
});
