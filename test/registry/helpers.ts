/**
 * Test helpers for the registry: Debian's docker-registry (distribution 2.8) on loopback with a temp
 * config and storage dir, started by the test and stopped by pid; optional TLS with a self-signed CA
 * (openssl) and htpasswd basic auth.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { LayerStore } from '../../src/store/store.js';
import { digestStream } from '../../src/store/tar-export.js';
import { makeTar, once, tempDir } from '../store/helpers.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

/** Whether every one of `bins` is installed; under CI (where setup.sh installs them) a missing one fails the file. */
export function haveTools(...bins: string[]): boolean {
  const missing = bins.filter((b) => !fs.existsSync(b));
  if (missing.length > 0 && process.env.CI) throw new Error(`registry tests cannot run: ${missing.join(', ')} missing`);
  return missing.length === 0;
}

/** A non-loopback IPv4 address of this machine, if it has one. */
export function outsideIPv4(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export interface Tls {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

/** A CA and a server certificate for 127.0.0.1/localhost signed by it. */
export function makeTls(dir: string): Tls {
  fs.mkdirSync(dir, { recursive: true });
  const p = (n: string): string => path.join(dir, n);
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'pipe' });
  };
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=layerfs test CA');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('ext.cnf'));
  return { dir, ca: p('ca.crt'), cert: p('server.crt'), key: p('server.key') };
}

export interface Registry {
  /** `127.0.0.1:PORT` */
  host: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts docker-registry on a free loopback port; resolves once /v2/ answers. */
export async function startRegistry(opts: { tls?: Tls; htpasswd?: { user: string; password: string }; ip?: string } = {}): Promise<Registry> {
  const ip = opts.ip ?? '127.0.0.1';
  const dir = tempDir('layerfs-registry-');
  const port = await freePort();
  let cfg = `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: ${ip}:${port}\n`;
  if (opts.tls) cfg += `  tls:\n    certificate: ${opts.tls.cert}\n    key: ${opts.tls.key}\n`;
  if (opts.htpasswd) {
    const line = execFileSync('htpasswd', ['-Bbn', opts.htpasswd.user, opts.htpasswd.password], { encoding: 'utf8' }).trim();
    fs.writeFileSync(path.join(dir, 'htpasswd'), line + '\n');
    cfg += `auth:\n  htpasswd:\n    realm: layerfs-test\n    path: ${dir}/htpasswd\n`;
  }
  fs.writeFileSync(path.join(dir, 'config.yml'), cfg);
  const log = fs.openSync(path.join(dir, 'registry.log'), 'w');
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGTERM');
      const t = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const status = await new Promise<number>((resolve) => {
      const mod = opts.tls ? https : http;
      const req = mod.get(`${opts.tls ? 'https' : 'http'}://${ip}:${port}/v2/`, { ...(opts.tls ? { ca: fs.readFileSync(opts.tls.ca) } : {}) }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
    });
    if (status === 200 || status === 401) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      const text = fs.readFileSync(path.join(dir, 'registry.log'), 'utf8');
      await stop();
      throw new Error(`docker-registry did not start: ${text.slice(0, 500)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { host: `${ip}:${port}`, dir, stop };
}

/** A store with a three-layer image `demo:3` (a deletion, a bigger file for chunked uploads). */
export async function demoStore(root: string): Promise<LayerStore> {
  const store = LayerStore.open(root);
  const big = randomBytes(300_000); // incompressible: the gzip blob stays bigger than a small chunk size
  await store.importTar(
    once(await makeTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/hello', body: 'hello\n' }, { name: 'gone', body: 'x' }])),
    { name: 'demo:1' },
  );
  await store.importTar(once(await makeTar([{ name: 'big.bin', body: big }, { name: 'link', type: 'symlink', linkname: 'etc/hello' }])), {
    parent: 'demo:1',
    name: 'demo:2',
  });
  await store.importTar(once(await makeTar([{ name: '.wh.gone' }, { name: 'etc/', type: 'directory' }, { name: 'etc/new', body: 'new', mode: 0o600 }])), {
    parent: 'demo:2',
    name: 'demo:3',
  });
  return store;
}

/** DiffIDs of image `ref`'s layers as our reproducible export writes them (what a push sends), base first. */
export async function exportedDiffIds(store: LayerStore, ref: string): Promise<string[]> {
  const out: string[] = [];
  for (const l of store.chain(store.resolve(ref)).reverse()) out.push((await digestStream(store.exportTar(l))).digest);
  return out;
}

/** DiffIDs of image `ref` as the store records them, base first. */
export function diffIds(store: LayerStore, ref: string): (string | null)[] {
  return store
    .chain(store.resolve(ref))
    .reverse()
    .map((l) => store.get(l).diffId);
}
