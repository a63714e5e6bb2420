/**
 * st_ino is unique per file across layers (issue 4 item 3): each layer is its own tmpfs, so the same
 * inode numbers exist in several layers; through the mount, no two distinct files may share
 * (st_dev, st_ino), and hard links must. Runs against overlayfs (check of the test) and layerfs
 * (LAYERFS_POSIX_TARGETS, as posix.test.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hardUnmount, mountUnion, parseKind, requireMount, type Mounted, type UnionKind } from '../helpers/overlay.js';

const targets: UnionKind[] = (process.env.LAYERFS_POSIX_TARGETS ?? 'overlay,layerfs')
  .split(',')
  .map((s) => parseKind(s.trim(), 'layerfs'));

function tmpfs(at: string): void {
  mkdirSync(at);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0755', 'layerfs-test', at], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount tmpfs at ${at}: ${r.stderr}`);
}

function fill(root: string, prefix: string): void {
  mkdirSync(join(root, 'd'));
  for (let i = 0; i < 10; i++) {
    writeFileSync(join(root, `${prefix}${i}`), `${prefix}${i}\n`);
    writeFileSync(join(root, 'd', `${prefix}${i}`), `d/${prefix}${i}\n`);
  }
}

function walk(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const n of readdirSync(join(root, rel)).sort()) {
    const r = rel ? `${rel}/${n}` : n;
    out.push(r);
    if (lstatSync(join(root, r)).isDirectory()) out.push(...walk(root, r));
  }
  return out;
}

for (const kind of targets) {
  test(`${kind}: (st_dev, st_ino) unique across layers on different filesystems, shared by hard links`, (t) => {
    if (!requireMount(t, kind)) return;
    const base = mkdtempSync(join(tmpdir(), `layerfs-ino-${kind}-`));
    const fss: string[] = [];
    let m: Mounted | undefined;
    try {
      const [l0, l1, up] = ['l0', 'l1', 'up'].map((n) => join(base, n)) as [string, string, string];
      for (const d of [l0, l1, up]) {
        tmpfs(d);
        fss.push(d);
      }
      fill(l0, 'a');
      fill(l1, 'b');
      // Precondition: the layers really reuse inode numbers, or this test could not fail.
      const inos = (root: string): Set<number> => new Set(walk(root).map((r) => lstatSync(join(root, r)).ino));
      const i0 = inos(l0);
      assert.ok([...inos(l1)].some((i) => i0.has(i)), 'tmpfs layers share inode numbers');
      mkdirSync(join(up, 'upper'));
      mkdirSync(join(up, 'work'));
      mkdirSync(join(base, 'mnt'));
      const mnt = join(base, 'mnt');
      m = mountUnion(kind, { lowers: [l0, l1], upper: join(up, 'upper'), work: join(up, 'work') }, mnt);
      for (let i = 0; i < 10; i++) writeFileSync(join(mnt, `c${i}`), `c${i}\n`);
      writeFileSync(join(mnt, 'a0'), 'copied up\n');
      linkSync(join(mnt, 'b1'), join(mnt, 'b1-link'));
      const seen = new Map<string, string>();
      for (const r of walk(mnt)) {
        if (r === 'b1-link') continue;
        const s = lstatSync(join(mnt, r));
        const key = `${s.dev}:${s.ino}`;
        assert.equal(seen.get(key), undefined, `${r} and ${seen.get(key)} share st_dev:st_ino ${key}`);
        seen.set(key, r);
      }
      assert.equal(seen.size, 51, 'd, a0-9, b0-9, c0-9, d/a0-9, d/b0-9');
      const a = lstatSync(join(mnt, 'b1'));
      const b = lstatSync(join(mnt, 'b1-link'));
      assert.equal(`${a.dev}:${a.ino}`, `${b.dev}:${b.ino}`, 'hard links share st_dev:st_ino');
    } finally {
      try {
        m?.unmount();
      } finally {
        for (const d of fss.reverse()) hardUnmount(d);
        rmSync(base, { recursive: true, force: true });
      }
    }
  });
}
