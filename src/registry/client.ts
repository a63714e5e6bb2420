/**
 * An HTTP client for one registry, on Node's own http/https: picks the scheme (https; plain http
 * only for loopback registries or with `insecure`), trusts extra CA files, answers Basic and Bearer
 * challenges (one token covering every repository scope this client has needed), follows redirects
 * (a bounded number, dropping credentials when the host changes) and turns network and TLS
 * failures into one-line errors.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { Readable } from 'node:stream';
import { FsError, errnoCode } from '../errors/index.js';
import { basicHeader, findCredentials, parseChallenge, type Credentials } from './auth.js';
import { regErr } from './errors.js';
import { apiHost, isLoopback } from './reference.js';

export interface ClientOptions {
  /** Allow plain HTTP and unverified TLS for any registry. */
  insecure?: boolean;
  /** CA certificate files (PEM) to trust besides the system's. */
  caFiles?: string[];
  /** A directory of `*.crt` CA files (as containers' `certs.d/HOST:PORT`). */
  certDir?: string;
  /** Explicit credentials (else the auth files are searched). */
  creds?: Credentials;
  /** Auth files to search instead of the usual list. */
  authFiles?: string[];
  /** Socket idle timeout, ms (default 60 s). */
  timeoutMs?: number;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** A body: bytes, or a function giving a fresh stream each time the request is (re)sent. */
  body?: Buffer | (() => Readable);
  /** Repository scopes this request needs (`repository:NAME:pull,push`). */
  scopes?: string[];
  /** Follow redirects (default true). */
  follow?: boolean;
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: URL;
}

const MAX_REDIRECTS = 8;
const TLS_PLAIN_HINTS = new Set(['EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ECONNRESET']);

function isCertError(code: string): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|ERR_TLS/.test(code);
}

export class RegistryClient {
  readonly registry: string;
  private readonly host: string;
  private readonly opts: ClientOptions;
  private base: URL | undefined;
  private readonly agentHttp = new http.Agent({ keepAlive: true, maxSockets: 8 });
  private readonly agentHttps: https.Agent;
  private readonly scopes = new Set<string>();
  private authorization: string | undefined;
  /** The last Bearer challenge, to ask for a wider token when a request needs new scopes. */
  private bearer: string | undefined;
  private creds: Credentials | undefined | null = null;

  constructor(registry: string, opts: ClientOptions = {}) {
    this.registry = registry;
    this.host = apiHost(registry);
    this.opts = opts;
    const ca = this.extraCAs();
    this.agentHttps = new https.Agent({
      keepAlive: true,
      maxSockets: 8,
      ...(ca.length > 0 ? { ca: [...tls.rootCertificates, ...ca] } : {}),
      rejectUnauthorized: !opts.insecure,
    });
  }

  close(): void {
    this.agentHttp.destroy();
    this.agentHttps.destroy();
  }

  private extraCAs(): string[] {
    const files = [...(this.opts.caFiles ?? [])];
    const dirs = this.opts.certDir !== undefined ? [this.opts.certDir] : [path.join('/etc/containers/certs.d', this.registry), path.join('/etc/docker/certs.d', this.registry)];
    for (const d of dirs) {
      let names: string[];
      try {
        names = fs.readdirSync(d);
      } catch (e) {
        if (this.opts.certDir !== undefined) throw regErr('ENOENT', `cannot read cert dir ${d}`);
        continue;
      }
      for (const n of names.sort()) if (n.endsWith('.crt')) files.push(path.join(d, n));
    }
    return files.map((f) => {
      try {
        return fs.readFileSync(f, 'utf8');
      } catch {
        throw regErr('ENOENT', `cannot read CA file ${f}`);
      }
    });
  }

  private credentials(): Credentials | undefined {
    if (this.creds === null) this.creds = this.opts.creds ?? findCredentials(this.registry, this.opts.authFiles);
    return this.creds;
  }

  /** The API base URL, probing the scheme once: https, or plain http where that is allowed. */
  private async baseUrl(): Promise<URL> {
    if (this.base) return this.base;
    const httpsBase = new URL(`https://${this.host}/`);
    const plainOk = this.opts.insecure === true || isLoopback(this.registry);
    try {
      const r = await this.send('GET', new URL('/v2/', httpsBase), {}, undefined);
      r.body.resume();
      this.base = httpsBase;
    } catch (e) {
      const code = errnoCode(e) ?? '';
      if (!TLS_PLAIN_HINTS.has(code)) throw this.netError(e, httpsBase);
      if (!plainOk) throw regErr('EPROTO', `registry ${this.registry} does not answer TLS (${code}; plain HTTP?); pass --insecure to allow plain HTTP`);
      this.base = new URL(`http://${this.host}/`);
    }
    return this.base;
  }

  private netError(e: unknown, url: URL): FsError {
    if (e instanceof FsError) return e;
    const code = errnoCode(e) ?? 'EIO';
    if (isCertError(code)) {
      return regErr('EPROTO', `TLS certificate of ${url.host} is not trusted (${code}); give its CA with --ca FILE or --cert-dir DIR`);
    }
    const known = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPROTO'];
    const errno = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'EHOSTUNREACH' : known.includes(code) ? code : 'EIO';
    return regErr(errno, `cannot talk to registry ${url.host} (${code})`);
  }

