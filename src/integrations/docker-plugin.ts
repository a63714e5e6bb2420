/**
 * Docker's GraphDriver plugin protocol (legacy v1 plugins, dockerd --experimental): HTTP POSTs
 * of JSON over a unix socket, one path per method (`/Plugin.Activate`, `/GraphDriver.Create`,
 * ...). Each request names layers by Docker's ids; the layers live in a LayerDriver (the store's
 * aufs layout) under --root, or under the Home dockerd passes to Init (<data-root>/<driver>).
 *
 * Answers: JSON objects whose `Err` is empty on success; a failing call answers HTTP 500 (a
 * malformed request 400, an unknown method 404) with {"Err": "<one line>"}, and the service keeps
 * serving. Diff answers the raw tar; ApplyDiff reads the tar from the body (`?id=&parent=`).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { PassThrough } from 'node:stream';
import { isCode } from '../errors/index.js';
import { LayerDriver, checkDriverId, type Mounter } from '../store/layer-driver.js';
import type { ChangeKind } from '../store/changes.js';
import { clearStaleSocket } from './unix-socket.js';

const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';
/** Largest JSON request we read (every request is a few ids and options). */
const MAX_JSON = 1 << 20;

/** Docker's archive.ChangeType numbers. */
const CHANGE_KIND: Record<ChangeKind, number> = { C: 0, A: 1, D: 2 };

class RequestError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface DockerPluginOptions {
  socket: string;
  /** Layer root; default: the Home of GraphDriver.Init. */
  root?: string;
  mounter: Mounter;
  /** One line per failed request (default: stderr). */
  log?: (line: string) => void;
}

export interface DockerPlugin {
  /** The layer driver, once Init has run (or at once with a root). */
  driver(): LayerDriver | undefined;
  /** Stops listening, unmounts what it mounted and removes the socket. */
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

function str(body: Json, key: string, required: boolean): string {
  const v = body[key];
  if (v === undefined || v === null || v === '') {
    if (required) throw new RequestError(400, `missing ${key}`);
    return '';
  }
  if (typeof v !== 'string') throw new RequestError(400, `${key} must be a string`);
  return v;
}

async function readJson(req: http.IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_JSON) throw new RequestError(413, 'request body too large');
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RequestError(400, 'request body is not JSON');
  }
  if (v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new RequestError(400, 'request body must be a JSON object');
  return v as Json;
}

function errText(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.split('\n')[0]!.trim() || 'unknown error';
}

