/**
 * Mount option strings -> UnionOptions (like overlayfs's params.c).
 *
 *   dirs=A=rw:B=ro:C            AUFS style (also `br=...` and `br:...`)
 *   lowerdir=L1:L2,upperdir=U,workdir=W    overlay style (leftmost lower is topmost)
 *   whiteout=aufs|overlay (default: aufs for dirs=/br:, overlay for lowerdir=)  dirrename=redirect|exdev (alias redirect_dir=on|off, `xdev`)  xino=PATH  volatile
 *   fuse-overlayfs's: fsync=0 (= volatile), uidmapping=A:B:N[:A:B:N...], gidmapping=..., squash_to_root,
 *   squash_to_uid=N, squash_to_gid=N, xattr_permissions=0|1|2, static_nlink, noacl, context=... (ignored)
 *   userxattr[=on|off]: private markers as user.* xattrs (default: on unless real root, see types.ts)
 *
 * Anything else (rw, ro, dev, suid, allow_other, ...) is kept in `extra`. `\:` and `\,` escape the
 * separators inside paths. Relative paths resolve against `cwd` (default process.cwd()).
 * Parsing does not touch the filesystem except for the AUFS default permission of the first branch
 * (rw when writable), for which `isWritable` is asked.
 */
import * as path from 'node:path';
import { FsError } from '../errors/index.js';
import { isWritableDir } from '../branch/index.js';
import { isRealRoot } from '../sys/privilege.js';
import type { BranchPerm, BranchSpec, DirRenameMode, IdRange, OwnershipOptions, UnionOptions, WhiteoutFormat } from './types.js';

export interface ParseContext {
  cwd?: string;
  /** Whether a directory is writable by us (AUFS default perm of the first branch). */
  isWritable?: (absPath: string) => boolean;
}

function bad(detail: string): FsError {
  return new FsError('EINVAL', 'mount', undefined, undefined, detail);
}

/** Largest uid/gid (2^32 - 2: -1 means "unchanged" to chown). */
const MAX_ID = 0xfffffffe;

function parseId(key: string, text: string | undefined): number {
  const v = Number(text);
  if (text === undefined || !/^[0-9]+$/.test(text) || v > MAX_ID) throw bad(`${key} needs a numeric id, got '${text ?? ''}'`);
  return v;
}

/** `A:B:N[:A:B:N...]` (fuse-overlayfs uidmapping=/gidmapping=) -> ranges; stored ids A.., shown ids B... */
export function parseIdMapping(key: string, text: string | undefined): IdRange[] {
  if (!text) throw bad(`${key} needs triples A:B:N (stored id, shown id, count)`);
  const parts = text.split(':');
  if (parts.length % 3 !== 0) throw bad(`${key} needs triples A:B:N (stored id, shown id, count), got '${text}'`);
  const out: IdRange[] = [];
  for (let i = 0; i < parts.length; i += 3) {
    const [a, b, n] = parts.slice(i, i + 3).map((p) => {
      if (!/^[0-9]+$/.test(p) || Number(p) > MAX_ID + 1) throw bad(`${key}: '${p}' in '${text}' is not an id or count`);
      return Number(p);
    }) as [number, number, number];
    if (n === 0) throw bad(`${key}: empty range in '${text}'`);
    if (a + n - 1 > MAX_ID || b + n - 1 > MAX_ID) throw bad(`${key}: range ${a}:${b}:${n} goes past the largest id`);
    out.push({ stored: a, shown: b, count: n });
  }
  return out;
}

/**
 * Split a comma-separated option list: a backslash escapes the next character (kept for the
 * later unescape) and a comma inside double quotes does not split (podman's `context="a:b:c1,c2"`).
 */
export function splitOptionList(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1]!;
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      cur += c;
    } else if (c === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Split on unescaped `sep`; `\x` becomes `x`. */
export function splitEscaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      const n = s[i + 1]!;
      if (n === sep || n === ',' || n === ':' || n === '\\') {
        cur += '\\' + n; // keep escaped until the final unescape
        i++;
        continue;
      }
    }
    if (c === sep) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function unescape(s: string): string {
  return s.replace(/\\([,:\\])/g, '$1');
}

const PERM_RE = /^(rw|ro|rr)((?:\+[a-z0-9_]+)*)$/;

/** `PATH[=PERM[+ATTR...]]` -> path + optional perm. */
export function parseBranchElement(el: string): { path: string; perm?: BranchPerm; attrs: string[] } {
  const eq = findLastUnescaped(el, '=');
  if (eq >= 0) {
    const m = PERM_RE.exec(el.slice(eq + 1));
    if (m) {
      const attrs = m[2] ? m[2].split('+').filter((a) => a !== '') : [];
      return { path: unescape(el.slice(0, eq)), perm: m[1] as BranchPerm, attrs };
    }
  }
  return { path: unescape(el), attrs: [] };
}

