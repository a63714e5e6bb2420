/**
 * node:fs-like Stats, BigIntStats and Dirent built from the engine's Attr / DirEntry.
 * Same field names and predicate methods as node:fs (`instanceof fs.Stats` does not hold).
 */
import { DT, type Attr } from '../engine/types.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from '../sys/constants.js';

const S = { REG: S_IFREG, DIR: S_IFDIR, LNK: S_IFLNK, CHR: S_IFCHR, BLK: S_IFBLK, FIFO: S_IFIFO, SOCK: S_IFSOCK };

/** Device number reported for every union node (one union = one device). */
export const UNION_DEV = 0;

abstract class ModePredicates {
  /** The S_IFMT bits of the entry. */
  protected abstract kind(): number;
  isFile(): boolean {
    return this.kind() === S.REG;
  }
  isDirectory(): boolean {
    return this.kind() === S.DIR;
  }
  isSymbolicLink(): boolean {
    return this.kind() === S.LNK;
  }
  isCharacterDevice(): boolean {
    return this.kind() === S.CHR;
  }
  isBlockDevice(): boolean {
    return this.kind() === S.BLK;
  }
  isFIFO(): boolean {
    return this.kind() === S.FIFO;
  }
  isSocket(): boolean {
    return this.kind() === S.SOCK;
  }
}

function ms(sec: number, nsec: number): number {
  return sec * 1000 + nsec / 1e6;
}

export class Stats extends ModePredicates {
  readonly dev: number;
  readonly ino: number;
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly rdev: number;
  readonly size: number;
  readonly blksize: number;
  readonly blocks: number;
  readonly atimeMs: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly birthtimeMs: number;
  readonly atime: Date;
  readonly mtime: Date;
  readonly ctime: Date;
  readonly birthtime: Date;

  protected kind(): number {
    return this.mode & S_IFMT;
  }

  constructor(a: Attr) {
    super();
    this.dev = UNION_DEV;
    this.ino = a.ino;
    this.mode = a.mode;
    this.nlink = a.nlink;
    this.uid = a.uid;
    this.gid = a.gid;
    this.rdev = a.rdev;
    this.size = a.size;
    this.blksize = a.blksize;
    this.blocks = a.blocks;
    this.atimeMs = ms(a.atimeSec, a.atimeNsec);
    this.mtimeMs = ms(a.mtimeSec, a.mtimeNsec);
    this.ctimeMs = ms(a.ctimeSec, a.ctimeNsec);
    this.birthtimeMs = 0; // no birth time in a union
    this.atime = new Date(Math.floor(this.atimeMs));
    this.mtime = new Date(Math.floor(this.mtimeMs));
    this.ctime = new Date(Math.floor(this.ctimeMs));
    this.birthtime = new Date(0);
  }
}

function ns(sec: number, nsec: number): bigint {
  return BigInt(sec) * 1_000_000_000n + BigInt(nsec);
}

/** `stat(p, { bigint: true })`: every number a bigint, plus the `*Ns` nanosecond times. */
export class BigIntStats extends ModePredicates {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly mode: bigint;
  readonly nlink: bigint;
  readonly uid: bigint;
  readonly gid: bigint;
  readonly rdev: bigint;
  readonly size: bigint;
  readonly blksize: bigint;
  readonly blocks: bigint;
  readonly atimeMs: bigint;
  readonly mtimeMs: bigint;
  readonly ctimeMs: bigint;
  readonly birthtimeMs: bigint;
  readonly atimeNs: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly birthtimeNs: bigint;
  readonly atime: Date;
  readonly mtime: Date;
  readonly ctime: Date;
  readonly birthtime: Date;

  protected kind(): number {
    return Number(this.mode) & S_IFMT;
  }

  constructor(a: Attr) {
    super();
    this.dev = BigInt(UNION_DEV);
    this.ino = BigInt(a.ino);
    this.mode = BigInt(a.mode);
    this.nlink = BigInt(a.nlink);
    this.uid = BigInt(a.uid);
    this.gid = BigInt(a.gid);
    this.rdev = BigInt(a.rdev);
    this.size = BigInt(a.size);
    this.blksize = BigInt(a.blksize);
    this.blocks = BigInt(a.blocks);
    this.atimeNs = ns(a.atimeSec, a.atimeNsec);
    this.mtimeNs = ns(a.mtimeSec, a.mtimeNsec);
    this.ctimeNs = ns(a.ctimeSec, a.ctimeNsec);
    this.birthtimeNs = 0n;
    this.atimeMs = this.atimeNs / 1_000_000n;
    this.mtimeMs = this.mtimeNs / 1_000_000n;
    this.ctimeMs = this.ctimeNs / 1_000_000n;
    this.birthtimeMs = 0n;
    this.atime = new Date(Number(this.atimeMs));
    this.mtime = new Date(Number(this.mtimeMs));
    this.ctime = new Date(Number(this.ctimeMs));
    this.birthtime = new Date(0);
  }
}

const DT_TO_MODE: Record<number, number> = {
  [DT.REG]: S.REG,
  [DT.DIR]: S.DIR,
  [DT.LNK]: S.LNK,
  [DT.CHR]: S.CHR,
  [DT.BLK]: S.BLK,
  [DT.FIFO]: S.FIFO,
  [DT.SOCK]: S.SOCK,
};

/** `readdir(p, { withFileTypes: true })` entries. */
export class Dirent extends ModePredicates {
  readonly name: string;
  /** Directory holding the entry (union path). */
  readonly parentPath: string;
  /** Same as parentPath (node 20's older name). */
  readonly path: string;
  #type: number;
  constructor(name: string, parentPath: string, dtype: number) {
    super();
    this.name = name;
    this.parentPath = parentPath;
    this.path = parentPath;
    this.#type = DT_TO_MODE[dtype] ?? 0;
  }

  protected kind(): number {
    return this.#type;
  }
}
