/**
 * Extended attributes of files in a layer. Node has no xattr calls, so this uses the `attr` tools
 * (`getfattr`, `setfattr`; Debian package attr), never following symlinks (-h).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { storeErr } from './store-error.js';

/** Xattrs we never carry in a layer: overlay markers and layerfs's private ones. */
export function isPrivateXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.includes('layerfs');
}

export function setXattr(file: string, name: string, value: Buffer): void {
  const r = spawnSync('setfattr', ['-h', '-n', name, '-v', `0x${value.toString('hex')}`, '--', file], {
    encoding: 'utf8',
  });
  if (r.error) throw storeErr('ENOTSUP', `cannot set xattr ${name}: setfattr not available`);
  if (r.status !== 0) {
    const msg = (r.stderr || '').trim().split('\n')[0] ?? '';
    throw storeErr('EIO', `cannot set xattr ${name} on ${path.basename(file)}: ${msg.replace(/^setfattr: /, '')}`);
  }
}

function unescapeName(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length + 0 && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else if (raw[i] === 0x5c && raw[i + 1] === 0x5c) {
      bytes.push(0x5c);
      i += 1;
    } else {
      bytes.push(raw[i]!);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * All xattrs under `dir` (recursive, not following symlinks), keyed by path relative to `dir`
 * ('' for `dir` itself), private ones included (callers filter with isPrivateXattr).
 */
export function readXattrTree(dir: string): Map<string, Map<string, Buffer>> {
  const out = new Map<string, Map<string, Buffer>>();
  const r = spawnSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', dir], {
    maxBuffer: 1 << 30,
  });
  if (r.error) return out;
  let current: Map<string, Buffer> | undefined;
  for (const line of r.stdout.toString('utf8').split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = unescapeName(line.slice(8));
      const rel = path.relative(dir, abs);
      current = new Map();
      out.set(rel, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq <= 0) continue;
    const name = line.slice(0, eq);
    const v = line.slice(eq + 1);
    let value: Buffer;
    if (v.startsWith('0x')) value = Buffer.from(v.slice(2), 'hex');
    else if (v.startsWith('"')) value = Buffer.from(v.slice(1, -1), 'utf8');
    else value = Buffer.alloc(0);
    current.set(name, value);
  }
  for (const [k, m] of out) if (m.size === 0) out.delete(k);
  return out;
}