function findLastUnescaped(s: string, ch: string): number {
  for (let i = s.length - 1; i >= 0; i--) {
    if (s[i] === ch && (i === 0 || s[i - 1] !== '\\')) return i;
  }
  return -1;
}

function resolvePath(p: string, cwd: string): string {
  if (p === '') throw bad('empty branch path');
  return path.resolve(cwd, p);
}

/** Parse a full option string (comma separated). Throws FsError EINVAL naming the problem. */
export function parseOptions(str: string, ctx: ParseContext = {}): UnionOptions {
  const cwd = ctx.cwd ?? process.cwd();
  const isWritable = ctx.isWritable ?? isWritableDir;
  let aufs: string[] | undefined;
  let lower: string[] | undefined;
  let upper: string | undefined;
  let workdir: string | undefined;
  let whiteout: WhiteoutFormat | undefined;
  let dirRename: DirRenameMode = 'redirect';
  let xino: string | undefined;
  let volatile = false;
  let staticNlink = false;
  let squashRoot = false;
  let userxattr: boolean | undefined;
  let noacl = false;
  const own: OwnershipOptions = {};
  const extra: Record<string, string | true> = {};

  for (const raw of splitOptionList(str)) {
    const opt = raw.trim();
    if (opt === '') continue;
    let key: string;
    let val: string | undefined;
    if (opt.startsWith('br:')) {
      key = 'br';
      val = opt.slice(3);
    } else {
      const eq = opt.indexOf('=');
      key = eq < 0 ? opt : opt.slice(0, eq);
      val = eq < 0 ? undefined : opt.slice(eq + 1);
    }
    switch (key) {
      case 'dirs':
      case 'br':
        if (val === undefined) throw bad(`${key} needs a branch list`);
        if (aufs) throw bad('branches given twice');
        aufs = splitEscaped(val, ':').filter((s) => s !== '');
        break;
      case 'lowerdir':
        if (val === undefined) throw bad('lowerdir needs a value');
        lower = splitEscaped(val, ':').filter((s) => s !== '');
        break;
      case 'upperdir':
        if (!val) throw bad('upperdir needs a value');
        upper = val;
        break;
      case 'workdir':
        if (!val) throw bad('workdir needs a value');
        workdir = resolvePath(unescape(val), cwd);
        break;
      case 'whiteout':
        if (val !== 'aufs' && val !== 'overlay') throw bad(`whiteout must be aufs or overlay, not '${val ?? ''}'`);
        whiteout = val;
        break;
      case 'dirrename':
        if (val === 'redirect') dirRename = 'redirect';
        else if (val === 'exdev' || val === 'xdev') dirRename = 'exdev';
        else throw bad(`dirrename must be redirect or exdev, not '${val ?? ''}'`);
        break;
      case 'redirect_dir':
        if (val === 'on' || val === 'follow') dirRename = 'redirect';
        else if (val === 'off' || val === 'nofollow') dirRename = 'exdev';
        else throw bad(`redirect_dir must be on or off, not '${val ?? ''}'`);
        break;
      case 'xdev':
      case 'exdev':
        if (val === undefined) dirRename = 'exdev';
        else extra[key] = val;
        break;
      case 'volatile':
        if (val !== undefined) throw bad(`volatile takes no value, got '${val}'`);
        volatile = true;
        break;
      case 'fsync':
        if (val === '0') volatile = true;
        else if (val !== '1') throw bad(`fsync must be 0 or 1, not '${val ?? ''}'`);
        break;
      case 'uidmapping':
        own.uidMap = parseIdMapping(key, val);
        break;
      case 'gidmapping':
        own.gidMap = parseIdMapping(key, val);
        break;
      case 'squash_to_root':
        if (val !== undefined) throw bad(`squash_to_root takes no value, got '${val}'`);
        squashRoot = true;
        break;
      case 'squash_to_uid':
        own.squashUid = parseId(key, val);
        break;
      case 'squash_to_gid':
        own.squashGid = parseId(key, val);
        break;
      case 'xattr_permissions':
        if (val === '1' || val === '2') own.xattrPermissions = Number(val) as 1 | 2;
        else if (val === '0') delete own.xattrPermissions;
        else throw bad(`xattr_permissions must be 0, 1 or 2, not '${val ?? ''}'`);
        break;
      case 'static_nlink':
        if (val !== undefined) throw bad(`static_nlink takes no value, got '${val}'`);
        staticNlink = true;
        break;
      case 'userxattr':
        if (val === undefined || val === 'on') userxattr = true;
        else if (val === 'off') userxattr = false;
        else throw bad(`userxattr must be on or off, not '${val}'`);
        break;
      case 'nouserxattr':
        if (val !== undefined) throw bad(`nouserxattr takes no value, got '${val}'`);
        userxattr = false;
        break;
      case 'noacl':
        // the transport does not negotiate POSIX ACLs with the kernel
        if (val !== undefined) throw bad(`noacl takes no value, got '${val}'`);
        noacl = true;
        break;
      case 'context':
      case 'fscontext':
      case 'defcontext':
      case 'rootcontext':
        break; // SELinux labels: FUSE mounts take none (as fuse-overlayfs, which ignores them)
      case 'xino':
        if (!val) throw bad('xino needs a path');
        xino = resolvePath(unescape(val), cwd);
        break;
      default:
        extra[key] = val === undefined ? true : val;
    }
  }

  let branches: BranchSpec[];
  if (aufs && (lower || upper)) throw bad('use either dirs=/br: or lowerdir=/upperdir=, not both');
  if (aufs) {
    branches = aufs.map((el, i) => {
      const b = parseBranchElement(el);
      const p = resolvePath(b.path, cwd);
      const perm: BranchPerm = b.perm ?? (i === 0 && isWritable(p) ? 'rw' : 'ro');
      return { path: p, perm, attrs: b.attrs };
    });
  } else {
    branches = [];
    if (upper !== undefined) branches.push({ path: resolvePath(unescape(upper), cwd), perm: 'rw', attrs: [] });
    for (const l of lower ?? []) branches.push({ path: resolvePath(unescape(l), cwd), perm: 'ro', attrs: [] });
    if (upper !== undefined && !lower) throw bad('upperdir needs lowerdir');
  }
  if (branches.length === 0) throw bad('no branch specified');
  if (workdir !== undefined && upper === undefined && !branches.some((b) => b.perm === 'rw')) {
    throw bad('workdir given without a writable branch');
  }
  // The overlay form writes what overlayfs and fuse-overlayfs write (char 0/0 whiteouts,
  // trusted.overlay.opaque): an upper dir a container engine handed us stays an overlay upper dir.
  whiteout ??= aufs ? 'aufs' : 'overlay';
  const out: UnionOptions = { branches, whiteout, dirRename, extra };
  if (workdir !== undefined) out.workdir = workdir;
  if (xino !== undefined) out.xino = xino;
  if (volatile) out.volatile = true;
  if (squashRoot) {
    own.squashUid ??= 0;
    own.squashGid ??= 0;
  }
  if (Object.keys(own).length > 0) out.ownership = own;
  if (staticNlink) out.staticNlink = true;
  if (noacl) out.noacl = true;
  if (userxattr ?? !isRealRoot()) out.userxattr = true;
  return out;
}

