/**
 * AUFS's placement policies for a union with several writable branches, as mount options:
 *
 *   create=tdp | rr | mfs[:SEC] | mfsrr:LOW | pmfs[:SEC] | pmfsrr:LOW   where a NEW name goes
 *   cpup=tdp | bup | bu                                               where a copy-up goes
 *
 * AUFS's long names are accepted too (top-down-parent, round-robin, most-free-space,
 * most-free-space-round-robin, parent-most-free-space, parent-most-free-space-round-robin,
 * bottom-up-parent, bottom-up). SEC: how long (seconds, 0..3600, default 30) a most-free-space
 * answer is kept; LOW: bytes (suffix k, m, g) under which the most-free-space choice gives way to
 * round robin. Parsing only: what each policy decides is in placement.ts.
 */
import { FsError } from '../errors/index.js';

export type CreateKind = 'tdp' | 'rr' | 'mfs' | 'mfsrr' | 'pmfs' | 'pmfsrr';
export type CpupKind = 'tdp' | 'bup' | 'bu';

export interface CreatePolicy {
  kind: CreateKind;
  /** mfs/pmfs: seconds a most-free-space answer is kept (AUFS's default 30). */
  sec: number;
  /** mfsrr/pmfsrr: free bytes under which round robin takes over. */
  low: number;
}

/** AUFS's defaults: create=tdp, cpup=tdp; mfs keeps its answer 30 s. */
export const DEFAULT_MFS_SEC = 30;
export const MAX_MFS_SEC = 3600;
export const DEFAULT_CREATE: CreatePolicy = { kind: 'tdp', sec: DEFAULT_MFS_SEC, low: 0 };
export const DEFAULT_CPUP: CpupKind = 'tdp';

const CREATE_NAMES: Record<string, CreateKind> = {
  tdp: 'tdp',
  'top-down-parent': 'tdp',
  rr: 'rr',
  'round-robin': 'rr',
  mfs: 'mfs',
  'most-free-space': 'mfs',
  mfsrr: 'mfsrr',
  'most-free-space-round-robin': 'mfsrr',
  pmfs: 'pmfs',
  'parent-most-free-space': 'pmfs',
  pmfsrr: 'pmfsrr',
  'parent-most-free-space-round-robin': 'pmfsrr',
};

const CPUP_NAMES: Record<string, CpupKind> = {
  tdp: 'tdp',
  'top-down-parent': 'tdp',
  bup: 'bup',
  'bottom-up-parent': 'bup',
  bu: 'bu',
  'bottom-up': 'bu',
};

function bad(detail: string): FsError {
  return new FsError('EINVAL', 'mount', undefined, undefined, detail);
}

/** `1048576`, `512k`, `10m`, `2g` -> bytes. */
function parseBytes(key: string, text: string): number {
  const m = /^([0-9]+)([kmg]?)$/i.exec(text);
  if (!m) throw bad(`${key}: '${text}' is not a size in bytes (a number, optionally with k, m or g)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * mult;
}

/** The value of `create=`. */
export function parseCreatePolicy(val: string | undefined): CreatePolicy {
  if (!val) throw bad(`create needs a policy: tdp, rr, mfs[:SEC], mfsrr:LOW, pmfs[:SEC] or pmfsrr:LOW`);
  const colon = val.indexOf(':');
  const name = colon < 0 ? val : val.slice(0, colon);
  const arg = colon < 0 ? undefined : val.slice(colon + 1);
  const kind = CREATE_NAMES[name];
  if (!kind) throw bad(`create must be tdp, rr, mfs[:SEC], mfsrr:LOW, pmfs[:SEC] or pmfsrr:LOW, not '${val}'`);
  const out: CreatePolicy = { kind, sec: DEFAULT_MFS_SEC, low: 0 };
  if (kind === 'mfs' || kind === 'pmfs') {
    if (arg !== undefined) {
      if (!/^[0-9]+$/.test(arg) || Number(arg) > MAX_MFS_SEC) throw bad(`create=${name}: SEC must be 0..${MAX_MFS_SEC} seconds, not '${arg}'`);
      out.sec = Number(arg);
    }
  } else if (kind === 'mfsrr' || kind === 'pmfsrr') {
    if (arg === undefined || arg === '') throw bad(`create=${name} needs LOW, the free bytes under which round robin takes over (e.g. ${name}:100m)`);
    out.low = parseBytes(`create=${name}`, arg);
  } else if (arg !== undefined) throw bad(`create=${name} takes no argument, got '${arg}'`);
  return out;
}

/** The value of `cpup=`. */
export function parseCpupPolicy(val: string | undefined): CpupKind {
  const kind = val === undefined ? undefined : CPUP_NAMES[val];
  if (!kind) throw bad(`cpup must be tdp, bup or bu, not '${val ?? ''}'`);
  return kind;
}

/** `create=` as a mount option value (formatOptions, info). */
export function formatCreatePolicy(p: CreatePolicy): string {
  if (p.kind === 'mfs' || p.kind === 'pmfs') return p.sec === DEFAULT_MFS_SEC ? p.kind : `${p.kind}:${p.sec}`;
  if (p.kind === 'mfsrr' || p.kind === 'pmfsrr') return `${p.kind}:${p.low}`;
  return p.kind;
}
