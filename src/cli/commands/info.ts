/**
 * `layerfs info [MNT] [--json]`: what `cat /run/layerfs/si_<id>/*` prints (branches `path=perm`,
 * branch ids, xi_path) for one mount or for every live mount, then the resident daemon serving them
 * (pid, mounts, memory, requests served); `--daemon` shows the daemon only; `--json` for programs.
 * A mount made without real root adds one line: `rootless: fusermount3; passthrough off (needs
 * root); xattrs user.overlay.*; ...`. A mount with udba=reval|notify adds its udba line (with notify:
 * the inotify watches held now). Every daemon mount adds `restarts: N (last: REASON at TIME)` when
 * it survives a daemon crash (supervised), or `restarts: not supervised (WHY)`.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../errors.js';
import { listMounts, siLines, type MountInfo } from '../../fuse/index.js';
import { TAKEOVER_WAIT_MS } from '../../fuse/runtime-dir.js';
import { daemonStatus, type DaemonStatus } from '../../daemon/index.js';

const MB = 1024 * 1024;

/** The daemon's lines: one summary, then one per mount with its requests. */
export function daemonLines(d: DaemonStatus | null): string[] {
  if (d === null) return ['daemon: none running'];
  const up = Math.round((Date.now() - Date.parse(d.startedAt)) / 1000);
  return [
    `daemon: pid ${d.pid}, ${d.mounts.length} mount${d.mounts.length === 1 ? '' : 's'}, ` +
      `rss ${(d.memory.rss / MB).toFixed(1)} MB (heap ${(d.memory.heapUsed / MB).toFixed(1)} MB), ` +
      `${d.requests} requests served, ${d.mountsServed} mounts since start, up ${up} s` +
      (d.threads !== undefined ? `, ${d.threads} serving thread${d.threads === 1 ? '' : 's'}` : ''),
    ...d.mounts.map(
      (m) => `  ${m.mountpoint}: ${m.requests} requests` + (m.thread !== undefined ? `, thread ${m.thread}, ${m.lowerListingsRead} lower listings read (others shared)` : ''),
    ),
  ];
}

/**
 * With several writable branches, the placement policies in force (`create=mfs cpup=tdp`), as the
 * mount options say (AUFS's defaults tdp/tdp when absent).
 */
export function placementLine(m: MountInfo): string[] {
  if (m.branches.filter((b) => b.perm.split('+')[0] === 'rw').length < 2) return [];
  const opt = (k: string): string | undefined => new RegExp(`(?:^|,)${k}=([^,]+)`).exec(m.options)?.[1];
  return [`create=${opt('create') ?? 'tdp'} cpup=${opt('cpup') ?? 'tdp'}`];
}

function pick(mnt: string | undefined): MountInfo[] {
  const all = listMounts({ waitTakeoverMs: TAKEOVER_WAIT_MS });
  if (mnt === undefined) return all;
  const abs = resolve(mnt);
  let real = abs;
  try {
    real = realpathSync(abs);
  } catch {
    /* dead or missing: compare the plain path */
  }
  const found = all.filter((m) => m.mountpoint === abs || m.mountpoint === real);
  if (found.length === 0) throw new CliError(`info ${mnt}`, `${abs} is not a layerfs mount point`);
  return found;
}

export function register(program: Command): void {
  program
    .command('info')
    .description('show the branches of a mount (or of all mounts), like /sys/fs/aufs/si_*')
    .argument('[mnt]', 'mount point')
    .option('--json', 'machine-readable output')
    .option('--daemon', 'show only the resident daemon (pid, mounts, memory, requests served)')
    .action(async (mnt: string | undefined, flags: { json?: boolean; daemon?: boolean }) => {
      if (flags.daemon) {
        const d = await daemonStatus();
        process.stdout.write(flags.json ? JSON.stringify(d, null, 2) + '\n' : daemonLines(d).join('\n') + '\n');
        return;
      }
      const mounts = pick(mnt);
      if (flags.json) {
        process.stdout.write(JSON.stringify(mnt === undefined ? mounts : mounts[0], null, 2) + '\n');
        return;
      }
      // after AUFS's lines, the udba mode (live watch count from the daemon), and a mount made
      // without real root says how, and what fell back
      const live = mounts.length > 0 ? await daemonStatus().catch(() => null) : null;
      const udba = (m: MountInfo): string[] => {
        if (!m.udba) return [];
        return [live?.mounts.find((x) => x.id === m.id)?.udba ?? `udba=${m.udba}`];
      };
      // the transport serving it (io_uring or /dev/fuse, and why), from the live daemon
      const transport = (m: MountInfo): string[] => {
        const line = live?.mounts.find((x) => x.id === m.id)?.transport;
        return line ? [line] : [];
      };
      // a supervised mount that never restarted says nothing (as the other lines, only what is not the default)
      const supervisionLine = (m: MountInfo): string[] => (m.supervision && !/^restarts: 0;/.test(m.supervision) ? [m.supervision] : []);
      const blocks = mounts.map((m) => [...siLines(m), ...placementLine(m), ...udba(m), ...transport(m), ...(m.rootless ? [m.rootless] : []), ...supervisionLine(m)].join('\n') + '\n');
      if (mnt === undefined && mounts.length > 1) {
        process.stdout.write(mounts.map((m, i) => `si_${m.id} ${m.mountpoint}\n${blocks[i]}`).join('\n'));
      } else process.stdout.write(blocks.join(''));
      if (mnt === undefined) process.stdout.write((blocks.length > 0 ? '\n' : '') + daemonLines(await daemonStatus()).join('\n') + '\n');
    });
}
