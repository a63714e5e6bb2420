/**
 * containerd's Snapshots gRPC service (containerd.services.snapshots.v1.Snapshots), served on a
 * unix socket for a `[proxy_plugins.NAME] type = "snapshot"` of containerd 1.6+. The messages are
 * described by proto/snapshots.proto (ours, with containerd's names and field numbers), loaded at
 * start with @grpc/proto-loader. Snapshots live in a SnapshotStore (store/snapshots.ts): layers in
 * the store's aufs layout, metadata in one JSON file.
 *
 * Mounts (containerd mounts them itself, in containerd or in the runtime shim):
 *   - one layer is enough (an active snapshot without parent, a view of at most one layer): a bind
 *     mount of that layer's dir (`ro` for views);
 *   - otherwise a `fuse3.layerfs` mount with option `dirs=OWN=rw:P1=ro:...` (a view: `dirs=P1=ro:...`
 *     and `ro`). containerd runs `mount.fuse3 layerfs TARGET -o OPTS -t layerfs`, which runs
 *     `layerfs layerfs TARGET -o OPTS`: a mount of the resident daemon (the `layerfs` on
 *     containerd's PATH must be this one).
 *
 * Errors are gRPC statuses with one-line messages: NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT,
 * FAILED_PRECONDITION (kind or children forbid it); the service keeps serving.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { FsError, errnoCode, isCode } from '../errors/index.js';
import { SnapshotStore, type SnapshotInfo, type SnapshotKind, type SnapshotLayers } from '../store/snapshots.js';
import { compileFilters, FilterError } from './containerd-filters.js';
import { clearStaleSocket } from './unix-socket.js';

/** proto/ at the package root (this file runs from dist/src/integrations/). */
const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));
export const SERVICE = 'containerd.services.snapshots.v1.Snapshots';
/** Type of the union mounts we hand out (containerd runs mount.fuse3 for `fuse3.*`). */
export const FUSE_TYPE = 'fuse3.layerfs';
/** Infos per List message. */
const LIST_BATCH = 100;

export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

interface Timestamp {
  seconds: number;
  nanos: number;
}

interface WireInfo {
  name: string;
  parent: string;
  kind: string | number;
  created_at?: Timestamp | null;
  updated_at?: Timestamp | null;
  labels: Record<string, string>;
}

const KINDS: Record<SnapshotKind, string> = { view: 'VIEW', active: 'ACTIVE', committed: 'COMMITTED' };
const KIND_NAMES = new Set(['UNKNOWN', 'VIEW', 'ACTIVE', 'COMMITTED']);

/** A request that is wrong on its face (INVALID_ARGUMENT). */
class BadRequest extends Error {}

const STATUS: Record<string, grpc.status> = {
  ENOENT: grpc.status.NOT_FOUND,
  EEXIST: grpc.status.ALREADY_EXISTS,
  EINVAL: grpc.status.INVALID_ARGUMENT,
  EPERM: grpc.status.FAILED_PRECONDITION,
  ENOTEMPTY: grpc.status.FAILED_PRECONDITION,
  EBUSY: grpc.status.FAILED_PRECONDITION,
};

function oneLine(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.split('\n')[0]!.trim() || 'unknown error';
}

function toStatus(e: unknown): Partial<grpc.StatusObject> {
  let code = grpc.status.UNKNOWN;
  if (e instanceof BadRequest || e instanceof FilterError) code = grpc.status.INVALID_ARGUMENT;
  else {
    const errno = errnoCode(e);
    if (errno !== undefined) code = STATUS[errno] ?? grpc.status.UNKNOWN;
  }
  return { code, details: oneLine(e) };
}

