/**
 * The tar format bits we write and sniff ourselves (ustar + PAX), byte-exact so layers are
 * reproducible and xattr values stay binary-safe (tar-stream decodes PAX values as UTF-8 text).
 *
 * Writing: `headerBlocks()` gives the 512-byte ustar header of an entry, preceded by a PAX
 * extended header when a field does not fit ustar (long or non-ASCII names, big ids or sizes) or
 * the entry has xattrs (`SCHILY.xattr.NAME`, value bytes as they are).
 * Reading: `PaxSniffer` watches the raw bytes of an archive and collects each entry's PAX xattrs
 * with their exact bytes, by entry number (the order tar-stream emits entries in).
 */

export type EntryType = 'file' | 'link' | 'symlink' | 'chr' | 'blk' | 'dir' | 'fifo';

export interface TarHeader {
  /** Relative path; directories end with `/`. */
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Whole seconds. */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Sorted by the caller. */
  xattrs?: [string, Buffer][];
}

const TYPEFLAG: Record<EntryType, string> = { file: '0', link: '1', symlink: '2', chr: '3', blk: '4', dir: '5', fifo: '6' };
const MAX_ID = 0o7777777;
const MAX_SIZE = 0o77777777777;

export const END_OF_ARCHIVE = Buffer.alloc(1024);

/** Zero bytes that pad `size` bytes of data to a whole block. */
export function padding(size: number): Buffer {
  const r = size % 512;
  return r === 0 ? Buffer.alloc(0) : Buffer.alloc(512 - r);
}

function octal(buf: Buffer, off: number, width: number, v: number): void {
  // width-1 octal digits, zero-padded, then NUL
  buf.write(v.toString(8).padStart(width - 1, '0'), off, width - 1, 'latin1');
  buf[off + width - 1] = 0;
}

function isAscii(s: string): boolean {
  return /^[\x20-\x7e]*$/.test(s);
}

/** ustar name/prefix split, or undefined when the name needs PAX. */
function splitName(name: string): { name: string; prefix: string } | undefined {
  if (!isAscii(name)) return undefined;
  if (name.length <= 100) return { name, prefix: '' };
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (prefix.length <= 155 && rest.length <= 100 && rest.length > 0) return { name: rest, prefix };
    if (prefix.length > 155) break;
  }
  return undefined;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let digits = String(body.length).length;
  if (String(body.length + digits).length > digits) digits++;
  return Buffer.concat([Buffer.from(String(body.length + digits), 'latin1'), body]);
}

function ustar(f: {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}): Buffer {
  const b = Buffer.alloc(512);
  b.write(f.name, 0, 100, 'utf8');
  octal(b, 100, 8, f.mode & 0o7777);
  octal(b, 108, 8, f.uid);
  octal(b, 116, 8, f.gid);
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, f.mtime);
  b.write(f.typeflag, 156, 1, 'latin1');
  b.write(f.linkname, 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 8, 'latin1');
  octal(b, 329, 8, f.devmajor);
  octal(b, 337, 8, f.devminor);
  b.write(f.prefix, 345, 155, 'utf8');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

