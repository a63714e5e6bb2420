/**
 * Images that travel through a registry run under the container engines on layerfs: a two-layer
 * busybox image built in a layerfs store is pushed (`layerfs image push`) to a docker-registry the
 * test starts, pulled (`layerfs image pull`) into a second store (same DiffIDs) and pushed again from
 * there (same manifest digest); then that pulled-and-pushed image is pulled from the registry and run
 * by podman (layerfs as its overlay mount program), by containerd 1.6 (the layerfs proxy snapshotter)
 * and by dockerd 20.10 (the layerfs graphdriver plugin). In each container: files of both layers read,
 * the whiteout of layer 2 honoured, a file written, a lower file deleted; a second container sees the
 * image unchanged.
 *
 * Every server (registry, containerd, snapshotter, dockerd, plugin) is started here with its state
 * under one temp dir and stopped by pid; every layerfs mount goes through a resident daemon of this
 * test's own (LAYERFS_RUN_DIR under the temp dir), stopped by pid at the end; nothing stays mounted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LayerStore } from '../../src/store/store.js';
import { BIN, CLI_MAIN, cli } from '../helpers/mount.js';
import { PODMAN, Podman, VM_RUN_FLAGS, busyboxImageTar } from '../podman/podman.js';
import { REGISTRY_BIN, diffIds, exportedDiffIds, startRegistry, type Registry } from '../registry/helpers.js';
import {
  CONTAINERD,
  CTR,
  DOCKER,
  DOCKERD,
  daemonsIn,
  mountsUnder,
  ok,
  requireTools,
  sh,
  startServer,
  unmountUnder,
  waitFor,
  withDockerd,
  writeContainerdConfig,
  type Server,
} from './hosts.js';

const RUNC = '/usr/sbin/runc';
const MOUNT_FUSE3 = '/usr/sbin/mount.fuse3';
const BASE_TOOLS = [REGISTRY_BIN, '/bin/busybox'];

/** Run in each container: both layers' files, layer 2's whiteout, a write, a lower file deleted. */
const SCRIPT = 'cat /etc/motd /data/base; ls /bin/vi 2>&1; echo w > /data/new; cat /data/new; rm /data/base; ls /data; ls /data/base 2>&1; true';
const EXPECTED = 'hello from layer 2\nbase\nls: /bin/vi: No such file or directory\nw\nnew\nls: /data/base: No such file or directory\n';
/** A second container of the image: the first one's changes are not in it. */
const SCRIPT2 = 'cat /data/base; ls /data';
const EXPECTED2 = 'base\nbase\n';

