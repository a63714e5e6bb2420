/** The machine and software a run measured, for the results file. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';

function sh(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd, timeout: 10_000 });
  return r.status === 0 ? `${r.stdout}${r.stderr}`.trim() : '';
}

export interface Machine {
  lines: [string, string][];
  commit: string;
}

export function describeMachine(repoRoot: string, workDir: string): Machine {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  const fsLine = sh('findmnt', ['-n', '-o', 'FSTYPE,SOURCE,OPTIONS', '-T', workDir]).split(/\s+/);
  const fuseOverlayfs = /fuse-overlayfs: version (\S+)/.exec(sh('fuse-overlayfs', ['--version']))?.[1] ?? '?';
  const unionfs = sh('dpkg-query', ['-W', '-f', '${Version}', 'unionfs-fuse']) || '?';
  const libfuse3 = /FUSE library version (\S+)/.exec(sh('fuse-overlayfs', ['--version']))?.[1] ?? '?';
  const head = sh('git', ['rev-parse', '--short', 'HEAD'], repoRoot) || '?';
  const dirty = sh('git', ['status', '--porcelain', '--', 'src', 'native', 'binding.gyp'], repoRoot);
  const commit = `${head}${dirty ? ' + uncommitted changes in src/ or native/ (the working tree was measured)' : ''}`;
  return {
    commit,
    lines: [
      ['CPU', `${cpu}, ${os.availableParallelism()} cores`],
      ['RAM', `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`],
      ['kernel', `${os.release()}`],
      ['data sets on', `${workDir}: ${fsLine[0] ?? '?'} on ${fsLine[1] ?? '?'} (${fsLine[2] ?? ''})`],
      ['node', process.version],
      ['fuse-overlayfs', `${fuseOverlayfs} (libfuse ${libfuse3})`],
      ['unionfs-fuse', unionfs],
      ['layerfs', `commit ${commit}`],
    ],
  };
}