  private send(method: string, url: URL, headers: Record<string, string>, body: RequestOptions['body']): Promise<Response> {
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<Response>((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method,
          headers: { 'user-agent': 'layerfs', ...headers },
          agent: url.protocol === 'https:' ? this.agentHttps : this.agentHttp,
          timeout: this.opts.timeoutMs ?? 60_000,
        },
        (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url }),
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        const s = body();
        s.on('error', (e) => req.destroy(e));
        s.pipe(req);
      }
    });
  }

  /** A URL on this registry: a path (`/v2/...`) or an absolute `Location` the registry gave. */
  async url(p: string): Promise<URL> {
    return new URL(p, await this.baseUrl());
  }

  /** Sends a request, answering auth challenges and following redirects. */
  async request(method: string, target: string | URL, o: RequestOptions = {}): Promise<Response> {
    const fresh = (o.scopes ?? []).filter((s) => !this.scopes.has(s));
    for (const s of fresh) this.scopes.add(s);
    // a Bearer token covers the scopes it was asked for: ask for one covering the new ones too
    if (fresh.length > 0 && this.bearer) await this.authenticate(this.bearer, await this.baseUrl());
    let url = typeof target === 'string' ? await this.url(target) : target;
    let m = method;
    let authTries = 0;
    for (let hops = 0; ; ) {
      const sameHost = url.host === (await this.baseUrl()).host;
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (sameHost && this.authorization) headers.authorization = this.authorization;
      let r: Response;
      try {
        r = await this.send(m, url, headers, m === 'GET' || m === 'HEAD' ? undefined : o.body);
      } catch (e) {
        throw this.netError(e, url);
      }
      if (r.status === 401 && sameHost && authTries < 2) {
        r.body.resume();
        authTries++;
        await this.authenticate(r.headers['www-authenticate'], url);
        continue;
      }
      if (r.status === 401 || r.status === 403) {
        r.body.resume();
        const c = this.credentials();
        throw regErr('EACCES', `registry ${this.registry} denied ${m} ${url.pathname} (${r.status}${c ? `, as ${c.username}` : ', no credentials found'})`);
      }
      if ([301, 302, 303, 307, 308].includes(r.status) && o.follow !== false) {
        r.body.resume();
        const loc = r.headers.location;
        if (!loc) throw regErr('EPROTO', `registry ${this.registry} redirected without a Location`);
        if (++hops > MAX_REDIRECTS) throw regErr('ELOOP', `too many redirects (${MAX_REDIRECTS}) for ${method} ${typeof target === 'string' ? target : target.pathname}`);
        url = new URL(loc, url);
        if (url.protocol !== 'https:' && url.protocol !== 'http:') throw regErr('EPROTO', `redirect to unsupported URL ${url.protocol}`);
        if (r.status === 303) m = 'GET';
        continue;
      }
      return r;
    }
  }

  private async authenticate(header: string | string[] | undefined, url: URL): Promise<void> {
    const h = Array.isArray(header) ? header[0] : header;
    const ch = h === undefined ? undefined : parseChallenge(h);
    const creds = this.credentials();
    if (!ch || ch.scheme === 'basic') {
      if (!creds) throw regErr('EACCES', `registry ${this.registry} needs credentials (none in --creds or the auth files)`);
      this.authorization = basicHeader(creds);
      return;
    }
    if (ch.scheme !== 'bearer' || !ch.params.realm) throw regErr('EPROTO', `registry ${this.registry} asks for unsupported auth ${ch.scheme}`);
    this.bearer = h;
    const realm = new URL(ch.params.realm, url);
    if (ch.params.service) realm.searchParams.set('service', ch.params.service);
    const scopes = new Set(this.scopes);
    if (ch.params.scope) for (const s of ch.params.scope.split(' ')) scopes.add(s);
    for (const s of scopes) realm.searchParams.append('scope', s);
    let r: Response;
    try {
      r = await this.send('GET', realm, creds ? { authorization: basicHeader(creds) } : {}, undefined);
    } catch (e) {
      throw this.netError(e, realm);
    }
    const text = (await readBody(r.body, 1 << 20, 'token response')).toString('utf8');
    if (r.status !== 200) throw regErr('EACCES', `token server ${realm.host} refused (${r.status})${creds ? `, as ${creds.username}` : ''}`);
    let token: unknown;
    try {
      const v = JSON.parse(text) as { token?: unknown; access_token?: unknown };
      token = v.token ?? v.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '') throw regErr('EPROTO', `token server ${realm.host} sent no token`);
    this.authorization = `Bearer ${token}`;
  }
}

/** Reads a whole (small) body; more than `limit` bytes is an error. */
export async function readBody(body: Readable, limit: number, what: string): Promise<Buffer> {
  const out: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      n += (c as Buffer).length;
      if (n > limit) {
        body.destroy();
        throw regErr('EFBIG', `${what} is larger than ${limit} bytes`);
      }
      out.push(c as Buffer);
    }
  } catch (e) {
    if (e instanceof FsError) throw e;
    throw regErr('EIO', `${what} was cut off`);
  }
  return Buffer.concat(out);
}

/** A registry's error body (`{"errors":[{"code","message"}]}`) in a few words. */
export async function errorText(r: Response): Promise<string> {
  const b = await readBody(r.body, 1 << 16, 'error body').catch(() => Buffer.alloc(0));
  try {
    const v = JSON.parse(b.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const e = v.errors?.[0];
    if (e) return `${r.status} ${e.code ?? ''}${e.message ? `: ${e.message}` : ''}`.trim();
  } catch {
    // not JSON
  }
  return `HTTP ${r.status}`;
}
