/** References, auth files and challenges, platform choice, and store image names for registry images. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findCredentials, parseChallenge } from '../../src/registry/auth.js';
import { parseManifest, pickPlatform, type ImageIndex } from '../../src/registry/manifest.js';
import { familiarName, formatReference, isLoopback, parseReference } from '../../src/registry/reference.js';
import { checkImageName } from '../../src/store/store.js';
import { tempDir } from '../store/helpers.js';

const D = `sha256:${'ab'.repeat(32)}`;

test('references: docker.io defaults, host:port, tags, digests', () => {
  const cases: [string, string, string][] = [
    ['alpine', 'docker.io/library/alpine:latest', 'alpine:latest'],
    ['me/app:v2', 'docker.io/me/app:v2', 'me/app:v2'],
    ['docker.io/library/busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['index.docker.io/x/y', 'docker.io/x/y:latest', 'x/y:latest'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
    ['localhost:5000/team/app:1.0', 'localhost:5000/team/app:1.0', 'localhost:5000/team/app:1.0'],
    ['quay.io/org/img@' + D, `quay.io/org/img@${D}`, `quay.io/org/img@${D}`],
    ['127.0.0.1:5000/a:t@' + D, `127.0.0.1:5000/a:t@${D}`, `127.0.0.1:5000/a:t@${D}`],
    ['[::1]:5000/a', '[::1]:5000/a:latest', '[::1]:5000/a:latest'],
  ];
  for (const [input, full, familiar] of cases) {
    const r = parseReference(input);
    assert.equal(formatReference(r), full, input);
    assert.equal(familiarName(r), familiar, input);
  }
  for (const bad of ['', 'UPPER/case', 'a//b', 'a:b:c', 'app@sha256:123', 'app:', 'host:99999999/a', '-lead']) {
    assert.throws(() => parseReference(bad), /^Error: EINVAL: invalid image reference/, bad);
  }
  assert.ok(isLoopback('localhost:5000') && isLoopback('127.0.0.1:1') && isLoopback('[::1]:5000'));
  assert.ok(!isLoopback('registry.example:5000') && !isLoopback('10.0.0.1:5000'));
});

test('store image names may carry a registry host:port and a digest', () => {
  assert.equal(checkImageName('localhost:5000/app'), 'localhost:5000/app:latest');
  assert.equal(checkImageName('127.0.0.1:5000/a/b:v1'), '127.0.0.1:5000/a/b:v1');
  assert.equal(checkImageName(`reg.example/app@${D}`), `reg.example/app@${D}`);
  assert.throws(() => checkImageName('app@sha256:12'), /invalid image name/);
  assert.throws(() => checkImageName('Host:5000/App'), /invalid image name/);
});

test('credentials from the first auth file that has the registry; Docker Hub keys', () => {
  const dir = tempDir('layerfs-auth-');
  try {
    const a = path.join(dir, 'a.json');
    const b = path.join(dir, 'b.json');
    const enc = (s: string): string => Buffer.from(s).toString('base64');
    fs.writeFileSync(a, JSON.stringify({ auths: { 'reg.example:5000': { auth: enc('ann:pa:ss') } } }));
    fs.writeFileSync(b, JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: enc('hub:pw') }, 'reg.example:5000': { auth: enc('other:x') } } }));
    assert.deepEqual(findCredentials('reg.example:5000', [a, b]), { username: 'ann', password: 'pa:ss' });
    assert.deepEqual(findCredentials('docker.io', [path.join(dir, 'missing.json'), a, b]), { username: 'hub', password: 'pw' });
    assert.equal(findCredentials('nowhere:1', [a, b]), undefined);
    fs.writeFileSync(a, '{not json');
    assert.throws(() => findCredentials('x', [a]), /^Error: EINVAL: auth file .* is not valid JSON$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('WWW-Authenticate challenges', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' },
  });
  assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } });
});

test('manifests: kinds, schema 1 refused, platform choice from an index', () => {
  const desc = (arch: string) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D, size: 10, platform: { os: 'linux', architecture: arch } });
  const idx = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [desc('arm64'), desc('amd64')] })), 'application/vnd.oci.image.index.v1+json');
  assert.equal(idx.kind, 'index');
  assert.equal(pickPlatform(idx as ImageIndex, { os: 'linux', architecture: 'arm64' }).platform?.architecture, 'arm64');
  assert.ok(['amd64', 'arm64'].includes(pickPlatform(idx as ImageIndex).platform!.architecture), 'host platform or linux/amd64');
  assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":1,"fsLayers":[]}'), undefined), /^Error: ENOTSUP: Docker schema 1/);
  assert.throws(() => parseManifest(Buffer.from('nope'), undefined), /^Error: EINVAL: manifest is not valid JSON$/);
  assert.throws(
    () => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: 'md5:1', size: 1 }, layers: [] })), 'application/vnd.oci.image.manifest.v1+json'),
    /manifest config has no sha256 digest/,
  );
});
