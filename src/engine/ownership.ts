/**
 * Ownership as shown through the mount vs as stored in the branches (fuse-overlayfs's
 * `uidmapping=`/`gidmapping=`, `squash_to_*`, `xattr_permissions=`). The Union facade applies it at
 * its edges only: attributes going out are shown (`attrOut`), ids coming in (chown, the owner of new
 * nodes, the caller of a permission check) are stored (`ctxIn`, `setIn`). The engine below works in
 * stored ids throughout.
 *
 * - Mapping: stored id A+k shows as B+k for each range A:B:N; an id in no range shows as the
 *   overflow id (65534, /proc/sys/kernel/overflowuid), and the same both ways (fuse-overlayfs).
 * - Squash: every node shows the squash owner; chown through the mount is attempted (mapped) and
 *   its failure ignored.
 * - xattr_permissions: chown/chmod write `uid:gid:mode` (mode octal) to the override xattr instead
 *   of changing the file; getattr shows the xattr's values over the real ones.
 */
import { readFileSync } from 'node:fs';
import type { Attr, Ctx, IdRange, OwnershipOptions, SetAttr } from './types.js';

export const OVERRIDE_XATTR = ['', 'security.containers.override_stat', 'user.containers.override_stat'] as const;

function overflowId(kind: 'uid' | 'gid'): number {
  try {
    const v = Number(readFileSync(`/proc/sys/kernel/overflow${kind}`, 'utf8').trim());
    return Number.isInteger(v) && v > 0 ? v : 65534;
  } catch {
    return 65534;
  }
}

function mapId(id: number, ranges: IdRange[] | undefined, toShown: boolean, overflow: number): number {
  if (!ranges) return id;
  for (const r of ranges) {
    const from = toShown ? r.stored : r.shown;
    if (id >= from && id < from + r.count) return (toShown ? r.shown : r.stored) + (id - from);
  }
  return overflow;
}

/** Parse an override xattr value `uid:gid:mode`; null when malformed. */
export function parseOverride(text: string): { uid: number; gid: number; mode: number } | null {
  const m = /^([0-9]+):([0-9]+):([0-7]+)$/.exec(text.trim());
  if (!m) return null;
  return { uid: Number(m[1]), gid: Number(m[2]), mode: parseInt(m[3]!, 8) };
}

export function formatOverride(uid: number, gid: number, mode: number): string {
  return `${uid}:${gid}:${(mode & 0o7777).toString(8)}`;
}

export class Ownership {
  readonly overflowUid: number;
  readonly overflowGid: number;

  constructor(readonly o: OwnershipOptions) {
    this.overflowUid = o.uidMap ? overflowId('uid') : 65534;
    this.overflowGid = o.gidMap ? overflowId('gid') : 65534;
  }

  /** Whether chown through the mount may fail silently (a squashed mount: the owner shown never changes). */
  get squashing(): boolean {
    return this.o.squashUid !== undefined || this.o.squashGid !== undefined;
  }

  /** The override xattr name, when ownership lives in an xattr. */
  get overrideXattr(): string | null {
    return this.o.xattrPermissions ? OVERRIDE_XATTR[this.o.xattrPermissions] : null;
  }

  uidShown(stored: number): number {
    return this.o.squashUid ?? mapId(stored, this.o.uidMap, true, this.overflowUid);
  }

  gidShown(stored: number): number {
    return this.o.squashGid ?? mapId(stored, this.o.gidMap, true, this.overflowGid);
  }

  uidStored(shown: number): number {
    return mapId(shown, this.o.uidMap, false, this.overflowUid);
  }

  gidStored(shown: number): number {
    return mapId(shown, this.o.gidMap, false, this.overflowGid);
  }

  /** An attribute as shown (ids mapped or squashed); `override`: the xattr's values, if any. */
  attrOut(a: Attr, override?: { uid: number; gid: number; mode: number } | null): Attr {
    const uid = override ? override.uid : a.uid;
    const gid = override ? override.gid : a.gid;
    const mode = override ? (a.mode & ~0o7777) | (override.mode & 0o7777) : a.mode;
    return { ...a, uid: this.uidShown(uid), gid: this.gidShown(gid), mode };
  }

  /** The caller with stored ids (owner of what it creates, subject of permission checks). */
  ctxIn(c: Ctx): Ctx {
    return { ...c, uid: this.uidStored(c.uid), gid: this.gidStored(c.gid) };
  }

  /** A setattr with stored ids. */
  setIn(s: SetAttr): SetAttr {
    if (s.uid === undefined && s.gid === undefined) return s;
    const out: SetAttr = { ...s };
    if (s.uid !== undefined) out.uid = this.uidStored(s.uid);
    if (s.gid !== undefined) out.gid = this.gidStored(s.gid);
    return out;
  }
}