/** Format options back to a string (AUFS style), e.g. for introspection and remount. */
export function formatOptions(o: UnionOptions): string {
  const esc = (p: string) => p.replace(/([\\:,])/g, '\\$1');
  const parts = [`dirs=${o.branches.map((b) => `${esc(b.path)}=${[b.perm, ...b.attrs].join('+')}`).join(':')}`];
  if (o.workdir) parts.push(`workdir=${esc(o.workdir)}`);
  parts.push(`whiteout=${o.whiteout}`, `dirrename=${o.dirRename}`);
  if (o.xino) parts.push(`xino=${esc(o.xino)}`);
  if (o.volatile) parts.push('volatile');
  const own = o.ownership;
  const triples = (m: IdRange[]) => m.map((r) => `${r.stored}:${r.shown}:${r.count}`).join(':');
  if (own?.uidMap) parts.push(`uidmapping=${triples(own.uidMap)}`);
  if (own?.gidMap) parts.push(`gidmapping=${triples(own.gidMap)}`);
  if (own?.squashUid !== undefined) parts.push(`squash_to_uid=${own.squashUid}`);
  if (own?.squashGid !== undefined) parts.push(`squash_to_gid=${own.squashGid}`);
  if (own?.xattrPermissions) parts.push(`xattr_permissions=${own.xattrPermissions}`);
  if (o.staticNlink) parts.push('static_nlink');
  if (o.noacl) parts.push('noacl');
  if (o.userxattr) parts.push('userxattr');
  for (const [k, v] of Object.entries(o.extra)) parts.push(v === true ? k : `${k}=${v}`);
  return parts.join(',');
}
