/**
 * `node dist/bench/commit.js [DIR] [--mb 200] [--files 10000] [--runs 3]`: time and bytes written
 * by `LayerStore.commit` for a container holding MB megabytes in FILES files of changes (a few big
 * files and many small ones, as an image build leaves). Bytes written are this process's
 * /proc/self/io write_bytes (pages it dirtied) and wchar (bytes through write-like syscalls).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LayerStore } from '../src/store/store.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

function io(): { write: number; wchar: number; read: number } {
  const t = fs.readFileSync('/proc/self/io', 'utf8');
  const get = (k: string): number => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(t)?.[1] ?? 0);
  return { write: get('write_bytes'), wchar: get('wchar'), read: get('read_bytes') };
}

async function* empty(): AsyncGenerator<Buffer> {
  yield Buffer.alloc(1024); // an empty tar: two zero blocks
}

/** Fills `dir` with `mb` MiB in `files` files: 16 big files hold half the bytes, the rest are small. */
function fill(dir: string, mb: number, files: number): void {
  const total = mb << 20;
  const big = 16;
  const bigSize = Math.floor(total / 2 / big);
  const smallSize = Math.floor(total / 2 / (files - big));
  const buf = Buffer.alloc(Math.max(bigSize, smallSize));
  for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE((i * 2654435761) >>> 0, i);
  fs.mkdirSync(path.join(dir, 'big'));
  for (let i = 0; i < big; i++) fs.writeFileSync(path.join(dir, 'big', `f${i}`), buf.subarray(0, bigSize));
  for (let i = 0; i < files - big; i++) {
    const d = path.join(dir, 'small', `d${i % 100}`);
    if (i < 100) fs.mkdirSync(d, { recursive: true });
    buf.writeUInt32LE(i, 0); // distinct contents
    fs.writeFileSync(path.join(d, `f${i}`), buf.subarray(0, smallSize));
  }
}

async function main(): Promise<void> {
  const base = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : os.tmpdir();
  const mb = arg('mb', 200);
  const files = arg('files', 10_000);
  const runs = arg('runs', 3);
  const top = fs.mkdtempSync(path.join(base, 'layerfs-commit-bench-'));
  try {
    const store = LayerStore.open(path.join(top, 'store'));
    await store.importTar(empty(), { name: 'base' });
    const c = await store.createContainer('base');
    fill(store.diffDir(c.id), mb, files);
    console.log(`container: ${files} files, ${mb} MiB of changes, store on ${top}`);
    for (let r = 0; r < runs; r++) {
      const before = io();
      const t0 = process.hrtime.bigint();
      const meta = await store.commit(c.id);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const after = io();
      console.log(
        `run ${r + 1}: ${ms.toFixed(0)} ms, write_bytes ${((after.write - before.write) / 2 ** 20).toFixed(1)} MiB, ` +
          `wchar ${((after.wchar - before.wchar) / 2 ** 20).toFixed(1)} MiB, read_bytes ${((after.read - before.read) / 2 ** 20).toFixed(1)} MiB (${meta.diffId?.slice(0, 19)})`,
      );
      await store.remove(meta.id);
    }
  } finally {
    fs.rmSync(top, { recursive: true, force: true });
  }
}

await main();
