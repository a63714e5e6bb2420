/**
 * podman with its own storage under a temp dir, for the podman tests and the bench: any mount program
 * (layerfs, fuse-overlayfs) or none (kernel overlayfs), a tiny busybox base image built locally (no
 * registry), flattened trees of images and containers read from `podman export`, and the diff-list
 * normalisation that lets a mount program's `podman diff` be compared with kernel overlayfs's.
 *
 * Generic on purpose (root dir, mount program, a command prefix such as `runuser -u USER --`, env), so
 * root and rootless tests share it. Nothing here knows about layerfs.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import assert from 'node:assert/strict';

export const PODMAN = '/usr/bin/podman';
export const FUSE_OVERLAYFS = '/usr/bin/fuse-overlayfs';
const BUSYBOX = '/bin/busybox';

/** What these VMs need (crun 1.8 refuses hybrid cgroups; setrlimit to podman's defaults is refused). */
export const VM_GLOBAL_FLAGS = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
export const VM_RUN_FLAGS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--network', 'none'];

export interface PodmanOut {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface PodmanOptions {
  /** Everything of this podman lives here: `DIR/root` (graphroot), `DIR/run` (runroot), `DIR/tmp`. */
  dir: string;
  /** overlay.mount_program; undefined = kernel overlayfs. */
  mountProgram?: string;
  /** Command prefix, e.g. ['runuser', '-u', 'tester', '--'] for a rootless run. */
  prefix?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** More global flags (e.g. storage options). */
  extraGlobal?: readonly string[];
}

/** One podman "installation": its storage, its runroot, its mount program. */
export class Podman {
  readonly dir: string;
  readonly root: string;
  readonly runroot: string;
  readonly tmp: string;
  readonly mountProgram: string | undefined;
  private readonly prefix: readonly string[];
  private readonly env: NodeJS.ProcessEnv;
  private readonly extraGlobal: readonly string[];

  constructor(o: PodmanOptions) {
    this.dir = o.dir;
    this.root = path.join(o.dir, 'root');
    this.runroot = path.join(o.dir, 'run');
    this.tmp = path.join(o.dir, 'tmp');
    fs.mkdirSync(this.tmp, { recursive: true });
    this.mountProgram = o.mountProgram;
    this.prefix = o.prefix ?? [];
    this.env = { ...(o.env ?? process.env), TMPDIR: this.tmp };
    this.extraGlobal = o.extraGlobal ?? [];
  }

  /** The global flags every call gets. */
  globalFlags(): string[] {
    const f = ['--root', this.root, '--runroot', this.runroot, '--tmpdir', this.tmp, '--storage-driver', 'overlay', ...VM_GLOBAL_FLAGS];
    if (this.mountProgram) f.push('--storage-opt', `overlay.mount_program=${this.mountProgram}`);
    return [...f, ...this.extraGlobal];
  }

