/**
 * `node random-io-run.js MNT SEED OPS MMAP_HELPER`: the random I/O checker, a process of its own (its
 * calls on the mount are synchronous and may block while a daemon restarts; the test runs it under a
 * hard timeout). Ops, chosen by the seed: writes at offsets (past the end, across pages), truncates,
 * renames of files and dirs (over existing ones too), unlink, mkdir/rmdir, two fds on one file, fds
 * held across many ops (the file renamed or unlinked meanwhile), mmap write + msync (a python3
 * helper), chmod, user.* xattrs, fsync, directory listings. Every read is compared with the model;
 * every errno with the one the model predicts.
 *
 * Exit 0 and `ok N` on stdout, or exit 1 and one line on stderr naming the op (#, name, path, offset)
 * and what was wrong. Each op is announced on stderr first, so a hang shows where it stopped.
 */
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { lgetxattr, lsetxattr } from '../../src/sys/native.js';
import { rng } from './rng.js';
import { childrenOf, firstDifference, initialModel, parentOf, type MFile } from './random-io-model.js';

const [mnt, seedArg, opsArg, mmapHelper] = process.argv.slice(2);
if (!mnt || !seedArg || !opsArg || !mmapHelper) {
  console.error('random-io-run: usage: random-io-run.js MNT SEED OPS MMAP_HELPER');
  process.exit(2);
}
const rand = rng(Number(seedArg));
const OPS = Number(opsArg);
const model = initialModel();
const held: { fd: number; file: MFile; path: string }[] = [];

class Failure extends Error {}

let opNo = 0;
let opDesc = '';
function fail(msg: string): never {
  throw new Failure(`op #${opNo} ${opDesc}: ${msg}`);
}
const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
function bytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}
/** Name the op about to run (stderr, synchronous on a pipe: after a hang the last line says where). */
function desc(s: string): void {
  opDesc = s;
  process.stderr.write(`#${opNo} ${s}\n`);
}
const abs = (p: string) => (p === '' ? mnt! : join(mnt!, p));
const files = () => [...model].filter(([, n]) => n.kind === 'file').map(([p]) => p);
const dirs = () => [...model].filter(([, n]) => n.kind === 'dir').map(([p]) => p);
const NAMES = ['a', 'b', 'c', 'd0', 'd1', 'f0', 'f1', 'x'];
/** A path that does not exist, in an existing dir. */
function freshPath(): string {
  for (let i = 0; i < 20; i++) {
    const d = pick(dirs());
    const p = d === '' ? pick(NAMES) : `${d}/${pick(NAMES)}`;
    if (!model.has(p)) return p;
  }
  return `n${opNo}`;
}

/** Call fn; any error is a failure naming its code (the model predicts success). */
function must<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    fail(`${what} failed: ${err.code ?? ''} ${err.message}`);
  }
}
/** Call fn; it must fail with `code`. */
function mustFail(what: string, code: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === code) return;
    fail(`${what} failed with ${err.code} (${err.message}), the model says ${code}`);
  }
  fail(`${what} succeeded, the model says ${code}`);
}

function checkFile(p: string, f: MFile, how = 'read'): void {
  const got = must(`${how} ${p}`, () => fs.readFileSync(abs(p)));
  const d = firstDifference(f.data, got);
  if (d) fail(`${how} of ${p}: ${d}`);
  const st = must(`stat ${p}`, () => fs.statSync(abs(p)));
  if (st.size !== f.data.length) fail(`stat ${p}: size ${st.size}, the model says ${f.data.length}`);
  if ((st.mode & 0o7777) !== f.mode) fail(`stat ${p}: mode ${(st.mode & 0o7777).toString(8)}, the model says ${f.mode.toString(8)}`);
}

function writeInto(f: MFile, off: number, data: Buffer): void {
  if (off + data.length > f.data.length) {
    const n = Buffer.alloc(off + data.length);
    f.data.copy(n);
    f.data = n;
  }
  data.copy(f.data, off);
}

function pread(fd: number, len: number, off: number): Buffer {
  const b = Buffer.alloc(len);
  let n = 0;
  while (n < len) {
    const r = fs.readSync(fd, b, n, len - n, off + n);
    if (r === 0) break;
    n += r;
  }
  return b.subarray(0, n);
}

