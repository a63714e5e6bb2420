/**
 * A registry behind TLS (a self-signed CA made with openssl) and htpasswd basic auth: the CA comes
 * from --ca or --cert-dir, the credentials from $REGISTRY_AUTH_FILE; without them, one-line errors.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { pull } from '../../src/registry/pull.js';
import { push } from '../../src/registry/push.js';
import { LayerStore } from '../../src/store/store.js';
import { tempDir } from '../store/helpers.js';
import { demoStore, diffIds, exportedDiffIds, haveTools, makeTls, REGISTRY_BIN, startRegistry, type Registry, type Tls } from './helpers.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');
const ok = haveTools(REGISTRY_BIN, '/usr/bin/openssl', '/usr/bin/htpasswd', '/usr/bin/skopeo');

describe('registry over TLS with basic auth', { skip: !ok && 'docker-registry, openssl, htpasswd or skopeo missing', timeout: 300_000 }, () => {
  let reg: Registry;
  let tls: Tls;
  let top: string;
  let src: LayerStore;
  let authFile: string;
  before(async () => {
    top = tempDir('layerfs-reg-tls-');
    tls = makeTls(path.join(top, 'tls'));
    reg = await startRegistry({ tls, htpasswd: { user: 'alice', password: 's3cret' } });
    src = await demoStore(path.join(top, 'src'));
    authFile = path.join(top, 'auth.json');
    fs.writeFileSync(authFile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
  });
  after(async () => {
    await reg?.stop();
    fs.rmSync(top, { recursive: true, force: true });
  });

  it('an untrusted certificate, missing and wrong credentials: one-line errors, nothing pushed or pulled', async () => {
    await assert.rejects(push(src, 'demo:1', `${reg.host}/sec/app:v1`, { authFiles: [authFile] }), (e: Error) => {
      assert.match(e.message, /^EPROTO: TLS certificate of 127\.0\.0\.1:\d+ is not trusted \(.+\); give its CA with --ca FILE or --cert-dir DIR$/);
      return true;
    });
    await assert.rejects(push(src, 'demo:1', `${reg.host}/sec/app:v1`, { caFiles: [tls.ca], authFiles: [path.join(top, 'none.json')] }), /^Error: EACCES: registry .* needs credentials/);
    await assert.rejects(push(src, 'demo:1', `${reg.host}/sec/app:v1`, { caFiles: [tls.ca], creds: { username: 'alice', password: 'wrong' } }), /^Error: EACCES: registry .* denied .* as alice/);
    const dst = LayerStore.open(path.join(top, 'none'));
    await assert.rejects(pull(dst, `${reg.host}/sec/app:v1`, undefined, { caFiles: [tls.ca], authFiles: [path.join(top, 'none.json')] }), /EACCES/);
    assert.deepEqual(dst.list(), []);
    assert.deepEqual(dst.images(), {});
  });

  it('push with --ca and the auth file, pull through the CLI with --cert-dir and $REGISTRY_AUTH_FILE', async () => {
    const r = await push(src, 'demo:3', `${reg.host}/sec/app:v3`, { caFiles: [tls.ca], authFiles: [authFile], chunkSize: 100_000 });
    const certDir = path.join(top, 'certs.d');
    fs.mkdirSync(certDir);
    fs.copyFileSync(tls.ca, path.join(certDir, 'ca.crt'));
    const root2 = path.join(top, 'dst');
    const env = { ...process.env, REGISTRY_AUTH_FILE: authFile, LAYERFS_ROOT: root2 };
    const out = await run(process.execPath, [CLI, 'image', 'pull', '--cert-dir', certDir, `${reg.host}/sec/app:v3`, 'secure:v3'], { env });
    assert.equal(out.stderr, '');
    const dst = LayerStore.open(root2);
    assert.equal(out.stdout.trim(), dst.resolve('secure:v3'));
    assert.deepEqual(diffIds(dst, 'secure:v3'), await exportedDiffIds(src, 'demo:3'));
    // skopeo, given the same CA and credentials, reads the same manifest
    const sk = await run('skopeo', ['inspect', '--raw', '--cert-dir', certDir, '--authfile', authFile, `docker://${reg.host}/sec/app:v3`]);
    assert.equal(`sha256:${(await import('node:crypto')).createHash('sha256').update(sk.stdout).digest('hex')}`, r.digest);
    // the CLI's one-line error when the CA is missing
    const bad = await run(process.execPath, [CLI, 'image', 'pull', `${reg.host}/sec/app:v3`], { env }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((bad as { code: number }).code, 1);
    assert.match((bad as { stderr: string }).stderr, /^layerfs: [^\n]*EPROTO: TLS certificate of [^\n]* is not trusted[^\n]*\n$/);
  });
});
