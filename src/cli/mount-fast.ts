/**
 * The fast path of `layerfs` for a plain background mount, taken before commander and the command
 * modules load: `layerfs mount [SOURCE] MNT -o OPTS`, the mount(8)/mount.fuse3 helper form
 * `layerfs SOURCE MNT -o OPTS` and the fuse-overlayfs form `layerfs -o OPTS MNT`. It only sends the
 * request to the resident daemon (src/daemon/client.ts) and prints the daemon's one-line error.
 * Anything else (-f, -d, --help, another command, a usage error) goes the full CLI's way.
 */
import type { MountRequest } from '../daemon/protocol.js';

/** Command names that are not mounts (a first positional naming one leaves the fast path). */
const OTHER_COMMANDS = new Set(['tree', 'diff', 'umount', 'unmount', 'info', 'daemon', 'layer', 'container', 'image', 'docker-plugin', 'containerd-snapshotter', 'help']);

/** The mount request `argv` stands for, or null when the full CLI must handle it. */
export function plainMount(argv: readonly string[], cwd: string): MountRequest | null {
  const positionals: string[] = [];
  const options: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-o' || a === '--options') {
      const v = argv[i + 1];
      if (v === undefined) return null;
      options.push(v);
      i++;
    } else if (a.startsWith('--options=')) options.push(a.slice('--options='.length));
    else if (a.startsWith('-o') && a.length > 2) options.push(a.slice(2));
    else if (a.startsWith('-')) return null;
    else positionals.push(a);
  }
  if (positionals[0] === 'mount') positionals.shift();
  else if (positionals[0] !== undefined && OTHER_COMMANDS.has(positionals[0])) return null;
  else if (options.length === 0) return null; // `layerfs A B` without -o: the full CLI decides
  const joined = options.join(',');
  if (positionals.length < 1 || positionals.length > 2 || joined.trim() === '') return null;
  const mountpoint = positionals.length === 2 ? positionals[1]! : positionals[0]!;
  return { op: 'mount', options: joined, mountpoint, cwd, ...(positionals.length === 2 ? { source: positionals[0]! } : {}) };
}

/**
 * Send the mount request; returns the exit status (one error line on stderr when not 0). Its token
 * is the C client's ($LAYERFS_MOUNT_TOKEN, when its daemon died before answering) or a new one.
 */
export async function runPlainMount(req: MountRequest): Promise<number> {
  const { request, mountToken } = await import('../daemon/client.js');
  const token = process.env.LAYERFS_MOUNT_TOKEN || mountToken();
  delete process.env.LAYERFS_MOUNT_TOKEN; // not for a daemon started from here
  try {
    const r = await request({ ...req, token });
    if (r && r.ok) {
      if (r.warning) process.stderr.write(r.warning + '\n');
      return 0;
    }
    const message = r && !r.ok ? r.message : 'no layerfs daemon runs';
    process.stderr.write(`layerfs: mount ${req.mountpoint}: ${message}\n`);
  } catch (e) {
    process.stderr.write(`layerfs: mount ${req.mountpoint}: ${e instanceof Error ? e.message : String(e)}\n`);
  }
  return 1;
}