function renameInModel(from: string, to: string): void {
  for (const k of [...model.keys()]) if (k === to || k.startsWith(to + '/')) model.delete(k);
  for (const [k, v] of [...model]) {
    if (k === from || k.startsWith(from + '/')) {
      model.delete(k);
      model.set(to + k.slice(from.length), v);
    }
  }
}

const ops: [number, () => void][] = [
  [25, opWrite],
  [8, opTruncate],
  [8, opReadCheck],
  [8, opRenameFile],
  [4, opRenameDir],
  [5, opUnlink],
  [5, opMkdir],
  [4, opRmdir],
  [5, opTwoFds],
  [4, opHeldOpen],
  [6, opHeldWrite],
  [3, opHeldClose],
  [4, opMmap],
  [3, opChmod],
  [2, opXattr],
  [2, opFsync],
  [4, opListDir],
];

function opWrite(): void {
  const existing = files();
  const p = existing.length && rand() < 0.75 ? pick(existing) : freshPath();
  let f = model.get(p) as MFile | undefined;
  const off = int(0, (f?.data.length ?? 0) + 9000);
  const data = bytes(int(1, 20_000));
  desc(`write ${p} off=${off} len=${data.length}`);
  const fd = must(`open ${p}`, () => fs.openSync(abs(p), fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644));
  if (!f) {
    f = { kind: 'file', data: Buffer.alloc(0), mode: 0o644, xattrs: new Map() };
    model.set(p, f);
  }
  must('pwrite', () => fs.writeSync(fd, data, 0, data.length, off));
  writeInto(f, off, data);
  must('close', () => fs.closeSync(fd));
  checkFile(p, f, 'read back');
}

function opTruncate(): void {
  const fl = files();
  if (!fl.length) return;
  const p = pick(fl);
  const f = model.get(p) as MFile;
  const len = int(0, Math.floor(f.data.length * 1.5) + 100);
  desc(`truncate ${p} len=${len}`);
  must('truncate', () => fs.truncateSync(abs(p), len));
  const n = Buffer.alloc(len);
  f.data.copy(n, 0, 0, Math.min(len, f.data.length));
  f.data = n;
  checkFile(p, f, 'read after truncate');
}

function opReadCheck(): void {
  const fl = files();
  if (!fl.length) return;
  const p = pick(fl);
  desc(`read ${p}`);
  checkFile(p, model.get(p) as MFile);
}

function opRenameFile(): void {
  const fl = files();
  if (!fl.length) return;
  const from = pick(fl);
  const to = rand() < 0.4 && fl.length > 1 ? pick(fl.filter((x) => x !== from)) : freshPath();
  desc(`rename file ${from} -> ${to}${model.has(to) ? ' (over an existing file)' : ''}`);
  must('rename', () => fs.renameSync(abs(from), abs(to)));
  for (const h of held) if (h.path === to) h.path = ''; // the file renamed over is unlinked now
  renameInModel(from, to);
  for (const h of held) if (h.path === from) h.path = to;
  mustFail(`stat of the old name ${from}`, 'ENOENT', () => fs.lstatSync(abs(from)));
  checkFile(to, model.get(to) as MFile, 'read after rename');
}

function opRenameDir(): void {
  const ds = dirs().filter((d) => d !== '');
  if (!ds.length) return;
  const from = pick(ds);
  const targets = dirs().filter((d) => d !== from && !d.startsWith(from + '/') && !from.startsWith(d + '/') && d !== parentOf(from) && d !== '');
  const emptyTargets = targets.filter((d) => childrenOf(model, d).length === 0);
  let to = emptyTargets.length && rand() < 0.3 ? pick(emptyTargets) : freshPath();
  if (to === from || to.startsWith(from + '/')) to = `r${opNo}`;
  desc(`rename dir ${from} -> ${to}${model.has(to) ? ' (over an empty dir)' : ''}`);
  must('rename', () => fs.renameSync(abs(from), abs(to)));
  renameInModel(from, to);
  for (const h of held) if (h.path === from || h.path.startsWith(from + '/')) h.path = to + h.path.slice(from.length);
  const got = must(`readdir ${to}`, () => fs.readdirSync(abs(to)).sort());
  const want = childrenOf(model, to);
  if (got.join('/') !== want.join('/')) fail(`readdir ${to} after rename: [${got}], the model says [${want}]`);
}

function opUnlink(): void {
  const fl = files();
  if (!fl.length) return;
  const p = pick(fl);
  desc(`unlink ${p}`);
  must('unlink', () => fs.unlinkSync(abs(p)));
  model.delete(p);
  for (const h of held) if (h.path === p) h.path = '';
  mustFail(`stat after unlink ${p}`, 'ENOENT', () => fs.lstatSync(abs(p)));
}

