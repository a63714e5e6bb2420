/**
 * `layerfs docker-plugin`: the protocol on its own (bad requests answered, serving goes on), and
 * a real dockerd 20.10 using it as its storage driver (import, run, diff, commit, legacy build
 * with RUN steps changing lower files, save/load), compared with the same dockerd on vfs.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { startDockerPlugin } from '../../src/integrations/docker-plugin.js';
import { fuseMounter } from '../../src/integrations/fuse-mounter.js';
import { busyboxTar, mountsUnder, requireTools, startLayerfs, unmountUnder, waitFor, withDockerd, DOCKER, DOCKERD, type Server } from './hosts.js';

function post(socket: string, method: string, body: string | Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path: `/${method}`, method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('protocol: activate, init, create/exists/remove; bad requests get {"Err"} and serving goes on', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-dplug-'));
  const socket = path.join(dir, 'p.sock');
  const lines: string[] = [];
  const p = await startDockerPlugin({ socket, mounter: fuseMounter, log: (l) => lines.push(l) });
  t.after(async () => {
    await p.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  assert.deepEqual((await post(socket, 'Plugin.Activate', '{}')).json, { Implements: ['GraphDriver'] });
  let r = await post(socket, 'GraphDriver.Create', JSON.stringify({ ID: 'a'.repeat(64) }));
  assert.equal(r.status, 500);
  assert.match(String(r.json.Err), /Init has not been called/);
  assert.deepEqual((await post(socket, 'GraphDriver.Init', JSON.stringify({ Home: path.join(dir, 'home'), Opts: [] }))).json, { Err: '' });
  for (const [method, body, status, err] of [
    ['GraphDriver.Create', '{"ID": ', 400, /not JSON/],
    ['GraphDriver.Create', '[1,2]', 400, /JSON object/],
    ['GraphDriver.Create', '{"ID": 7}', 400, /ID must be a string/],
    ['GraphDriver.Create', '{}', 400, /missing ID/],
    ['GraphDriver.Create', '{"ID": "../../etc"}', 400, /invalid layer id/],
    ['GraphDriver.Create', JSON.stringify({ ID: 'b'.repeat(64), Parent: 'c'.repeat(64) }), 500, /no such layer/],
    ['GraphDriver.Get', JSON.stringify({ ID: 'd'.repeat(64) }), 500, /no such layer/],
    ['GraphDriver.Frobnicate', '{}', 404, /unknown method/],
  ] as const) {
    r = await post(socket, method, body);
    assert.equal(r.status, status, `${method} ${body}`);
    assert.match(String(r.json.Err), err);
    assert.ok(!String(r.json.Err).includes('\n'));
  }
  assert.equal(lines.length, 9, 'each failure logged once');
  // still serving
  assert.deepEqual((await post(socket, 'GraphDriver.Create', JSON.stringify({ ID: 'a'.repeat(64) }))).json, { Err: '' });
  assert.deepEqual((await post(socket, 'GraphDriver.Exists', JSON.stringify({ ID: 'a'.repeat(64) }))).json, { Exists: true });
  assert.ok(fs.statSync(path.join(dir, 'home/diff', 'a'.repeat(64))).isDirectory());
  assert.deepEqual((await post(socket, 'GraphDriver.Remove', JSON.stringify({ ID: 'a'.repeat(64) }))).json, { Err: '' });
  assert.deepEqual((await post(socket, 'GraphDriver.Exists', JSON.stringify({ ID: 'a'.repeat(64) }))).json, { Exists: false });
  // a second server on the same live socket is refused
  await assert.rejects(startDockerPlugin({ socket, mounter: fuseMounter }), /another process serves this socket/);
});

interface Result {
  transcript: string[];
  runMs: number[];
}

/** The same story on any storage driver; returns what a user sees, and `docker run` times. */
function story(docker: (args: string[]) => string, tmp: string, check: () => void = () => {}): Result {
  const out: string[] = [];
  docker(['import', busyboxTar(tmp), 'bb:1']);
  out.push(docker(['run', '--rm', 'bb:1', 'sh', '-c', 'echo hello; ls /bin/vi /etc; cat /etc/passwd']));
  docker(['run', '--name', 'c1', 'bb:1', 'sh', '-c', 'echo x > /etc/new; echo more >> /etc/passwd; rm /bin/vi; mkdir /data; touch /data/f']);
  // docker diff lists in the driver's walk order (vfs: directory order); compare as sorted lists
  out.push('diff:\n' + docker(['diff', 'c1']).split('\n').filter(Boolean).sort().join('\n') + '\n');
  docker(['commit', 'c1', 'bb:2']);
  docker(['rm', 'c1']);
  out.push(docker(['run', '--rm', 'bb:2', 'sh', '-c', 'cat /etc/new /etc/passwd; ls /data; ls /bin/vi 2>&1; true']));
  const ctx = path.join(tmp, 'ctx');
  fs.mkdirSync(ctx, { recursive: true });
  fs.writeFileSync(
    path.join(ctx, 'Dockerfile'),
    'FROM bb:2\nRUN echo built > /etc/built && rm /bin/ls /etc/new && echo changed >> /etc/passwd\nRUN mv /data /data2 && echo y > /data2/g\nRUN cat /etc/passwd /etc/built && ls /data2\n',
  );
  const build = docker(['build', '-q', '-t', 'bb:3', ctx]);
  assert.match(build, /^sha256:/);
  out.push(docker(['run', '--rm', 'bb:3', 'sh', '-c', 'cat /etc/passwd /etc/built; ls /data2 /etc; ls /bin/ls /etc/new /data 2>&1; true']));
  const saved = path.join(tmp, 'saved.tar');
  docker(['save', '-o', saved, 'bb:3']);
  docker(['rmi', 'bb:3', 'bb:2']);
  out.push(docker(['load', '-i', saved]));
  out.push(docker(['run', '--rm', 'bb:3', 'sh', '-c', 'cat /etc/passwd /etc/built; ls -R /data2; ls /bin/ls 2>&1; true']));
  const runMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    docker(['run', '--rm', 'bb:1', 'true']);
    runMs.push(performance.now() - t0);
  }
  check();
  docker(['rmi', 'bb:3', 'bb:1']);
  return { transcript: out, runMs };
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

