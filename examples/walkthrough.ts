#!/usr/bin/env node
/**
 * `npm start`: the seed's AUFS walkthrough on a scratch copy of examples/aufs, printing each
 * step as `# command` and then its output, as the seed shows it. A demo of the engine, the API
 * and the CLI, not a command of its own.
 *
 * Through a real FUSE mount (`bin/layerfs mount`) when running as root with /dev/fuse; otherwise
 * (or with LAYERFS_WALKTHROUGH=inprocess) through the in-process engine and API, saying so at
 * the top. Always unmounts, removes the scratch copy, and never touches examples/.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnionFS } from '../src/api/index.js';
import { Union, parseOptions } from '../src/engine/index.js';
import { hostTreeFs, renderTree, unionTreeFs } from '../src/cli/commands/tree.js';
import { reasonOf } from '../src/cli/errors.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url)); // dist/examples -> repo root
const EXAMPLE = join(REPO, 'examples', 'aufs');
const BIN = join(REPO, 'bin', 'layerfs');
const SEED_DIRS = './container-layer:./image-layer4:./image-layer3:./image-layer2:./image-layer1';
const APPENDED = "\nwrite to mnt's image-layer1.txt\n";

const out = (s: string): void => void process.stdout.write(s);
const step = (cmd: string): void => out(`# ${cmd}\n`);
const gap = (): void => out('\n');

type Mode = 'fuse' | 'inprocess';

function chooseMode(): { mode: Mode; why: string } {
  const forced = process.env.LAYERFS_WALKTHROUGH;
  if (forced === 'inprocess') return { mode: 'inprocess', why: 'LAYERFS_WALKTHROUGH=inprocess' };
  if (forced === 'fuse') return { mode: 'fuse', why: 'LAYERFS_WALKTHROUGH=fuse' };
  if (process.getuid?.() !== 0) return { mode: 'inprocess', why: 'not running as root' };
  if (!existsSync('/dev/fuse')) return { mode: 'inprocess', why: '/dev/fuse is missing' };
  return { mode: 'fuse', why: 'root and /dev/fuse available' };
}

function isMounted(dir: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[4] === dir);
  } catch {
    return false;
  }
}

function layerfs(args: string[], cwd: string): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(BIN, args, { cwd, encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') || (r.error ? String(r.error) : '') };
}

function lsLine(dir: string): string {
  const names = readdirSync(dir)
    .filter((n) => !n.startsWith('.'))
    .sort();
  return names.join('  ') + '\n';
}

async function main(): Promise<number> {
  let { mode, why } = chooseMode();
  const scratch = mkdtempSync(join(tmpdir(), 'layerfs-walkthrough-'));
  const aufs = join(scratch, 'aufs');
  const mnt = join(aufs, 'mnt');
  let mounted = false;
  let union: Union | undefined;
  const cleanup = (): void => {
    if (mounted || isMounted(mnt)) {
      const r = layerfs(['umount', mnt], aufs);
      if (!r.ok || isMounted(mnt)) spawnSync('umount', ['-l', mnt], { timeout: 10_000 });
      mounted = false;
    }
    try {
      union?.close();
    } catch {
      /* already closed */
    }
    union = undefined;
    rmSync(scratch, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    out(
      mode === 'fuse'
        ? `layerfs walkthrough: through a real FUSE mount (${why}).\n`
        : `layerfs walkthrough: in-process, through the engine and API, no FUSE mount (${why}).\n`,
    );
    out(`Scratch copy of examples/aufs: ${aufs}\n\n`);
    cpSync(EXAMPLE, aufs, { recursive: true });
    mkdirSync(mnt, { recursive: true });

    out('Create dirs and files\n');
    step('tree aufs/');
    out(await renderTree(hostTreeFs(), aufs, 'aufs/'));
    gap();
    out('create container layer\n');
    step('cat aufs/container-layer/container-layer.txt');
    out(readFileSync(join(aufs, 'container-layer', 'container-layer.txt'), 'utf8'));
    gap();
    out('create image layers\n');
    for (const n of [1, 2, 3, 4]) {
      step(`cat aufs/image-layer${n}/image-layer${n}.txt`);
      out(readFileSync(join(aufs, `image-layer${n}`, `image-layer${n}.txt`), 'utf8'));
    }
    gap();

    out('Mount\n');
    let ufs: UnionFS | undefined;
    if (mode === 'fuse') {
      step(`layerfs mount -o dirs=${SEED_DIRS} ./mnt`);
      const r = layerfs(['mount', '-o', `dirs=${SEED_DIRS}`, './mnt'], aufs);
      out(r.stdout);
      if (r.ok && isMounted(mnt)) {
        mounted = true;
      } else {
        out(`(FUSE mount failed: ${reasonOf(r.stderr)}; continuing in-process)\n`);
        if (isMounted(mnt)) spawnSync('umount', ['-l', mnt], { timeout: 10_000 });
        mode = 'inprocess';
      }
    }
    if (mode === 'inprocess') {
      step(`new UnionFS('dirs=${SEED_DIRS}')   (in-process, instead of mount)`);
      union = new Union(parseOptions(`dirs=${SEED_DIRS}`, { cwd: aufs }));
      ufs = new UnionFS(union);
    }
    gap();

    step('tree mnt/');
    out(ufs ? await renderTree(unionTreeFs(ufs), '/', 'mnt/') : await renderTree(hostTreeFs(), mnt, 'mnt/'));
    gap();

    out('Permission\n');
    if (mode === 'fuse') {
      const info = layerfs(['info', '--json', './mnt'], aufs);
      const id = info.ok ? (JSON.parse(info.stdout) as { id?: string }).id : undefined;
      const run = process.env.LAYERFS_RUN_DIR || '/run/layerfs';
      const si = id ? join(run, `si_${id}`) : undefined;
      if (!si || !existsSync(si)) throw new Error(`no runtime directory for the mount (${reasonOf(info.stderr || 'layerfs info gave no id')})`);
      step(`cat ${si}/*`);
      for (const f of readdirSync(si).sort()) out(readFileSync(join(si, f), 'utf8'));
    } else {
      const i = union!.info();
      step('layerfs info   (in-process: what /run/layerfs/si_<id>/* holds for a mount)');
      for (const b of i.branches) out(`${b.path}=${b.perm}\n`);
      for (const b of i.branches) out(`${b.id}\n`);
      out(`${i.xinoPath ?? '(in memory)'}\n`);
    }
    gap();

    out('Test write\n');
    step(`echo -e "\\nwrite to mnt's image-layer1.txt" >> mnt/image-layer4.txt`);
    if (ufs) await ufs.appendFile('/image-layer4.txt', APPENDED);
    else appendFileSync(join(mnt, 'image-layer4.txt'), APPENDED);
    step('cat mnt/image-layer4.txt');
    out(ufs ? String(await ufs.readFile('/image-layer4.txt', 'utf8')) : readFileSync(join(mnt, 'image-layer4.txt'), 'utf8'));
    gap();
    step('cat image-layer4/image-layer4.txt');
    out(readFileSync(join(aufs, 'image-layer4', 'image-layer4.txt'), 'utf8'));
    gap();
    step('ls container-layer');
    out(lsLine(join(aufs, 'container-layer')));
    gap();

    if (mounted) {
      step('layerfs umount ./mnt');
      const r = layerfs(['umount', './mnt'], aufs);
      out(r.stdout);
      if (!r.ok) throw new Error(`umount failed: ${reasonOf(r.stderr)}`);
      mounted = false;
    } else {
      step('(in-process: close the union)');
      await ufs?.close();
      union = undefined;
    }
    out('done: examples/aufs is unchanged; the scratch copy is removed.\n');
    return 0;
  } catch (e) {
    process.stderr.write(`layerfs walkthrough: ${reasonOf(e)}\n`);
    return 1;
  } finally {
    cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

process.exitCode = await main();