function timestamp(ms: number): Timestamp {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

function wireInfo(i: SnapshotInfo): WireInfo {
  return { name: i.name, parent: i.parent, kind: KINDS[i.kind], created_at: timestamp(i.created), updated_at: timestamp(i.updated), labels: i.labels };
}

/** The dirs= branch string of a union of `top` (rw or ro) over `lowers` (ro). */
function dirsOption(top: string | undefined, lowers: readonly string[]): string {
  return 'dirs=' + [...(top === undefined ? [] : [`${top}=rw`]), ...lowers.map((l) => `${l}=ro`)].join(':');
}

/** What containerd mounts for a snapshot. */
export function mountsFor(l: SnapshotLayers): Mount[] {
  if (l.kind === 'active') {
    if (l.lowers.length === 0) return [{ type: 'bind', source: l.own, options: ['rw', 'rbind'] }];
    return [{ type: FUSE_TYPE, source: 'layerfs', options: [dirsOption(l.own, l.lowers)] }];
  }
  if (l.lowers.length <= 1) return [{ type: 'bind', source: l.lowers[0] ?? l.own, options: ['ro', 'rbind'] }];
  return [{ type: FUSE_TYPE, source: 'layerfs', options: [dirsOption(undefined, l.lowers), 'ro'] }];
}

/** Characters a layer path may not hold in a `dirs=` option that mount.fuse3 passes on. */
const UNSAFE_ROOT = /[,:=\s]/;

export interface SnapshotterOptions {
  /** Unix socket to listen on. */
  address: string;
  /** Where snapshots live (created when absent). */
  root: string;
  /** One line per failed request (default: stderr). */
  log?: (line: string) => void;
}

export interface Snapshotter {
  store: SnapshotStore;
  /** Stops listening and removes the socket (the snapshots stay). */
  close(): Promise<void>;
}

type Call<Req> = grpc.ServerUnaryCall<Req, unknown>;

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function labelsOf(v: unknown): Record<string, string> {
  return v !== null && typeof v === 'object' ? (v as Record<string, string>) : {};
}

/** Starts serving; resolves once the socket listens. */
export async function startContainerdSnapshotter(o: SnapshotterOptions): Promise<Snapshotter> {
  const log = o.log ?? ((l: string) => process.stderr.write(`layerfs containerd-snapshotter: ${l}\n`));
  const root = path.resolve(o.root);
  if (UNSAFE_ROOT.test(root)) throw new FsError('EINVAL', undefined, root, undefined, 'the root path may not contain commas, colons, equals signs or white space (they would break mount options)');
  const store = new SnapshotStore(root);

  const def = protoLoader.loadSync('snapshots.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const service = (grpc.loadPackageDefinition(def) as unknown as { containerd: { services: { snapshots: { v1: { Snapshots: grpc.ServiceClientConstructor } } } } }).containerd.services.snapshots.v1.Snapshots.service;

  /** A unary handler: runs `fn`, answers its value or the error's status (logged). */
  function unary<Req>(name: string, fn: (req: Req) => Promise<unknown>): grpc.handleUnaryCall<Req, unknown> {
    return (call: Call<Req>, cb: grpc.sendUnaryData<unknown>) => {
      fn(call.request).then(
        (v) => cb(null, v),
        (e: unknown) => {
          const st = toStatus(e);
          log(`${name}: ${st.details ?? ''}`);
          cb(st);
        },
      );
    };
  }

  interface KeyReq {
    key?: string;
    parent?: string;
    labels?: Record<string, string>;
  }

  const impl: grpc.UntypedServiceImplementation = {
    Prepare: unary<KeyReq>('Prepare', async (r) => ({ mounts: mountsFor(await store.create('active', str(r.key), str(r.parent), labelsOf(r.labels))) })),
    View: unary<KeyReq>('View', async (r) => ({ mounts: mountsFor(await store.create('view', str(r.key), str(r.parent), labelsOf(r.labels))) })),
    Mounts: unary<KeyReq>('Mounts', async (r) => ({ mounts: mountsFor(await store.layers(str(r.key))) })),
    Commit: unary<KeyReq & { name?: string }>('Commit', async (r) => {
      await store.commit(str(r.name), str(r.key), labelsOf(r.labels));
      return {};
    }),
    Remove: unary<KeyReq>('Remove', async (r) => {
      await store.remove(str(r.key));
      return {};
    }),
    Stat: unary<KeyReq>('Stat', async (r) => ({ info: wireInfo(await store.stat(str(r.key))) })),
    Update: unary<{ info?: WireInfo | null; update_mask?: { paths?: string[] } | null }>('Update', async (r) => {
      if (!r.info) throw new BadRequest('missing info');
      if (typeof r.info.kind === 'number' || !KIND_NAMES.has(r.info.kind)) throw new BadRequest(`unknown snapshot kind ${JSON.stringify(r.info.kind)}`);
      if (r.info.name === '') throw new BadRequest('missing info.name');
      const paths = r.update_mask?.paths ?? [];
      return { info: wireInfo(await store.update(r.info.name, labelsOf(r.info.labels), paths)) };
    }),
    Usage: unary<KeyReq>('Usage', async (r) => {
      const u = await store.usage(str(r.key));
      return { size: u.size, inodes: u.inodes };
    }),
    Cleanup: unary<unknown>('Cleanup', async () => {
      const n = await store.cleanup();
      if (n > 0) log(`Cleanup: removed ${n} orphan layer(s)`);
      return {};
    }),
    List: (call: grpc.ServerWritableStream<{ filters?: string[] }, unknown>) => {
      void (async () => {
        try {
          const match = compileFilters(call.request.filters ?? []);
          const infos = (await store.list()).filter((i) =>
            match((p) => {
              const [f, ...rest] = p;
              if (f === 'name') return rest.length === 0 ? i.name : undefined;
              if (f === 'parent') return rest.length === 0 ? i.parent : undefined;
              if (f === 'kind') return rest.length === 0 ? i.kind : undefined;
              if (f === 'labels') return rest.length === 0 ? undefined : i.labels[rest.join('.')];
              return undefined;
            }),
          );
          for (let k = 0; k < infos.length; k += LIST_BATCH) call.write({ info: infos.slice(k, k + LIST_BATCH).map(wireInfo) });
          call.end();
        } catch (e) {
          const st = toStatus(e);
          log(`List: ${st.details ?? ''}`);
          call.emit('error', Object.assign(new Error(st.details), st));
        }
      })();
    },
  };

  const server = new grpc.Server();
  server.addService(service, impl);
  fs.mkdirSync(path.dirname(o.address), { recursive: true, mode: 0o755 });
  await clearStaleSocket(o.address);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${o.address}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve()));
  });
  fs.chmodSync(o.address, 0o600);

  return {
    store,
    async close(): Promise<void> {
      // in-flight calls may finish for a moment; then open connections (a List being read) are cut
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      try {
        fs.unlinkSync(o.address);
      } catch (e) {
        if (!isCode(e, 'ENOENT')) throw e;
      }
    },
  };
}
