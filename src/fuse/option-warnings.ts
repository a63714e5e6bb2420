/**
 * Mount options nobody interprets. fuse-overlayfs warns about an option it does not know and mounts
 * anyway, and container engines rely on that (podman passes `lazytime`, newer ones more), so these
 * are reported, one line, by whoever has the user's stderr, and otherwise ignored.
 */
import { parseOptions } from '../engine/params.js';
import { splitOptions } from './mount.js';

/** Options the transport consumes after the union's parser has seen them. */
const TRANSPORT_LATE = new Set(['passthrough']);

/** Names of the options in `options` that neither the kernel side nor the union understands. */
export function unknownMountOptions(options: string): string[] {
  try {
    const t = splitOptions(options);
    const o = parseOptions(t.unionOptions, { isWritable: () => true });
    return Object.keys(o.extra).filter((k) => !TRANSPORT_LATE.has(k));
  } catch {
    return []; // a bad option: the mount itself reports it
  }
}

/** The one warning line for them, or null. */
export function unknownOptionsWarning(options: string): string | null {
  const u = unknownMountOptions(options);
  if (u.length === 0) return null;
  return `layerfs: ignoring unknown mount option${u.length > 1 ? 's' : ''} ${u.map((k) => `'${k}'`).join(', ')}`;
}
