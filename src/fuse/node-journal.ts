/**
 * The node journal of a supervised mount: what a daemon started after a crash needs to serve the
 * node ids and file handles the kernel still holds (restore.ts reads it back).
 *
 * Records, appended before the reply that hands something to the kernel:
 *   NAME id parent name   a node id was handed out for `name` in the directory `parent` (LOOKUP,
 *                         CREATE, MKDIR, MKNOD, SYMLINK, LINK, READDIRPLUS), or got it by RENAME
 *   DROP id               forgotten by the kernel, or its name was removed (unlink, rmdir,
 *                         replaced by a rename): it cannot be found by name any more
 *   FOPEN fh id flags / FCLOSE fh, DOPEN fh id / DCLOSE fh   open handles
 *   CARRY unique opcode   a request a dead daemon was serving (it may have been done), inherited by
 *                         a daemon that took over: kept until that daemon has served the kernel's
 *                         resend of it (SERVED unique), across any number of takeovers
 * and one slot in the header, the request begun last (its unique and opcode), so the daemon after
 * a crash knows which resent request may have been done already (replay.ts). The slot is not
 * cleared when the request has been handled: its reply is written after that, and a daemon killed
 * in between leaves a done request the kernel sends again. The next request overwrites it (the
 * reply of the one before is written by then); a slot naming a request that was answered is
 * harmless, as the kernel never sends an answered request again nor reuses its unique.
 *
 * Cost: the file is mapped shared (native mmapShared) on the runtime dir: a record is a few stores
 * into memory, no syscall, and every store made before the process dies is in the page cache for
 * the next daemon. A record counts once `used` (written after it) covers it. When the file is
 * full it is compacted (the live records written to a new file, renamed over the old) and grows
 * when the live records fill more than half of it.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, renameSync, rmSync } from 'node:fs';
import { mmapShared } from '../sys/supervise.js';
import { judgedOnResend } from './replay.js';

const MAGIC = 0x314a464c; // 'LFJ1'
const HEADER = 64;
const H_USED = 4;
const H_UNIQUE = 8;
const H_OPCODE = 16;
const REC = 23; // type u8, name length u16, a f64, b f64, c u32, then the name
const INITIAL = 1 << 20;

export const enum Rec {
  NAME = 1,
  DROP = 2,
  FOPEN = 3,
  FCLOSE = 4,
  DOPEN = 5,
  DCLOSE = 6,
  /** A rename about to be done (rename-intent.ts): kind in c, see MoveKind. */
  MOVE = 7,
  /** A request inherited from a dead daemon (a = unique, c = opcode), not yet served again. */
  CARRY = 8,
  /** The inherited request with unique a has been served (its reply follows). */
  SERVED = 9,
}

/** MOVE records: a rename's intent, written before it, superseded by its outcome (NAME / DROP). */
export const enum MoveKind {
  /** a = the id of the source, b/name = its new name once the rename is done */
  MOVED = 0,
  /** a = an id of the replaced target: gone once the rename is done */
  REPLACED = 1,
  /** b/name = the source's old name (parent id, name): the rename is done when it is gone */
  SOURCE = 2,
}

export interface InFlight {
  unique: number;
  opcode: number;
}

export interface Move {
  kind: MoveKind;
  id: number;
  parent: number;
  name: string;
}

/** What a journal says is live. */
export interface JournalState {
  names: Map<number, { parent: number; name: string }>;
  files: Map<number, { id: number; flags: number }>;
  dirs: Map<number, number>;
  /**
   * The requests the dead daemon may have done without answering: the one in its slot and those it
   * carried (inherited itself and not yet served again).
   */
  inflight: InFlight[];
  /** A rename's intent with no outcome journaled (the daemon died in it): rename-intent.ts decides. */
  moves: Move[];
  maxId: number;
  maxFh: number;
}

function emptyState(): JournalState {
  return { names: new Map(), files: new Map(), dirs: new Map(), inflight: [], moves: [], maxId: 1, maxFh: 0 };
}

/**
 * Carried requests kept at most (the oldest dropped): a dead daemon's slot usually names a request
 * it did answer, which is never sent again and so never served: without a bound, one per takeover
 * would pile up. The oldest are those: the kernel puts the resent requests ahead of any new one
 * (FUSE_NOTIFY_RESEND), so a daemon that began a new request had served every resend before it,
 * and a carried request older than the newest one was answered.
 */
const MAX_CARRIED = 64;

/** The header slot of a mapped journal. */
function slotOf(buf: Buffer): InFlight | null {
  const unique = buf.readDoubleLE(H_UNIQUE);
  return unique !== 0 ? { unique, opcode: buf.readUInt32LE(H_OPCODE) } : null;
}