describe('images pushed and pulled by layerfs run under podman, containerd and dockerd on layerfs', { timeout: 1_200_000 }, () => {
  let tmp = '';
  let run = '';
  let bin = '';
  let reg: Registry | undefined;
  /** The image the engines pull: pulled by layerfs into a second store, pushed from there. */
  let ref = '';
  const stops: { stop(): Promise<void> }[] = [];
  const times: string[] = [];
  const timed = <T>(what: string, fn: () => T): T => {
    const t0 = performance.now();
    const r = fn();
    times.push(`${what} ${(performance.now() - t0).toFixed(0)} ms`);
    return r;
  };

  before(async () => {
    if (!BASE_TOOLS.every((x) => fs.existsSync(x))) return; // each test fails (CI) or skips on its own
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-regrun-'));
    run = path.join(tmp, 'run');
    // mount.fuse3 (containerd) runs `layerfs` from PATH: this tree's
    bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(BIN, path.join(bin, 'layerfs'));
    reg = await startRegistry();
  });

  after(async () => {
    if (!tmp) return;
    for (const s of stops.reverse()) await s.stop();
    await reg?.stop();
    await daemonsIn(run).stop();
    const left = unmountUnder(tmp);
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.deepEqual(left, [], 'nothing left mounted');
  });

  const env = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`, LAYERFS_RUN_DIR: run });

  test('layerfs image push, pull into another store (same DiffIDs), push again (same manifest)', async (t) => {
    t.after(() => void (times.length > 0 && t.diagnostic(times.splice(0).join(', '))));
    if (!requireTools(t, BASE_TOOLS)) return;
    const src = path.join(tmp, 'store-src');
    const dst = path.join(tmp, 'store-dst');
    const base = busyboxImageTar(tmp, 'base', { 'etc/hosts': '', 'etc/hostname': '', 'etc/resolv.conf': '', 'data/base': 'base\n' });
    const l2 = path.join(tmp, 'l2');
    fs.mkdirSync(path.join(l2, 'etc'), { recursive: true });
    fs.mkdirSync(path.join(l2, 'bin'));
    fs.writeFileSync(path.join(l2, 'etc/motd'), 'hello from layer 2\n');
    fs.writeFileSync(path.join(l2, 'bin/.wh.vi'), '');
    ok('tar', ['-C', l2, '-cf', path.join(tmp, 'l2.tar'), '.']);
    const lfs = (args: string[]): string => {
      const r = cli(args, { timeoutMs: 120_000 });
      assert.equal(r.status, 0, `layerfs ${args.join(' ')}: ${r.stderr}`);
      return r.stdout.trim();
    };
    lfs(['layer', 'import', '--name', 'bb:1', base, '--root', src]);
    lfs(['layer', 'import', '--parent', 'bb:1', '--name', 'bb:2', path.join(tmp, 'l2.tar'), '--root', src]);

    const pushed = timed('layerfs image push', () => lfs(['image', 'push', 'bb:2', `${reg!.host}/demo/bb:2`, '--root', src]));
    assert.match(pushed, /^sha256:[0-9a-f]{64}$/);
    timed('layerfs image pull', () => lfs(['image', 'pull', `${reg!.host}/demo/bb:2`, 'pulled:2', '--root', dst]));
    const sent = await exportedDiffIds(LayerStore.open(src), 'bb:2');
    assert.equal(sent.length, 2);
    assert.deepEqual(diffIds(LayerStore.open(dst), 'pulled:2'), sent, 'the pulled layers are byte-identical to the pushed ones');

    ref = `${reg!.host}/relay/bb:2`;
    const again = lfs(['image', 'push', 'pulled:2', ref, '--root', dst]);
    assert.equal(again, pushed, 'the pulled image pushed again: the same manifest');
  });

  test('podman (layerfs as mount program): pull from the registry, run --rm', async (t) => {
    t.after(() => void (times.length > 0 && t.diagnostic(times.splice(0).join(', '))));
    if (!requireTools(t, [...BASE_TOOLS, PODMAN])) return;
    assert.ok(ref, 'the image was pushed');
    const podman = new Podman({ dir: path.join(tmp, 'podman'), mountProgram: BIN, env: env() });
    stops.push({ stop: async () => void podman.clean() });
    timed('podman pull', () => podman.ok(['pull', '--quiet', '--tls-verify=false', ref]));
    assert.equal(timed('podman run --rm', () => podman.ok(['run', '--rm', ...VM_RUN_FLAGS, ref, 'sh', '-c', SCRIPT])), EXPECTED);
    assert.equal(podman.ok(['run', '--rm', ...VM_RUN_FLAGS, ref, 'sh', '-c', SCRIPT2]), EXPECTED2);
    assert.ok(fs.readdirSync(run).some((f) => f.startsWith('daemon-')), 'our own layerfs daemon served the mounts');
    assert.deepEqual(mountsUnder(podman.root).filter((m) => m.endsWith('/merged')), [], 'no container mount left after run --rm');
  });

  test('containerd (layerfs snapshotter): ctr images pull --plain-http, ctr run --rm', async (t) => {
    t.after(() => void (times.length > 0 && t.diagnostic(times.splice(0).join(', '))));
    if (!requireTools(t, [...BASE_TOOLS, CONTAINERD, CTR, RUNC, MOUNT_FUSE3])) return;
    assert.ok(ref, 'the image was pushed');
    const dir = path.join(tmp, 'containerd');
    fs.mkdirSync(dir);
    const snapSock = path.join(dir, 'snap.sock');
    const snapRoot = path.join(dir, 'snapshots');
    const snap = startServer(process.execPath, [CLI_MAIN, 'containerd-snapshotter', '--address', snapSock, '--root', snapRoot], path.join(dir, 'snapshotter.log'), env());
    stops.push(snap);
    await waitFor('containerd-snapshotter', () => fs.existsSync(snapSock), 30_000, snap.proc);
    const address = path.join(dir, 'containerd.sock');
    writeContainerdConfig(path.join(dir, 'config.toml'), dir, address, snapSock);
    const containerd = startServer(CONTAINERD, ['--config', path.join(dir, 'config.toml')], path.join(dir, 'containerd.log'), env());
    stops.push(containerd);
    const ctr = (args: string[]): string => ok(CTR, ['-a', address, '-n', 'test', ...args], { env: env(), timeoutMs: 180_000 });
    try {
      await waitFor('containerd', () => sh(CTR, ['-a', address, 'version'], { env: env(), timeoutMs: 10_000 }).status === 0, 60_000, containerd.proc);
      timed('ctr images pull', () => ctr(['images', 'pull', '--plain-http', '--snapshotter', 'layerfs', ref]));
      assert.equal(timed('ctr run --rm', () => ctr(['run', '--rm', '--snapshotter', 'layerfs', ref, 'r1', 'sh', '-c', SCRIPT])), EXPECTED);
      assert.equal(ctr(['run', '--rm', '--snapshotter', 'layerfs', ref, 'r2', 'sh', '-c', SCRIPT2]), EXPECTED2);
      // the image's two layers are snapshots in the layer store (the containers' own go with
      // containerd's garbage collection, which runs after `ctr run --rm` returns)
      await waitFor("only the image's two layers left", () => fs.readdirSync(path.join(snapRoot, 'diff')).length === 2, 30_000);
      ctr(['images', 'rm', '--sync', ref]);
      await waitFor('snapshots removed', () => fs.readdirSync(path.join(snapRoot, 'diff')).length === 0, 30_000);
    } catch (e) {
      const tail = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').slice(-15).join('\n') : '');
      throw new Error(`${(e as Error).message}\n--- containerd log ---\n${tail(path.join(dir, 'containerd.log'))}\n--- snapshotter log ---\n${tail(path.join(dir, 'snapshotter.log'))}`);
    } finally {
      await containerd.stop();
      await snap.stop();
    }
    assert.equal(snap.proc.exitCode, 0, fs.readFileSync(path.join(dir, 'snapshotter.log'), 'utf8'));
    assert.deepEqual(mountsUnder(dir), [], 'nothing left mounted');
  });

  test('dockerd (layerfs graphdriver plugin): docker pull from the registry, docker run --rm', async (t) => {
    t.after(() => void (times.length > 0 && t.diagnostic(times.splice(0).join(', '))));
    if (!requireTools(t, [...BASE_TOOLS, DOCKER, DOCKERD])) return;
    assert.ok(ref, 'the image was pushed');
    const dir = path.join(tmp, 'docker');
    fs.mkdirSync(dir);
    const name = `layerfsreg${process.pid}`;
    const spec = `/etc/docker/plugins/${name}.spec`;
    const socket = path.join(dir, 'plugin.sock');
    const plugin: Server = startServer(process.execPath, [CLI_MAIN, 'docker-plugin', '--socket', socket], path.join(dir, 'plugin.log'), env());
    stops.push(plugin);
    stops.push({ stop: async () => fs.rmSync(spec, { force: true }) });
    await waitFor('docker-plugin', () => fs.existsSync(socket), 30_000, plugin.proc);
    fs.mkdirSync('/etc/docker/plugins', { recursive: true });
    fs.writeFileSync(spec, `unix://${socket}\n`);
    await withDockerd(
      dir,
      name,
      (docker) => {
        timed('docker pull', () => docker(['pull', '--quiet', ref]));
        assert.equal(timed('docker run --rm', () => docker(['run', '--rm', ref, 'sh', '-c', SCRIPT])), EXPECTED);
        assert.equal(docker(['run', '--rm', ref, 'sh', '-c', SCRIPT2]), EXPECTED2);
        assert.equal(fs.readdirSync(path.join(dir, 'data', name, 'diff')).length, 2, "the image's two layers in the store's layout");
        docker(['rmi', ref]);
        assert.deepEqual(fs.readdirSync(path.join(dir, 'data', name, 'diff')), [], 'rmi removed every layer');
      },
      [`--insecure-registry=${reg!.host}`],
    );
    await plugin.stop();
    assert.equal(plugin.proc.exitCode, 0, fs.readFileSync(path.join(dir, 'plugin.log'), 'utf8'));
    assert.deepEqual(mountsUnder(dir), [], 'nothing left mounted');
  });
});