  /** `podman ARGS` (with the global flags); never throws. */
  run(args: readonly string[], opts: { timeoutMs?: number; cwd?: string } = {}): PodmanOut {
    const argv = [...this.prefix, PODMAN, ...this.globalFlags(), ...args];
    const t0 = performance.now();
    const r = spawnSync(argv[0]!, argv.slice(1), {
      encoding: 'utf8',
      env: this.env,
      cwd: opts.cwd,
      timeout: opts.timeoutMs ?? 180_000,
      maxBuffer: 256 * 1024 * 1024,
    });
    return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : ''), ms: performance.now() - t0 };
  }

  /** run() that must succeed; returns stdout. */
  ok(args: readonly string[], opts: { timeoutMs?: number; cwd?: string } = {}): string {
    const r = this.run(args, opts);
    const which = this.mountProgram ? path.basename(this.mountProgram) : 'kernel overlayfs';
    assert.equal(r.status, 0, `podman ${args.join(' ')} (${which}) failed (${r.status}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** `podman import TAR NAME`. */
  importTar(tar: string, name: string): void {
    this.ok(['import', '--quiet', tar, name]);
  }

  /** `podman build -t TAG CONTEXT` (Containerfile in CONTEXT). */
  build(context: string, tag: string): void {
    this.ok(['build', '--quiet', ...VM_RUN_FLAGS, '-t', tag, context], { timeoutMs: 600_000 });
  }

  /** `podman run --name NAME IMAGE sh -c SCRIPT` (the container stays, stopped). */
  runSh(name: string, image: string, script: string): string {
    return this.ok(['run', ...VM_RUN_FLAGS, '--name', name, image, 'sh', '-c', script]);
  }

  /**
   * `podman container diff X` / `podman image diff X` as sorted lines (plain `podman diff` takes an
   * image whose id starts with X first: a name like `c1` is a hex prefix).
   */
  diff(what: string, kind: 'container' | 'image' = 'container'): string[] {
    return this.ok([kind, 'diff', what])
      .split('\n')
      .filter((l) => l !== '')
      .sort();
  }

  /** The flattened tree of a container (`podman export`). */
  containerTree(container: string): Promise<Tree> {
    const tar = path.join(this.tmp, `export-${container}.tar`);
    this.ok(['export', '-o', tar, container]);
    return readTarTree(tar, true);
  }

  /** The flattened tree of an image: export of a container created (never started) from it. */
  async imageTree(image: string): Promise<Tree> {
    const name = `tree-${createHash('sha256').update(image).digest('hex').slice(0, 12)}`;
    this.ok(['create', '--name', name, image, 'true']);
    try {
      return await this.containerTree(name);
    } finally {
      this.ok(['rm', name]);
    }
  }

  /** Remove every container and image of this storage (not `system reset`: networks are global). */
  clean(): void {
    this.run(['rm', '--all', '--force', '--time', '0']);
    this.run(['rmi', '--all', '--force']);
  }
}

/** path ('/etc/passwd') -> 'type mode uid:gid size sha256|target'. */
export type Tree = Map<string, string>;

/** Files of a tar as a Tree; `dropTs`: leave the `.containerenv`/bind-mount targets podman adds. */
export async function readTarTree(tarPath: string, dropPodmanFiles: boolean): Promise<Tree> {
  const { extract } = await import('tar-stream');
  const x = extract();
  const out: Tree = new Map();
  const done = (async () => {
    for await (const e of x) {
      const h = e.header;
      const p = '/' + h.name.replace(/^\.?\/+/, '').replace(/\/+$/, '');
      const hash = createHash('sha256');
      for await (const c of e) hash.update(c as Buffer);
      if (p === '/') continue;
      const mode = ((h.mode ?? 0) & 0o7777).toString(8);
      const what =
        h.type === 'symlink' || h.type === 'link' ? `-> ${h.linkname ?? ''}` : h.type === 'file' ? hash.digest('hex').slice(0, 16) : '';
      out.set(p, `${h.type} ${mode} ${h.uid ?? 0}:${h.gid ?? 0} ${h.type === 'file' ? h.size : 0} ${what}`.trim());
    }
  })();
  fs.createReadStream(tarPath).pipe(x);
  await done;
  if (dropPodmanFiles) for (const p of ['/run/.containerenv']) out.delete(p);
  return out;
}

/** Lines of a Tree, sorted, for assert.deepEqual with a readable diff. */
export function treeLines(t: Tree): string[] {
  return [...t].map(([p, d]) => `${p} ${d}`).sort();
}

/**
 * A `podman diff` list in the form podman's naive diff gives it, which containers/storage uses for
 * every overlay mount program (fuse-overlayfs too): it walks the merged container against the merged
 * parent, so (1) every directory above a change shows as `C DIR`, and (2) a lower dir removed and
 * made again (an opaque dir in kernel overlayfs's upper, listed by its native diff as `D DIR`) shows
 * as `C DIR` plus `D` for each topmost entry of the parent that is gone. Kernel overlayfs's list
 * brought to this form must equal a mount program's list: same changes, said the naive way.
 */
export function naiveDiffForm(list: readonly string[], parent: Tree, child: Tree): string[] {
  const out = new Map<string, string>();
  for (const line of list) {
    const kind = line.slice(0, 1);
    const p = line.slice(2);
    if (kind === 'D' && child.get(p)?.startsWith('directory')) {
      out.set(p, 'C');
      for (const q of parent.keys()) {
        if (q.startsWith(p + '/') && !child.has(q) && child.has(path.posix.dirname(q))) out.set(q, 'D');
      }
    } else out.set(p, kind === 'A' && parent.has(p) ? 'C' : kind); // made again inside a replaced dir
  }
  for (const p of [...out.keys()]) {
    for (let d = path.posix.dirname(p); d !== '/'; d = path.posix.dirname(d)) if (!out.has(d)) out.set(d, 'C');
  }
  return [...out].map(([p, k]) => `${k} ${p}`).sort();
}

/**
 * A busybox root as a tar at `dir/NAME.tar`: static /bin/busybox with applet symlinks, /etc/passwd
 * and /etc/group, plus `files` (path -> content; a path ending in `/` is a directory).
 */
export function busyboxImageTar(dir: string, name: string, files: Record<string, string> = {}): string {
  const root = path.join(dir, `${name}-root`);
  for (const d of ['bin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev', 'run']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync(BUSYBOX, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  const applets = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n');
  for (const a of applets) if (a !== '' && a !== 'busybox') fs.symlinkSync('busybox', path.join(root, 'bin', a));
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\n');
  for (const [p, content] of Object.entries(files)) {
    const abs = path.join(root, p);
    if (p.endsWith('/')) fs.mkdirSync(abs, { recursive: true });
    else {
      fs.mkdirSync(path.dirname(abs), { recursive: true });
      fs.writeFileSync(abs, content);
    }
  }
  const tar = path.join(dir, `${name}.tar`);
  const r = spawnSync('tar', ['--sort=name', '-C', root, '-cf', tar, '.'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `tar: ${r.stderr}`);
  fs.rmSync(root, { recursive: true });
  return tar;
}

/** Mount points at or under `dir` (from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' '))
    .filter((m) => m === dir || m.startsWith(dir + '/'));
}

/** Lazily unmount whatever is still mounted under `dir`, deepest first; returns what was. */
export function unmountUnder(dir: string): string[] {
  const left = mountsUnder(dir).sort((a, b) => b.length - a.length);
  for (const m of left) spawnSync('umount', ['-l', m]);
  return left;
}
