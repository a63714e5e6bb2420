/** Argument normalisation shared by UnionFS and FileHandle: encodings, data, flags, modes, times. */
import { constants as C } from 'node:fs';
import type { TimeSpec } from '../engine/types.js';
import { O_ACCMODE } from '../sys/constants.js';

export type PathLike = string | Buffer | URL;
export type Data = string | NodeJS.ArrayBufferView | ArrayBuffer;
export type OpenFlags = string | number;
export type TimeLike = number | string | Date;

export interface ReadFileOptions {
  encoding?: BufferEncoding | null;
  flag?: OpenFlags;
}
export interface WriteFileOptions {
  encoding?: BufferEncoding | null;
  mode?: number | string;
  flag?: OpenFlags;
}

function invalidArg(name: string, value: unknown, reason: string): TypeError {
  const e = new TypeError(`The argument '${name}' ${reason}. Received ${String(value)}`);
  Object.defineProperty(e, 'code', { value: 'ERR_INVALID_ARG_VALUE', enumerable: true });
  return e;
}

/** Union path as a string ('file:' URLs map to their pathname). */
export function pathString(p: PathLike): string {
  if (typeof p === 'string') return p;
  if (Buffer.isBuffer(p)) return p.toString('utf8');
  if (p instanceof URL) return decodeURIComponent(p.pathname);
  throw invalidArg('path', p, 'must be a string, Buffer or URL');
}

export function toBuffer(data: Data, encoding: BufferEncoding | null | undefined = 'utf8'): Buffer {
  if (typeof data === 'string') return Buffer.from(data, encoding ?? 'utf8');
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw invalidArg('data', data, 'must be a string, Buffer, TypedArray or DataView');
}

const FLAGS: Record<string, number> = {
  r: C.O_RDONLY,
  rs: C.O_RDONLY | C.O_SYNC,
  sr: C.O_RDONLY | C.O_SYNC,
  'r+': C.O_RDWR,
  'rs+': C.O_RDWR | C.O_SYNC,
  'sr+': C.O_RDWR | C.O_SYNC,
  w: C.O_TRUNC | C.O_CREAT | C.O_WRONLY,
  wx: C.O_TRUNC | C.O_CREAT | C.O_WRONLY | C.O_EXCL,
  xw: C.O_TRUNC | C.O_CREAT | C.O_WRONLY | C.O_EXCL,
  'w+': C.O_TRUNC | C.O_CREAT | C.O_RDWR,
  'wx+': C.O_TRUNC | C.O_CREAT | C.O_RDWR | C.O_EXCL,
  'xw+': C.O_TRUNC | C.O_CREAT | C.O_RDWR | C.O_EXCL,
  a: C.O_APPEND | C.O_CREAT | C.O_WRONLY,
  ax: C.O_APPEND | C.O_CREAT | C.O_WRONLY | C.O_EXCL,
  xa: C.O_APPEND | C.O_CREAT | C.O_WRONLY | C.O_EXCL,
  as: C.O_APPEND | C.O_CREAT | C.O_WRONLY | C.O_SYNC,
  sa: C.O_APPEND | C.O_CREAT | C.O_WRONLY | C.O_SYNC,
  'a+': C.O_APPEND | C.O_CREAT | C.O_RDWR,
  'ax+': C.O_APPEND | C.O_CREAT | C.O_RDWR | C.O_EXCL,
  'xa+': C.O_APPEND | C.O_CREAT | C.O_RDWR | C.O_EXCL,
  'as+': C.O_APPEND | C.O_CREAT | C.O_RDWR | C.O_SYNC,
  'sa+': C.O_APPEND | C.O_CREAT | C.O_RDWR | C.O_SYNC,
};

/** node:fs flag strings ('r', 'w+', 'ax'...) or numbers -> Linux open flags. */
export function parseFlags(f: OpenFlags | undefined, dflt: string): number {
  if (f === undefined || f === null) return FLAGS[dflt]!;
  if (typeof f === 'number') return f;
  const n = FLAGS[f];
  if (n === undefined) throw invalidArg('flags', f, 'is invalid');
  return n;
}

function accessMode(flags: number): number {
  return flags & O_ACCMODE;
}
export function isWritable(flags: number): boolean {
  return accessMode(flags) !== C.O_RDONLY;
}

/** Mode as a number ('755' strings are octal, as node:fs accepts). */
export function parseMode(m: number | string | undefined, dflt: number): number {
  if (m === undefined || m === null) return dflt;
  if (typeof m === 'number') return m;
  if (/^[0-7]+$/.test(m)) return parseInt(m, 8);
  throw invalidArg('mode', m, 'must be a 32-bit unsigned integer or an octal string');
}

/** node:fs time arguments (seconds as number/string, or a Date) -> TimeSpec. */
export function toTimeSpec(t: TimeLike): TimeSpec {
  let secs: number;
  if (t instanceof Date) secs = t.getTime() / 1000;
  else if (typeof t === 'string' && t.trim() !== '' && !Number.isNaN(Number(t))) secs = Number(t);
  else if (typeof t === 'number') secs = t;
  else throw invalidArg('time', t, 'must be a number, numeric string or Date');
  if (!Number.isFinite(secs)) return 'now';
  let sec = Math.floor(secs);
  let nsec = Math.round((secs - sec) * 1e9);
  if (nsec >= 1e9) {
    sec += 1;
    nsec -= 1e9;
  }
  return { sec, nsec };
}

export function encodingOf(o: BufferEncoding | null | { encoding?: BufferEncoding | null } | undefined): BufferEncoding | null {
  if (o === undefined || o === null) return null;
  if (typeof o === 'string') return o;
  return o.encoding ?? null;
}
