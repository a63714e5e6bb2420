/**
 * `layerfs image push IMAGE REF` and `layerfs image pull REF [NAME]`: images to and from an OCI
 * distribution registry. The registry module reports events; this file turns them into progress
 * bars on a TTY (one per blob) and prints only the result on stdout.
 */
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { parseCreds } from '../../registry/auth.js';
import type { ClientOptions } from '../../registry/client.js';
import type { BlobEvent, OnEvent } from '../../registry/events.js';
import { parsePlatform } from '../../registry/manifest.js';
import { pull } from '../../registry/pull.js';
import { push } from '../../registry/push.js';
import { human } from '../progress.js';
import { UsageError } from '../errors.js';
import { openStore, withRoot, type RootFlags } from './store-common.js';

interface NetFlags extends RootFlags {
  insecure?: boolean;
  ca?: string[];
  certDir?: string;
  creds?: string;
  authfile?: string;
  parallel?: string;
}

function withNet(cmd: Command): Command {
  return withRoot(cmd)
    .option('--insecure', 'allow plain HTTP and unverified TLS (loopback registries may use HTTP without it)')
    .option('--ca <file>', 'trust this CA certificate (PEM); repeatable', (v: string, acc: string[] = []) => [...acc, v])
    .option('--cert-dir <dir>', 'trust the *.crt CA files in DIR (default /etc/containers/certs.d/HOST, /etc/docker/certs.d/HOST)')
    .option('--creds <user:password>', 'credentials (default: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json)')
    .option('--authfile <file>', 'read credentials from this auth.json only')
    .option('--parallel <n>', 'blobs transferred at once (default 3)');
}

function positive(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)([kKmM]?)$/.exec(v);
  const n = m ? Number(m[1]) * (m[2] === '' ? 1 : /k/i.test(m[2]!) ? 1024 : 1 << 20) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError('image', `${what} must be a positive number, not ${JSON.stringify(v)}`);
  return n;
}

function clientOptions(f: NetFlags): ClientOptions & { parallel?: number } {
  const o: ClientOptions & { parallel?: number } = {};
  if (f.insecure) o.insecure = true;
  if (f.ca && f.ca.length > 0) o.caFiles = f.ca;
  if (f.certDir !== undefined) o.certDir = f.certDir;
  if (f.creds !== undefined) o.creds = parseCreds(f.creds);
  if (f.authfile !== undefined) o.authFiles = [f.authfile];
  const p = positive(f.parallel, '--parallel');
  if (p !== undefined) o.parallel = p;
  return o;
}

/** One bar per blob on a TTY stderr; nothing when stderr is piped. */
function bars(stream: NodeJS.WriteStream = process.stderr): { onEvent: OnEvent; stop: () => void } {
  if (!stream.isTTY) return { onEvent: () => undefined, stop: () => undefined };
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: '{label} {digest} [{bar}] {state} {value_h}/{total_h}',
      hideCursor: true,
      clearOnComplete: false,
      formatValue: (v: number) => String(v),
    },
    cliProgress.Presets.shades_classic,
  );
  const byLabel = new Map<string, cliProgress.SingleBar>();
  const onEvent = (e: BlobEvent): void => {
    const payload = { label: e.label.padEnd(10), digest: e.digest.slice(7, 19).padEnd(12), state: e.state.padEnd(11), value_h: human(e.done), total_h: e.size ? human(e.size) : '?' };
    let b = byLabel.get(e.label);
    if (!b) {
      b = multi.create(Math.max(1, e.size), e.done, payload);
      byLabel.set(e.label, b);
    }
    if (e.size > 0) b.setTotal(e.size);
    b.update(e.done, payload);
  };
  return { onEvent, stop: () => multi.stop() };
}

export function registerRegistry(img: Command): void {
  withNet(
    img
      .command('pull')
      .description('pull an image from a registry (OCI distribution API); prints the top layer id')
      .argument('<ref>', '[HOST[:PORT]/]REPO[:TAG][@sha256:DIGEST] (no host: docker.io)')
      .argument('[name]', 'image name in the store (default: REF in docker\'s familiar form)')
      .option('--platform <os/arch[/variant]>', 'which image of an index (default: this host, then linux/amd64)'),
  ).action(async (ref: string, name: string | undefined, flags: NetFlags & { platform?: string }) => {
    const store = openStore(flags);
    const b = bars();
    try {
      const r = await pull(store, ref, name, {
        ...clientOptions(flags),
        ...(flags.platform !== undefined ? { platform: parsePlatform(flags.platform) } : {}),
        onEvent: b.onEvent,
      });
      b.stop();
      process.stdout.write(`${r.top}\n`);
    } finally {
      b.stop();
    }
  });

  withNet(
    img
      .command('push')
      .description('push an image to a registry (OCI distribution API); prints the manifest digest')
      .argument('<image>', 'image name or layer id in the store')
      .argument('<ref>', '[HOST[:PORT]/]REPO[:TAG] (no host: docker.io)')
      .option('--chunk-size <bytes>', 'upload blobs larger than this in chunks of this size (k/M suffix; default 16M)'),
  ).action(async (image: string, ref: string, flags: NetFlags & { chunkSize?: string }) => {
    const store = openStore(flags);
    const chunk = positive(flags.chunkSize, '--chunk-size');
    const b = bars();
    try {
      const r = await push(store, image, ref, { ...clientOptions(flags), ...(chunk !== undefined ? { chunkSize: chunk } : {}), onEvent: b.onEvent });
      b.stop();
      process.stdout.write(`${r.digest}\n`);
    } finally {
      b.stop();
    }
  });
}
