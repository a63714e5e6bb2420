/**
 * Credentials and auth challenges. Credentials come from the first auth file that has an entry for
 * the registry, in the order podman/skopeo read them: `$REGISTRY_AUTH_FILE`,
 * `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.docker/config.json` (`{"auths": {HOST: {"auth":
 * base64("user:pass")}}}`; Docker Hub also as `https://index.docker.io/v1/`). A challenge is the
 * `WWW-Authenticate` header of a 401: `Basic realm=...` or `Bearer realm=...,service=...,scope=...`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { regErr } from './errors.js';

export interface Credentials {
  username: string;
  password: string;
}

export function authFiles(): string[] {
  const out: string[] = [];
  if (process.env.REGISTRY_AUTH_FILE) out.push(process.env.REGISTRY_AUTH_FILE);
  if (process.env.XDG_RUNTIME_DIR) out.push(path.join(process.env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  out.push(path.join(os.homedir(), '.docker', 'config.json'));
  return out;
}

function keysFor(registry: string): string[] {
  if (registry === 'docker.io') return ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/'];
  return [registry, `https://${registry}`, `http://${registry}`];
}

/** Credentials for `registry` from the auth files (`files` overrides the search list). */
export function findCredentials(registry: string, files: string[] = authFiles()): Credentials | undefined {
  for (const f of files) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    let auths: Record<string, { auth?: unknown }>;
    try {
      const v = JSON.parse(text) as { auths?: unknown };
      auths = typeof v.auths === 'object' && v.auths !== null ? (v.auths as Record<string, { auth?: unknown }>) : {};
    } catch {
      throw regErr('EINVAL', `auth file ${f} is not valid JSON`);
    }
    for (const k of keysFor(registry)) {
      const e = auths[k] ?? auths[k + '/'];
      if (!e || typeof e.auth !== 'string') continue;
      const plain = Buffer.from(e.auth, 'base64').toString('utf8');
      const i = plain.indexOf(':');
      if (i < 0) throw regErr('EINVAL', `auth file ${f}: entry for ${k} is not base64 user:password`);
      return { username: plain.slice(0, i), password: plain.slice(i + 1) };
    }
  }
  return undefined;
}

/** `user:password` from a --creds flag. */
export function parseCreds(s: string): Credentials {
  const i = s.indexOf(':');
  if (i <= 0) throw regErr('EINVAL', '--creds must be USER:PASSWORD');
  return { username: s.slice(0, i), password: s.slice(i + 1) };
}

export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header (one challenge: scheme, then k="v" pairs). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g;
  for (const p of m[2]!.matchAll(re)) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  return { scheme: m[1]!.toLowerCase(), params };
}