/** The header block(s) of one entry: [PAX header + its data] + ustar header. */
export function headerBlocks(h: TarHeader): Buffer {
  const records: Buffer[] = [];
  const split = splitName(h.name);
  let name = split?.name ?? '';
  const prefix = split?.prefix ?? '';
  if (!split) {
    records.push(paxRecord('path', Buffer.from(h.name, 'utf8')));
    name = Buffer.from(h.name, 'utf8').subarray(0, 100).toString('latin1').replace(/[^\x20-\x7e]/g, '_');
  }
  let linkname = h.linkname ?? '';
  if (linkname.length > 100 || !isAscii(linkname)) {
    records.push(paxRecord('linkpath', Buffer.from(linkname, 'utf8')));
    linkname = Buffer.from(linkname, 'utf8').subarray(0, 100).toString('latin1').replace(/[^\x20-\x7e]/g, '_');
  }
  let size = h.size;
  if (size > MAX_SIZE) {
    records.push(paxRecord('size', Buffer.from(String(size))));
    size = 0;
  }
  let uid = h.uid;
  let gid = h.gid;
  if (uid > MAX_ID) {
    records.push(paxRecord('uid', Buffer.from(String(uid))));
    uid = 0;
  }
  if (gid > MAX_ID) {
    records.push(paxRecord('gid', Buffer.from(String(gid))));
    gid = 0;
  }
  for (const [k, v] of h.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
  const main = ustar({
    name,
    prefix,
    mode: h.mode,
    uid,
    gid,
    size,
    mtime: h.mtime,
    typeflag: TYPEFLAG[h.type],
    linkname,
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  });
  if (records.length === 0) return main;
  const pax = Buffer.concat(records);
  const paxHeader = ustar({
    name: 'PaxHeader',
    prefix: '',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: pax.length,
    mtime: h.mtime,
    typeflag: 'x',
    linkname: '',
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([paxHeader, pax, padding(pax.length), main]);
}

/** PAX records of an extended header, values as raw bytes. */
export function parsePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < buf.length) {
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(buf.subarray(off, sp).toString('latin1'), 10);
    if (!(len > 0) || off + len > buf.length) break;
    const rec = buf.subarray(sp + 1, off + len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    off += len;
  }
  return out;
}

function readSize(h: Buffer): number {
  if (h[124]! & 0x80) {
    let v = 0;
    for (let i = 125; i < 136; i++) v = v * 256 + h[i]!;
    return v;
  }
  const s = h.subarray(124, 136).toString('latin1').replace(/[\0 ]+$/, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

/**
 * Follows an archive's raw bytes (fed in order) and records, for each entry number, the xattrs its
 * PAX headers (local and global) carry, byte-exact. Entries are numbered as tar-stream emits them:
 * every header except PAX (`x`, `g`) and GNU long name (`L`, `K`) headers.
 */
export class PaxSniffer {
  private buf: Buffer = Buffer.alloc(0);
  private skip = 0;
  private collect: { type: string; size: number } | undefined;
  private local: Map<string, Buffer> | undefined;
  private global = new Map<string, Buffer>();
  private entry = 0;
  private ended = false;
  readonly xattrs = new Map<number, [string, Buffer][]>();

  push(chunk: Buffer): void {
    if (this.ended) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, this.buf.length);
        this.buf = this.buf.subarray(n);
        this.skip -= n;
        if (this.skip > 0) return;
      }
      if (this.collect) {
        const need = this.collect.size + padding(this.collect.size).length;
        if (this.buf.length < need) return;
        const body = this.buf.subarray(0, this.collect.size);
        if (this.collect.type === 'x') this.local = parsePax(body);
        else if (this.collect.type === 'g') for (const [k, v] of parsePax(body)) this.global.set(k, v);
        this.buf = this.buf.subarray(need);
        this.collect = undefined;
        continue;
      }
      if (this.buf.length < 512) return;
      const h = this.buf.subarray(0, 512);
      this.buf = this.buf.subarray(512);
      if (h.every((b) => b === 0)) continue;
      const type = String.fromCharCode(h[156]!);
      let size = readSize(h);
      if (!Number.isSafeInteger(size) || size < 0) {
        this.ended = true; // a corrupt header: tar-stream reports it, we stop following
        return;
      }
      if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
        if (size > 1 << 24) {
          this.ended = true; // tar-stream refuses this archive anyway
          return;
        }
        this.collect = { type, size };
        continue;
      }
      const pax = new Map([...this.global, ...(this.local ?? [])]);
      this.local = undefined;
      const x: [string, Buffer][] = [];
      for (const [k, v] of pax) if (k.startsWith('SCHILY.xattr.')) x.push([k.slice('SCHILY.xattr.'.length), v]);
      if (x.length > 0) this.xattrs.set(this.entry, x.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
      const paxSize = pax.get('size');
      if (paxSize !== undefined) size = Math.max(0, parseInt(paxSize.toString('latin1'), 10) || 0);
      if (type === '5') size = 0; // as tar-stream: directories carry no data
      this.entry++;
      this.skip = size + padding(size).length;
    }
  }
}
