/**
 * `layerfs daemon restart`: swap in a new daemon (a new build) without unmounting anything. The
 * running daemon stops taking requests, finishes the ones in hand and exits; its supervisor starts
 * the new one and hands it every mount (README "Surviving a daemon crash"). Waits until the new
 * daemon answers, then prints `daemon OLD -> NEW, N mounts`.
 */
import type { Command } from 'commander';
import { CliError } from '../errors.js';
import { call, daemonStatus, DaemonError } from '../../daemon/index.js';

async function restart(timeoutMs: number): Promise<string> {
  const r = await call({ op: 'restart' }, { start: false, timeoutMs: 10_000 });
  const old = r.pid ?? 0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await daemonStatus().catch(() => null);
    if (s && s.pid !== old) return `daemon ${old} -> ${s.pid}, ${s.mounts.length} mount${s.mounts.length === 1 ? '' : 's'}`;
    if (Date.now() > deadline) throw new DaemonError('ETIMEDOUT', `no new daemon answered within ${Math.round(timeoutMs / 1000)} s (see the daemon log)`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

export function register(program: Command): void {
  const daemon = program.command('daemon').description('the resident daemon that serves every mount');
  daemon
    .command('restart')
    .description('replace the running daemon with a new one (a new build) without unmounting anything')
    .option('--timeout <s>', 'how long to wait for the new daemon', '30')
    .action(async (flags: { timeout: string }) => {
      try {
        process.stdout.write((await restart(Number(flags.timeout) * 1000 || 30_000)) + '\n');
      } catch (e) {
        throw new CliError('daemon restart', e);
      }
    });
}
