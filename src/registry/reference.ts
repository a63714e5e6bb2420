/**
 * Image references as docker and skopeo read them: `[HOST[:PORT]/]PATH[:TAG][@sha256:HEX]`.
 * The first component is a registry host when it has a `.` or a `:` or is `localhost`; otherwise
 * the registry is Docker Hub (`docker.io`, served at `registry-1.docker.io`), where a one-part
 * path means `library/NAME`. No tag and no digest means `:latest`.
 */
import { regErr } from './errors.js';

export interface Reference {
  /** Registry host as written (`docker.io`, `localhost:5000`, `[::1]:5000`). */
  registry: string;
  /** Repository path (`library/alpine`, `team/app`). */
  repository: string;
  tag: string | undefined;
  digest: string | undefined;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$/;

export function parseReference(input: string): Reference {
  const bad = (why: string): never => {
    throw regErr('EINVAL', `invalid image reference ${JSON.stringify(input)}: ${why}`);
  };
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) bad('digest must be sha256:<64 hex digits>');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) bad('bad tag');
  }
  const slash = rest.indexOf('/');
  let registry = 'docker.io';
  let repository = rest;
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      registry = first;
      repository = rest.slice(slash + 1);
      if (!HOST.test(registry)) bad('bad registry host');
    }
  }
  if (registry === 'index.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && !repository.includes('/')) repository = `library/${repository}`;
  if (repository === '' || !repository.split('/').every((c) => PATH_COMPONENT.test(c))) bad('bad repository name');
  if (repository.length > 255) bad('repository name too long');
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, tag, digest };
}

/** The full form: `docker.io/library/alpine:3`, `localhost:5000/app@sha256:...`. */
export function formatReference(r: Reference): string {
  return `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/** The familiar form docker shows: Hub's `library/` and `docker.io/` dropped. */
export function familiarName(r: Reference): string {
  let name = r.registry === 'docker.io' ? r.repository.replace(/^library\/(?=[^/]+$)/, '') : `${r.registry}/${r.repository}`;
  if (r.tag !== undefined) name += `:${r.tag}`;
  if (r.digest !== undefined) name += `@${r.digest}`;
  return name;
}

/** Where the registry's API lives: Docker Hub's name differs from its API host. */
export function apiHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}

/** Hostname without port or brackets. */
export function hostName(registry: string): string {
  const m = /^\[([^\]]+)\]/.exec(registry);
  if (m) return m[1]!;
  const i = registry.lastIndexOf(':');
  return i > 0 ? registry.slice(0, i) : registry;
}

/** Loopback registries may speak plain HTTP without --insecure (as docker allows for localhost). */
export function isLoopback(registry: string): boolean {
  const h = hostName(registry);
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}