describe('dockerd 20.10 with --storage-driver=layerfs', { timeout: 900_000 }, () => {
  test('import, run, diff, commit, build, save/load: as on vfs', async (t) => {
    if (!requireTools(t, [DOCKER, DOCKERD])) return;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-dockerd-'));
    const name = `layerfstest${process.pid}`;
    const spec = `/etc/docker/plugins/${name}.spec`;
    let plugin: Server | undefined;
    t.after(async () => {
      await plugin?.stop();
      fs.rmSync(spec, { force: true });
      unmountUnder(tmp);
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    let vfs: Result | undefined;
    await withDockerd(path.join(tmp, 'vfs'), 'vfs', (docker) => {
      vfs = story(docker, path.join(tmp, 'vfs'));
    });

    const socket = path.join(tmp, 'plugin.sock');
    plugin = startLayerfs(['docker-plugin', '--socket', socket], path.join(tmp, 'plugin.log'));
    await waitFor('docker-plugin', () => fs.existsSync(socket), 30_000, plugin.proc);
    fs.mkdirSync('/etc/docker/plugins', { recursive: true });
    fs.writeFileSync(spec, `unix://${socket}\n`);
    let ours: Result | undefined;
    const dir = path.join(tmp, 'lfs');
    await withDockerd(dir, name, (docker) => {
      const home = path.join(dir, 'data', name);
      ours = story(docker, dir, () => {
        // the layers are in the store's aufs layout under <data-root>/<driver>: one diff dir and one
        // parent list per layer of bb:3 (the images left), the n-th layer listing its n parents
        const n = Number(docker(['image', 'inspect', '-f', '{{len .RootFS.Layers}}', 'bb:3']).trim());
        assert.ok(n >= 4, `bb:3 has ${n} layers`);
        assert.equal(fs.readdirSync(path.join(home, 'diff')).length, n);
        const depths = fs.readdirSync(path.join(home, 'layers')).map((l) => fs.readFileSync(path.join(home, 'layers', l), 'utf8').split('\n').filter(Boolean).length);
        assert.deepEqual(depths.sort(), [...Array(n).keys()]);
      });
      assert.deepEqual(fs.readdirSync(path.join(home, 'diff')), [], 'rmi removed every layer');
    });
    assert.deepEqual(ours!.transcript, vfs!.transcript);
    assert.equal(ours!.transcript[1]!, 'diff:\nA /data\nA /data/f\nA /etc/new\nC /bin\nC /etc\nC /etc/passwd\nD /bin/vi\n');
    t.diagnostic(`docker run --rm bb true (median of 3): layerfs ${median(ours!.runMs).toFixed(0)} ms, vfs ${median(vfs!.runMs).toFixed(0)} ms`);

    await plugin.stop();
    assert.equal(plugin.proc.exitCode, 0, fs.readFileSync(path.join(tmp, 'plugin.log'), 'utf8'));
    assert.deepEqual(mountsUnder(tmp), [], 'nothing left mounted');
    assert.ok(!fs.existsSync(socket));
  });
});