function opMkdir(): void {
  const p = freshPath();
  desc(`mkdir ${p}`);
  must('mkdir', () => fs.mkdirSync(abs(p), 0o755));
  model.set(p, { kind: 'dir', mode: 0o755 });
  const st = must('stat', () => fs.statSync(abs(p)));
  if (!st.isDirectory()) fail('not a directory after mkdir');
}

function opRmdir(): void {
  const ds = dirs().filter((d) => d !== '');
  if (!ds.length) return;
  const p = pick(ds);
  if (childrenOf(model, p).length) {
    desc(`rmdir ${p} (not empty)`);
    mustFail('rmdir', 'ENOTEMPTY', () => fs.rmdirSync(abs(p)));
    return;
  }
  desc(`rmdir ${p}`);
  must('rmdir', () => fs.rmdirSync(abs(p)));
  model.delete(p);
}

function opTwoFds(): void {
  const fl = files();
  if (!fl.length) return;
  const p = pick(fl);
  const f = model.get(p) as MFile;
  desc(`two fds on ${p}`);
  const a = must('open A', () => fs.openSync(abs(p), 'r+'));
  const b = must('open B', () => fs.openSync(abs(p), 'r+'));
  try {
    for (const [w, r, name] of [[a, b, 'A->B'], [b, a, 'B->A']] as const) {
      const off = int(0, f.data.length + 5000);
      const data = bytes(int(1, 9000));
      desc(`two fds on ${p}: write via ${name.slice(0, 1)} off=${off} len=${data.length}, read via ${name.slice(3)}`);
      must('pwrite', () => fs.writeSync(w, data, 0, data.length, off));
      writeInto(f, off, data);
      const got = must('pread', () => pread(r, data.length, off));
      const d = firstDifference(data, got);
      if (d) fail(`read via the other fd at offset ${off}: ${d}`);
      const st = must('fstat', () => fs.fstatSync(r));
      if (st.size !== f.data.length) fail(`fstat via the other fd: size ${st.size}, the model says ${f.data.length}`);
    }
  } finally {
    must('close A', () => fs.closeSync(a));
    must('close B', () => fs.closeSync(b));
  }
  checkFile(p, f, 'read after two fds');
}

function opHeldOpen(): void {
  const fl = files();
  if (!fl.length || held.length >= 3) return;
  const p = pick(fl);
  desc(`open and hold ${p}`);
  const fd = must('open', () => fs.openSync(abs(p), 'r+'));
  held.push({ fd, file: model.get(p) as MFile, path: p });
}

function opHeldWrite(): void {
  // No writes through fds of unlinked files unless LAYERFS_IO_UNLINKED_FDS=1: a restarted daemon
  // cannot find such a file again, its handle answers EBADF (README "Surviving a daemon crash")
  const usable = process.env.LAYERFS_IO_UNLINKED_FDS === '1' ? held : held.filter((x) => x.path !== '');
  if (!usable.length) return;
  const h = pick(usable);
  const off = int(0, h.file.data.length + 5000);
  const data = bytes(int(1, 12_000));
  desc(`write via a held fd (${h.path || 'unlinked'}) off=${off} len=${data.length}`);
  must('pwrite', () => fs.writeSync(h.fd, data, 0, data.length, off));
  writeInto(h.file, off, data);
  const got = must('pread', () => pread(h.fd, h.file.data.length + 10, 0));
  const d = firstDifference(h.file.data, got);
  if (d) fail(`read via the held fd: ${d}`);
  if (h.path !== '' && model.get(h.path) === h.file) checkFile(h.path, h.file, 'read by name after a write via a held fd');
}

function opHeldClose(): void {
  if (!held.length) return;
  const i = Math.floor(rand() * held.length);
  const h = held[i]!;
  desc(`close a held fd (${h.path || 'unlinked'})`);
  must('close', () => fs.closeSync(h.fd));
  held.splice(i, 1);
}

