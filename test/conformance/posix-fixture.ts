/**
 * A mounted union for the POSIX checks: two lower layers in overlay format with one set of files per
 * check (so checks do not disturb each other), a fresh upper, mounted with a chosen implementation.
 * Layer and upper dirs get long names so that host paths of deep files pass PATH_MAX while the
 * paths through the mount stay under it.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeWhiteout, mountUnion, type Mounted, type UnionKind, type UnionLayers } from '../helpers/overlay.js';

export const USER = { uid: 1000, gid: 1000 };
export const OTHER_UID = 1001;
export const GROUP = 50;

/** Relative path of the deep lower file: its host path in the lower layer exceeds PATH_MAX. */
export const DEEP_COMPONENT = 'p'.repeat(250);
export const DEEP_LEVELS = 16;
export const deepRel: string = [...Array<string>(DEEP_LEVELS).fill(DEEP_COMPONENT), 'deep.txt'].join('/');

export interface Fixture {
  kind: UnionKind;
  dir: string;
  layers: UnionLayers;
  mnt: string;
  /** Absolute path through the mount. */
  p(rel: string): string;
  remount(): void;
  close(): void;
}

/** rm -rf: GNU rm walks with openat, so host paths past PATH_MAX go too (node's rmSync fails there). */
export function removeTree(path: string): void {
  const r = spawnSync('rm', ['-rf', '--one-file-system', path], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`rm -rf ${path} failed: ${r.stderr}`);
}

function file(path: string, data: string | Buffer, mode = 0o644, uid = 0, gid = 0): void {
  writeFileSync(path, data);
  chmodSync(path, mode);
  chownSync(path, uid, gid);
}

function dir(path: string, mode: number, uid = 0, gid = 0): void {
  mkdirSync(path);
  chmodSync(path, mode);
  chownSync(path, uid, gid);
}

/** Build a chain of DEEP_LEVELS dirs and deep.txt under `root` with relative (chdir) calls. */
function buildDeep(root: string): void {
  const py = String.raw`
import os, sys
os.chdir(sys.argv[1])
for _ in range(int(sys.argv[3])):
    os.mkdir(sys.argv[2]); os.chdir(sys.argv[2])
with open('deep.txt', 'w') as f: f.write('deep lower\n')
`;
  const r = spawnSync('/usr/bin/python3', ['-c', py, root, DEEP_COMPONENT, String(DEEP_LEVELS)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the deep lower tree failed: ${r.stderr}`);
}

function buildBottom(root: string): void {
  dir(root, 0o755);
  file(join(root, 'lower.txt'), 'lower data\n');
  file(join(root, 'secret'), 'secret\n', 0o600);
  file(join(root, 'pub'), 'public\n', 0o644);
  dir(join(root, 'shared'), 0o777);
  dir(join(root, 'sticky'), 0o1777);
  file(join(root, 'sticky', 'other'), 'other\n', 0o666, OTHER_UID, OTHER_UID);
  file(join(root, 'sticky', 'mine'), 'mine\n', 0o644, USER.uid, USER.gid);
  file(join(root, 'ut-mine'), 'mine\n', 0o644, USER.uid, USER.gid);
  dir(join(root, 'sgid'), 0o2777, 0, GROUP);
  file(join(root, 'gone'), 'hidden by a whiteout above\n');
  for (const n of ['ino-f', 'unl-f', 'link-f', 'link2-f', 'ut-f', 'trunc-f', 'app-f', 'excl-f']) {
    file(join(root, n), `${n} lower\n`);
  }
  file(join(root, 'falloc-f'), 'abc');
  file(join(root, 'mmap-f'), '0123456789');
  file(join(root, 'mmapw-f'), '0123456789');
  file(join(root, 'hl-a'), 'lower hard link\n');
  linkSync(join(root, 'hl-a'), join(root, 'hl-b'));
  dir(join(root, 'ino-d'), 0o755);
  file(join(root, 'ino-d', 'inner'), 'inner\n');
  buildDeep(root);
}

function buildTop(root: string): void {
  dir(root, 0o755);
  file(join(root, 'top.txt'), 'top\n');
  makeWhiteout(join(root, 'gone'));
}

export function makeFixture(kind: UnionKind): Fixture {
  const base = mkdtempSync(join(tmpdir(), `layerfs-posix-${kind}-`));
  chmodSync(base, 0o755); // other users must reach the mount
  const long = 'x'.repeat(200);
  const l0 = join(base, `L0-${long}`);
  const l1 = join(base, `L1-${long}`);
  const upper = join(base, `U-${long}`);
  const work = join(base, 'work');
  const mnt = join(base, 'mnt');
  let m: Mounted | undefined;
  try {
    buildBottom(l1);
    buildTop(l0);
    dir(upper, 0o755);
    dir(work, 0o755);
    dir(mnt, 0o755);
    const layers: UnionLayers = { lowers: [l0, l1], upper, work };
    m = mountUnion(kind, layers, mnt);
    const fx: Fixture = {
      kind,
      dir: base,
      layers,
      mnt,
      p: (rel: string) => join(mnt, rel),
      remount(): void {
        m?.unmount();
        m = undefined;
        m = mountUnion(kind, layers, mnt);
      },
      close(): void {
        try {
          m?.unmount();
        } finally {
          m = undefined;
          removeTree(base);
        }
      },
    };
    return fx;
  } catch (e) {
    try {
      m?.unmount();
    } finally {
      removeTree(base);
    }
    throw e;
  }
}