/** Replay the records of a mapped journal; `withSlot`: the header slot counts as in flight too. */
function replay(buf: Buffer, withSlot = true): JournalState {
  const s = emptyState();
  if (buf.length < HEADER || buf.readUInt32LE(0) !== MAGIC) return s;
  const end = Math.min(HEADER + buf.readUInt32LE(H_USED), buf.length);
  records: for (let at = HEADER; at + REC <= end; ) {
    const type = buf[at]!;
    const len = buf.readUInt16LE(at + 1);
    const a = buf.readDoubleLE(at + 3);
    const b = buf.readDoubleLE(at + 11);
    const c = buf.readUInt32LE(at + 19);
    if (at + REC + len > end) break;
    switch (type) {
      case Rec.MOVE:
        if (c === MoveKind.SOURCE) s.moves = [];
        s.moves.push({ kind: c as MoveKind, id: a, parent: b, name: buf.toString('utf8', at + REC, at + REC + len) });
        break;
      case Rec.NAME:
        s.names.set(a, { parent: b, name: buf.toString('utf8', at + REC, at + REC + len) });
        if (a > s.maxId) s.maxId = a;
        break;
      case Rec.DROP:
        if (a === 0) s.moves = []; // moved(): the rename's outcome is all journaled (or it failed)
        s.names.delete(a);
        break;
      case Rec.FOPEN:
        s.files.set(a, { id: b, flags: c });
        if (a > s.maxFh) s.maxFh = a;
        break;
      case Rec.FCLOSE:
        s.files.delete(a);
        break;
      case Rec.DOPEN:
        s.dirs.set(a, b);
        if (a > s.maxFh) s.maxFh = a;
        break;
      case Rec.DCLOSE:
        s.dirs.delete(a);
        break;
      case Rec.CARRY:
        if (!s.inflight.some((f) => f.unique === a)) s.inflight.push({ unique: a, opcode: c });
        break;
      case Rec.SERVED:
        s.inflight = s.inflight.filter((f) => f.unique !== a);
        break;
      default:
        break records; // torn or foreign: what came before stands
    }
    at += REC + len;
  }
  const slot = withSlot ? slotOf(buf) : null;
  if (slot !== null && judgedOnResend(slot.opcode) && !s.inflight.some((f) => f.unique === slot.unique)) s.inflight.push(slot);
  if (s.inflight.length > MAX_CARRIED) s.inflight = s.inflight.sort((x, y) => x.unique - y.unique).slice(-MAX_CARRIED);
  return s;
}

export class NodeJournal {
  private fd = -1;
  private buf: Buffer = Buffer.alloc(0);
  private used = 0;
  /** Ids and handles only grow: a compacted journal keeps the highest seen (restore starts above). */
  private maxId = 1;
  private maxFh = 0;

  private constructor(readonly path: string) {}

  /** A new, empty journal at `path` (replacing any). */
  static create(path: string): NodeJournal {
    const j = new NodeJournal(path);
    j.mapFresh(emptyState(), INITIAL);
    return j;
  }

  /** Read the journal a dead daemon left, then go on journaling (compacted) in the same file. */
  static resume(path: string): { journal: NodeJournal; state: JournalState } {
    let state = emptyState();
    try {
      const fd = openSync(path, 'r+');
      try {
        const { size } = fstatSync(fd);
        if (size >= HEADER) state = replay(Buffer.from(mmapShared(fd, size)));
      } finally {
        closeSync(fd);
      }
    } catch {
      /* no journal: nothing known beyond the root */
    }
    const j = new NodeJournal(path);
    let cap = INITIAL;
    while (cap < liveBytes(state) * 2) cap *= 2;
    j.mapFresh(state, cap);
    return { journal: j, state };
  }