function opMmap(): void {
  const fl = files().filter((p) => (model.get(p) as MFile).data.length > 0);
  if (!fl.length) return;
  const p = pick(fl);
  const f = model.get(p) as MFile;
  const off = int(0, f.data.length - 1);
  const data = bytes(Math.min(f.data.length - off, int(1, 10_000)));
  desc(`mmap write+msync ${p} off=${off} len=${data.length}`);
  const r = spawnSync('/usr/bin/python3', [mmapHelper!, abs(p), String(off), data.toString('hex')], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
  if (r.status !== 0) fail(`mmap helper ${r.error ? `did not finish: ${String(r.error)}` : `exited ${r.status ?? r.signal}`}: ${(r.stderr ?? '').trim().split('\n').slice(-1)[0]}`);
  writeInto(f, off, data);
  const want = createHash('sha256').update(f.data).digest('hex');
  if (r.stdout.trim() !== want) fail(`read through a new mapping after msync: sha256 ${r.stdout.trim().slice(0, 16)}, the model says ${want.slice(0, 16)}`);
  checkFile(p, f, 'read after mmap write');
}

function opChmod(): void {
  const fl = files();
  if (!fl.length) return;
  const p = pick(fl);
  const mode = pick([0o644, 0o600, 0o755, 0o640]);
  desc(`chmod ${p} ${mode.toString(8)}`);
  must('chmod', () => fs.chmodSync(abs(p), mode));
  (model.get(p) as MFile).mode = mode;
  checkFile(p, model.get(p) as MFile, 'stat after chmod');
}

function opXattr(): void {
  const fl = files();
  if (!fl.length) return;
  const p = pick(fl);
  const f = model.get(p) as MFile;
  const name = pick(['user.a', 'user.b']);
  const value = `v${opNo}`;
  desc(`setxattr ${p} ${name}=${value}`);
  must('setxattr', () => lsetxattr(abs(p), name, Buffer.from(value), 0));
  f.xattrs.set(name, value);
  for (const [n, v] of f.xattrs) {
    const got = must(`getxattr ${n}`, () => lgetxattr(abs(p), n).toString());
    if (got !== v) fail(`getxattr ${p} ${n}: ${got}, the model says ${v}`);
  }
}

function opFsync(): void {
  const fl = files();
  if (!fl.length) return;
  const p = pick(fl);
  desc(`fsync ${p}`);
  const fd = must('open', () => fs.openSync(abs(p), 'r+'));
  must('fsync', () => fs.fsyncSync(fd));
  must('close', () => fs.closeSync(fd));
}

function opListDir(): void {
  const d = pick(dirs());
  desc(`readdir ${d || '/'}`);
  const got = must('readdir', () => fs.readdirSync(abs(d)).sort());
  const want = childrenOf(model, d);
  if (got.join('/') !== want.join('/')) fail(`readdir ${d || '/'}: [${got}], the model says [${want}]`);
}

/** The whole tree against the model. */
function finalCheck(): void {
  desc('final check of the whole tree');
  for (const [p, n] of model) {
    if (n.kind === 'dir') {
      const got = must(`readdir ${p || '/'}`, () => fs.readdirSync(abs(p)).sort());
      const want = childrenOf(model, p);
      if (got.join('/') !== want.join('/')) fail(`readdir ${p || '/'}: [${got}], the model says [${want}]`);
    } else checkFile(p, n, 'final read');
  }
}

/**
 * Self-check of the checker (LAYERFS_IO_SABOTAGE=N): at op N one byte of a file is changed behind the
 * mount's back (in the model: as if the filesystem had lost a write); the run must fail naming it.
 */
const SABOTAGE = Number(process.env.LAYERFS_IO_SABOTAGE ?? 0);
function sabotage(): void {
  const f = files().map((p) => model.get(p) as MFile).find((x) => x.data.length > 0);
  if (f) f.data[f.data.length >> 1] ^= 0xff;
}

const total = ops.reduce((s, [w]) => s + w, 0);
try {
  for (opNo = 1; opNo <= OPS; opNo++) {
    let x = rand() * total;
    let op = ops[0]![1];
    for (const [w, fn] of ops) {
      if ((x -= w) < 0) {
        op = fn;
        break;
      }
    }
    opDesc = op.name;
    if (opNo === SABOTAGE) sabotage();
    op();
  }
  opNo = OPS;
  for (const h of held.splice(0)) {
    desc(`close a held fd (${h.path || 'unlinked'})`);
    must('close', () => fs.closeSync(h.fd));
  }
  finalCheck();
  process.stdout.write(`ok ${OPS}\n`);
} catch (e) {
  process.stderr.write(`${e instanceof Failure ? e.message : `op #${opNo} ${opDesc}: ${String(e)}`}\n`);
  process.exit(1);
}
