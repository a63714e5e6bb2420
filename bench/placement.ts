/**
 * Where the processes of a disk-bound row run (workload smallcpup).
 *
 * On a machine whose disk completes every request on one CPU (one queue, one interrupt, as the
 * virtio disk of a small VM), a process waiting in fsync on another CPU is woken across CPUs, and
 * that wake-up is paid once per fsync: kernel overlayfs's chmod copy-up of 1,000 files measured
 * 232 ms with its client on the interrupt's CPU and 387-414 ms on the other one, the same
 * requests reaching the disk in both. Left to the scheduler, which CPU a target gets is luck, and
 * the row's ratios moved between runs by more than any change to the code.
 *
 * So the row puts each target where the disk answers: the client (kernel overlayfs does the work
 * in the client's own context) and the FUSE server's threads on the CPU that takes the disk's
 * interrupts. That is every target's best case, and it is what a disk with a queue per CPU (NVMe)
 * gives any process: its requests complete on the CPU that sent them.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The CPU that takes a disk's interrupts. */
export interface DiskIrq {
  cpu: number;
  /** The interrupt's number and name in /proc/interrupts (`36 virtio1-req.0`). */
  irq: string;
  /** The block device (`vda`). */
  disk: string;
}

/** Interrupt counts by number (summed over CPUs) and names, from /proc/interrupts. */
function interrupts(): Map<string, { count: number; name: string }> {
  const out = new Map<string, { count: number; name: string }>();
  const lines = fs.readFileSync('/proc/interrupts', 'utf8').split('\n');
  const cpus = (lines[0] ?? '').trim().split(/\s+/).length;
  for (const line of lines.slice(1)) {
    const m = /^\s*(\d+):\s+(.*)$/.exec(line);
    if (!m) continue;
    const fields = m[2]!.trim().split(/\s+/);
    const counts = fields.slice(0, cpus).map(Number);
    if (counts.some((n) => !Number.isFinite(n))) continue;
    out.set(m[1]!, { count: counts.reduce((a, b) => a + b, 0), name: fields[fields.length - 1] ?? '' });
  }
  return out;
}

/** A single CPU from an affinity list (`1`), else null (`0-1`, `0,2`). */
function singleCpu(list: string): number | null {
  const t = list.trim();
  return /^\d+$/.test(t) ? Number(t) : null;
}

/**
 * The CPU that takes the interrupts of the disk holding `dir`, when one CPU takes them all (the
 * busiest of the device's MSI interrupts is bound to one CPU); null when that cannot be told
 * (no MSI interrupts in sysfs, a device-mapper or network filesystem, several CPUs).
 */
export function diskIrqCpu(dir: string): DiskIrq | null {
  try {
    const dev = fs.statSync(dir).dev;
    const major = (dev & 0xfff00) >> 8;
    const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    let block = fs.realpathSync(`/sys/dev/block/${major}:${minor}`);
    if (fs.existsSync(path.join(block, 'partition'))) block = path.dirname(block);
    // the device's ancestors in sysfs up to the one with MSI interrupts (the PCI function)
    let p = fs.realpathSync(path.join(block, 'device'));
    let irqs: string[] = [];
    while (p.startsWith('/sys/devices/') && irqs.length === 0) {
      const msi = path.join(p, 'msi_irqs');
      if (fs.existsSync(msi)) irqs = fs.readdirSync(msi);
      p = path.dirname(p);
    }
    const all = interrupts();
    const busiest = irqs.filter((n) => all.has(n)).sort((a, b) => all.get(b)!.count - all.get(a)!.count)[0];
    if (busiest === undefined || all.get(busiest)!.count === 0) return null;
    const cpu = singleCpu(fs.readFileSync(`/proc/irq/${busiest}/effective_affinity_list`, 'utf8'));
    if (cpu === null) return null;
    return { cpu, irq: `${busiest} ${all.get(busiest)!.name}`, disk: path.basename(block) };
  } catch {
    return null;
  }
}

/** Bind every thread of the processes `pids` to `cpu`, or back to every CPU (null). Gone pids are skipped. */
export function pinPids(pids: readonly number[], cpu: number | null): void {
  const list = cpu === null ? `0-${os.availableParallelism() - 1}` : String(cpu);
  for (const pid of pids) {
    const r = spawnSync('taskset', ['-a', '-p', '-c', list, String(pid)], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0 && fs.existsSync(`/proc/${pid}`)) {
      throw new Error(`taskset -a -p -c ${list} ${pid} failed: ${(r.stderr || r.error?.message || `status ${r.status}`).trim()}`);
    }
  }
}