  /** Write `state` (and the slot, if any) into a new file of `cap` bytes and rename it over the journal. */
  private mapFresh(state: JournalState, cap: number, slot: InFlight | null = null): void {
    const tmp = `${this.path}.new`;
    const fd = openSync(tmp, 'w+', 0o600);
    ftruncateSync(fd, cap);
    const buf = Buffer.from(mmapShared(fd, cap));
    buf.writeUInt32LE(MAGIC, 0);
    this.maxId = Math.max(this.maxId, state.maxId);
    this.maxFh = Math.max(this.maxFh, state.maxFh);
    let at = HEADER;
    const put = (type: Rec, a: number, b: number, c: number, name: string): void => {
      const len = buf.write(name, at + REC, 'utf8');
      buf[at] = type;
      buf.writeUInt16LE(len, at + 1);
      buf.writeDoubleLE(a, at + 3);
      buf.writeDoubleLE(b, at + 11);
      buf.writeUInt32LE(c, at + 19);
      at += REC + len;
    };
    // the highest ids first, so that a later restore starts above them even when they are gone
    put(Rec.NAME, this.maxId, 0, 0, '');
    put(Rec.DROP, this.maxId, 0, 0, '');
    put(Rec.DOPEN, this.maxFh, 0, 0, '');
    put(Rec.DCLOSE, this.maxFh, 0, 0, '');
    for (const [id, n] of state.names) put(Rec.NAME, id, n.parent, 0, n.name);
    for (const [fh, f] of state.files) put(Rec.FOPEN, fh, f.id, f.flags, '');
    for (const [fh, id] of state.dirs) put(Rec.DOPEN, fh, id, 0, '');
    // a rename's intent still open (compacted inside it): last, as it was written
    for (const m of state.moves) put(Rec.MOVE, m.id, m.parent, m.kind, m.name);
    // the requests a dead daemon may have done: carried until served again (the slot starts empty)
    for (const f of state.inflight) put(Rec.CARRY, f.unique, 0, f.opcode, '');
    buf.writeUInt32LE(at - HEADER, H_USED);
    if (slot !== null) {
      buf.writeUInt32LE(slot.opcode, H_OPCODE);
      buf.writeDoubleLE(slot.unique, H_UNIQUE);
    }
    renameSync(tmp, this.path);
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = fd;
    this.buf = buf;
    this.used = at - HEADER;
  }

  private append(type: Rec, a: number, b: number, c: number, name: string): void {
    const need = REC + Buffer.byteLength(name, 'utf8');
    if (HEADER + this.used + need > this.buf.length) this.compact(need);
    const buf = this.buf;
    const at = HEADER + this.used;
    if (name.length > 0) buf.write(name, at + REC, 'utf8');
    buf[at] = type;
    buf.writeUInt16LE(need - REC, at + 1);
    buf.writeDoubleLE(a, at + 3);
    buf.writeDoubleLE(b, at + 11);
    buf.writeUInt32LE(c, at + 19);
    this.used += need;
    buf.writeUInt32LE(this.used, H_USED);
  }

  private compact(need: number): void {
    // the request being served stays in the slot (not carried: this daemon serves it)
    const state = replay(this.buf, false);
    let cap = this.buf.length;
    while (liveBytes(state) * 2 + need > cap) cap *= 2;
    this.mapFresh(state, cap, slotOf(this.buf));
  }

  named(id: number, parent: number, name: string): void {
    if (id > this.maxId) this.maxId = id;
    this.append(Rec.NAME, id, parent, 0, name);
  }

  dropped(id: number): void {
    this.append(Rec.DROP, id, 0, 0, '');
  }

  /** A rename's intent (before it): the SOURCE record first, then its MOVED / REPLACED ids. */
  moving(kind: MoveKind, id: number, parent: number, name: string): void {
    this.append(Rec.MOVE, id, parent, kind, name);
  }

  /** A rename's outcome is journaled or it failed: its intent no longer counts. */
  moved(): void {
    this.append(Rec.DROP, 0, 0, 0, '');
  }

  fileOpened(fh: number, id: number, flags: number): void {
    if (fh > this.maxFh) this.maxFh = fh;
    this.append(Rec.FOPEN, fh, id, flags >>> 0, '');
  }

  fileClosed(fh: number): void {
    this.append(Rec.FCLOSE, fh, 0, 0, '');
  }

  dirOpened(fh: number, id: number): void {
    if (fh > this.maxFh) this.maxFh = fh;
    this.append(Rec.DOPEN, fh, id, 0, '');
  }

  dirClosed(fh: number): void {
    this.append(Rec.DCLOSE, fh, 0, 0, '');
  }

  /** The request served from now on (its unique and opcode): in the slot until the next one. */
  begin(unique: number, opcode: number): void {
    this.buf.writeUInt32LE(opcode, H_OPCODE);
    this.buf.writeDoubleLE(unique, H_UNIQUE);
  }

  /**
   * An inherited request (CARRY) has been served again: no longer carried. Called before its reply
   * is written: the slot (begun with the same unique) covers it until the next request begins.
   */
  served(unique: number): void {
    this.append(Rec.SERVED, unique, 0, 0, '');
  }

  /** Bytes of records now (tests, compaction). */
  get size(): number {
    return this.used;
  }

  /** Close; `remove`: the mount ended, the journal is of no more use. */
  close(remove: boolean): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.buf = Buffer.alloc(0);
    if (remove) rmSync(this.path, { force: true });
  }
}

function liveBytes(s: JournalState): number {
  let n = HEADER + (4 + s.inflight.length + s.moves.length) * REC;
  for (const m of s.moves) n += Buffer.byteLength(m.name, 'utf8');
  for (const v of s.names.values()) n += REC + Buffer.byteLength(v.name, 'utf8');
  return n + (s.files.size + s.dirs.size) * REC;
}
