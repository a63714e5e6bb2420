/**
 * Manifests and indexes, OCI and Docker schema 2: fetching one by tag or digest (its bytes checked
 * against the digest), telling the kinds apart, and picking one platform from an index.
 */
import { createHash } from 'node:crypto';
import { goArch } from '../store/blobs.js';
import { errorText, readBody, type RegistryClient } from './client.js';
import { regErr } from './errors.js';

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export const ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest].join(', ');
const MAX_MANIFEST = 4 << 20;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

export function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function descriptor(v: unknown, what: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(d.digest)) {
    throw regErr('EINVAL', `${what} has no sha256 digest`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw regErr('EINVAL', `${what} has no valid size`);
  return { ...d, mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size: d.size };
}

/** Parses manifest bytes whose media type came from the header or the body. */
export function parseManifest(bytes: Buffer, headerType: string | undefined): ImageManifest | ImageIndex {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
  } catch {
    throw regErr('EINVAL', 'manifest is not valid JSON');
  }
  const type = typeof v.mediaType === 'string' ? v.mediaType : (headerType ?? '').split(';')[0]!.trim();
  if (v.schemaVersion === 1 || type === MT.dockerSchema1 || type === MT.dockerSchema1Signed) {
    throw regErr('ENOTSUP', 'Docker schema 1 manifests are not supported');
  }
  if (type === MT.ociIndex || type === MT.dockerList || (type === '' && Array.isArray(v.manifests))) {
    if (!Array.isArray(v.manifests)) throw regErr('EINVAL', 'image index has no manifests');
    return { kind: 'index', mediaType: type || MT.ociIndex, manifests: v.manifests.map((m, i) => descriptor(m, `index entry ${i + 1}`)) };
  }
  if (type === MT.ociManifest || type === MT.dockerManifest || type === '') {
    if (!Array.isArray(v.layers)) throw regErr('EINVAL', 'manifest has no layers');
    return {
      kind: 'manifest',
      mediaType: type || MT.ociManifest,
      config: descriptor(v.config, 'manifest config'),
      layers: v.layers.map((l, i) => descriptor(l, `manifest layer ${i + 1}`)),
    };
  }
  throw regErr('ENOTSUP', `unsupported manifest type ${JSON.stringify(type)}`);
}

/** GETs manifest `ref` (tag or digest) of `repo`; a digest ref (or the registry's digest header) is checked. */
export async function fetchManifest(
  client: RegistryClient,
  repo: string,
  ref: string,
): Promise<{ bytes: Buffer; digest: string; manifest: ImageManifest | ImageIndex }> {
  const r = await client.request('GET', `/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT }, scopes: [`repository:${repo}:pull`] });
  if (r.status === 404) {
    r.body.resume();
    throw regErr('ENOENT', `${client.registry}/${repo} has no manifest ${ref}`);
  }
  if (r.status !== 200) throw regErr('EIO', `fetching manifest ${ref} of ${repo}: ${await errorText(r)}`);
  const bytes = await readBody(r.body, MAX_MANIFEST, `manifest ${ref}`);
  const digest = sha256(bytes);
  if (ref.startsWith('sha256:') && digest !== ref) throw regErr('EINVAL', `manifest from ${client.registry} does not match its digest ${ref} (got ${digest})`);
  const claimed = r.headers['docker-content-digest'];
  if (typeof claimed === 'string' && claimed.startsWith('sha256:') && claimed !== digest) {
    throw regErr('EINVAL', `manifest ${ref} from ${client.registry} does not match the digest the registry gives (${claimed})`);
  }
  return { bytes, digest, manifest: parseManifest(bytes, r.headers['content-type']) };
}

/** The host's platform in Go's words (linux/amd64, linux/arm64/v8...). */
export function hostPlatform(): Platform {
  return { os: 'linux', architecture: goArch() };
}

export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw regErr('EINVAL', `platform must be OS/ARCH[/VARIANT], not ${JSON.stringify(s)}`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** The index entry for `want` (default: the host's platform, then linux/amd64). */
export function pickPlatform(index: ImageIndex, want?: Platform): Descriptor {
  const wanted = want ? [want] : [hostPlatform(), { os: 'linux', architecture: 'amd64' }];
  for (const w of wanted) {
    const hit = index.manifests.find(
      (m) => m.platform?.os === w.os && m.platform.architecture === w.architecture && (w.variant === undefined || m.platform.variant === w.variant),
    );
    if (hit) return hit;
  }
  const have = index.manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}` : '?')).join(', ');
  throw regErr('ENOENT', `image index has no ${wanted.map((w) => `${w.os}/${w.architecture}`).join(' or ')} image (has ${have || 'none'})`);
}