function send(res: http.ServerResponse, status: number, body: Json): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Starts serving; resolves once the socket listens. */
export async function startDockerPlugin(o: DockerPluginOptions): Promise<DockerPlugin> {
  const log = o.log ?? ((l: string) => process.stderr.write(`layerfs docker-plugin: ${l}\n`));
  let driver: LayerDriver | undefined = o.root !== undefined ? new LayerDriver(o.root, o.mounter) : undefined;

  const need = (): LayerDriver => {
    if (!driver) throw new RequestError(500, 'GraphDriver.Init has not been called');
    return driver;
  };
  const id = (body: Json, key = 'ID'): string => {
    try {
      return checkDriverId(str(body, key, true), key === 'ID' ? 'layer id' : 'parent id');
    } catch (e) {
      if (e instanceof RequestError) throw e;
      throw new RequestError(400, errText(e));
    }
  };
  const parentOf = (body: Json): string => (str(body, 'Parent', false) === '' ? '' : id(body, 'Parent'));

  const methods: Record<string, (body: Json) => Promise<Json> | Json> = {
    'Plugin.Activate': () => ({ Implements: ['GraphDriver'] }),
    'GraphDriver.Init': (b) => {
      const home = str(b, 'Home', o.root === undefined);
      if (driver === undefined) driver = new LayerDriver(home, o.mounter);
      return { Err: '' };
    },
    'GraphDriver.Capabilities': () => ({ Capabilities: { ReproducesExactDiffs: false } }),
    'GraphDriver.Create': (b) => {
      need().create(id(b), parentOf(b));
      return { Err: '' };
    },
    'GraphDriver.CreateReadWrite': (b) => {
      need().createReadWrite(id(b), parentOf(b));
      return { Err: '' };
    },
    'GraphDriver.Remove': async (b) => {
      const d = need();
      const i = id(b);
      if (d.exists(i)) await d.remove(i);
      return { Err: '' };
    },
    'GraphDriver.Get': async (b) => ({ Dir: await need().get(id(b)), Err: '' }),
    'GraphDriver.Put': async (b) => {
      await need().put(id(b));
      return { Err: '' };
    },
    'GraphDriver.Exists': (b) => ({ Exists: need().exists(id(b)) }),
    'GraphDriver.Status': () => {
      const d = need();
      const layers = fs.readdirSync(`${d.root}/diff`).length;
      return { Status: [['Root Dir', d.root], ['Layers', String(layers)], ['Mounted', String(d.mounted().size)]] };
    },
    'GraphDriver.GetMetadata': (b) => {
      const d = need();
      const i = id(b);
      if (!d.exists(i)) throw new RequestError(500, `no such layer: ${i}`);
      return { Metadata: { DiffDir: d.diffDir(i), ...(d.isReadWrite(i) ? { MergedDir: d.mntDir(i), Branches: d.branchString(i) } : {}) }, Err: '' };
    },
    'GraphDriver.Cleanup': async () => {
      await driver?.cleanup();
      return { Err: '' };
    },
    'GraphDriver.Changes': (b) => ({
      Changes: need().changes(id(b)).map((c) => ({ Path: c.path, Kind: CHANGE_KIND[c.kind] })),
      Err: '',
    }),
    'GraphDriver.DiffSize': (b) => ({ Size: need().diffSize(id(b)), Err: '' }),
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://plugin');
    const method = url.pathname.replace(/^\/+/, '');
    if (req.method !== 'POST') throw new RequestError(405, `${req.method ?? '?'} ${url.pathname}: only POST is served`);
    if (method === 'GraphDriver.ApplyDiff') {
      const d = need();
      const layer = (() => {
        try {
          return checkDriverId(url.searchParams.get('id') ?? '', 'layer id');
        } catch (e) {
          throw new RequestError(400, errText(e));
        }
      })();
      const body = new PassThrough();
      req.pipe(body);
      let size: number;
      try {
        size = await d.applyDiff(layer, body);
      } finally {
        // read the rest (tar padding, or what a failure left), so the answer reaches the client
        req.unpipe(body);
        body.destroy();
        if (!req.readableEnded) {
          req.resume();
          await new Promise((r) => req.once('end', r).once('error', r).once('close', r));
        }
      }
      send(res, 200, { Size: size, Err: '' });
      return;
    }
    if (method === 'GraphDriver.Diff') {
      const b = await readJson(req);
      const tar = need().diff(id(b));
      res.writeHead(200, { 'Content-Type': 'application/x-tar' });
      tar.on('error', (e) => {
        log(`Diff ${String(b.ID)}: ${errText(e)}`);
        res.destroy();
      });
      tar.pipe(res);
      return;
    }
    const fn = methods[method];
    if (!fn) {
      req.resume();
      throw new RequestError(404, `unknown method ${method || '(none)'}`);
    }
    const b = await readJson(req);
    send(res, 200, await fn(b));
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof RequestError ? e.status : 500;
      const msg = errText(e);
      log(`${req.url ?? ''}: ${msg}`);
      if (!req.readableEnded) req.resume();
      send(res, status, { Err: msg });
    });
  });
  server.on('clientError', (_e, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"Err":"malformed HTTP request"}');
    else socket.destroy();
  });

  await clearStaleSocket(o.socket);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  fs.chmodSync(o.socket, 0o600);

  return {
    driver: () => driver,
    async close(): Promise<void> {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await driver?.cleanup();
      try {
        fs.unlinkSync(o.socket);
      } catch (e) {
        if (!isCode(e, 'ENOENT')) throw e;
      }
    },
  };
}
