/**
 * The kill loop and the recovery probe, as a process of its own (kill-loop.ts starts it): the tests'
 * workloads block in synchronous calls on the mount, so nothing that must keep time may share their
 * thread.
 *
 * Main thread (the killer): every `minMs..maxMs` (a seeded random pause, counted from the moment the
 * daemon answered again) it reads the daemon pid files of the runtime dir afresh and kill -9s the pids
 * they name, records when, then waits until the probe says the mount answers again.
 * Worker thread (the probe): `stat(MNT/.kill-probe-N)` with a new N each time (a LOOKUP the kernel
 * cannot answer from its caches; ENOENT is the answer), every `probeMs`, each start and end written
 * to shared memory (answered ones only: ENOENT; any other answer is an error a user saw), so the
 * killer reads "the first request started after the kill was answered at T".
 *
 * Recovery of one kill = end of the first probe request that started after the kill - the kill time.
 * On SIGTERM (or after `lifeMs`, the hard limit if the test that started it is gone) it stops killing,
 * waits for the last kill's recovery (bounded), writes the report (JSON) to `out` and exits.
 */
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { rng } from './rng.js';

export interface DriverConfig {
  /** Runtime dir whose daemon-*.pid files name the daemons to kill. */
  run: string;
  /** A directory on the mount the probe looks up names in. */
  probeDir: string;
  kill: boolean;
  seed: number;
  minMs: number;
  maxMs: number;
  probeMs: number;
  /** How long a kill may stay without recovery before the loop gives up (and reports it). */
  recoveryLimitMs: number;
  lifeMs: number;
  out: string;
}

export interface KillRecord {
  /** ms since the driver started. */
  atMs: number;
  pid: number;
  /** kill -> first answered probe request started after it; null = never answered. */
  recoveryMs: number | null;
}

export interface ProbeError {
  atMs: number;
  code: string;
  message: string;
}

export interface DriverReport {
  seed: number;
  kill: boolean;
  durationMs: number;
  kills: KillRecord[];
  /** Why the loop stopped killing before it was told to (a kill without recovery, ...), or null. */
  gaveUp: string | null;
  probes: number;
  /** Probe answers other than ENOENT (ENOTCONN, EIO, ...): a user saw these. The first 20. */
  probeErrors: ProbeError[];
  probeErrorCount: number;
  /** Longest single probe request (ms), kills or not. */
  probeMaxMs: number;
  /** A probe request still unanswered at the end (ms it had waited), or null. */
  probeStuckMs: number | null;
}

// shared slots (BigInt64, ns of process.hrtime.bigint()): [seq, lastStart, lastEnd, inFlightStart (0 = none)]
const SEQ = 0;
const START = 1;
const END = 2;
const INFLIGHT = 3;

function probeMain(cfg: DriverConfig, shared: BigInt64Array): void {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  let n = 0;
  for (;;) {
    const t0 = process.hrtime.bigint();
    Atomics.store(shared, INFLIGHT, t0);
    let err: NodeJS.ErrnoException | null = null;
    try {
      statSync(join(cfg.probeDir, `.kill-probe-${process.pid}-${n++}`));
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    const t1 = process.hrtime.bigint();
    Atomics.store(shared, INFLIGHT, 0n);
    if (err !== null && err.code === 'ENOENT') {
      // answered as it should be: this is what "the mount answers again" means
      Atomics.store(shared, START, t0);
      Atomics.store(shared, END, t1);
      Atomics.add(shared, SEQ, 1n);
    } else {
      parentPort!.postMessage({ t0: String(t0), code: err?.code ?? 'EXISTS', message: err ? err.message : 'probe name exists' });
    }
    parentPort!.postMessage({ lat: Number(t1 - t0) / 1e6 });
    Atomics.wait(sleeper, 0, 0, cfg.probeMs);
  }
}

function daemonPids(run: string): number[] {
  let names: string[] = [];
  try {
    names = readdirSync(run).filter((f) => /^daemon-.*\.pid$/.test(f));
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const f of names) {
    try {
      const pid = Number(readFileSync(join(run, f), 'utf8').trim());
      if (Number.isInteger(pid) && pid > 1 && existsSync(`/proc/${pid}`) && !zombie(pid)) out.push(pid);
    } catch {
      /* rewritten meanwhile */
    }
  }
  return out;
}

function zombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function killerMain(cfg: DriverConfig): Promise<void> {
  const t0 = process.hrtime.bigint();
  const ms = (ns: bigint) => Number(ns - t0) / 1e6;
  const shared = new BigInt64Array(new SharedArrayBuffer(8 * 4));
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { cfg, shared } });
  const report: DriverReport = {
    seed: cfg.seed,
    kill: cfg.kill,
    durationMs: 0,
    kills: [],
    gaveUp: null,
    probes: 0,
    probeErrors: [],
    probeErrorCount: 0,
    probeMaxMs: 0,
    probeStuckMs: null,
  };
  worker.on('message', (m: { lat?: number; t0?: string; code?: string; message?: string }) => {
    if (m.lat !== undefined) {
      report.probes++;
      report.probeMaxMs = Math.max(report.probeMaxMs, m.lat);
    } else {
      report.probeErrorCount++;
      if (report.probeErrors.length < 20) report.probeErrors.push({ atMs: ms(BigInt(m.t0!)), code: m.code!, message: m.message! });
    }
  });
  worker.on('error', (e) => {
    report.probeErrorCount++;
    report.probeErrors.push({ atMs: ms(process.hrtime.bigint()), code: 'WORKER', message: String(e) });
  });

  let stopping = false;
  process.on('SIGTERM', () => (stopping = true));
  const life = setTimeout(() => (stopping = true), cfg.lifeMs);

  /** Wait until a probe request that started at/after `since` has been answered; its end, or null. */
  const recovered = async (since: bigint, limitMs: number): Promise<bigint | null> => {
    const end = Date.now() + limitMs;
    for (;;) {
      const seq = Atomics.load(shared, SEQ);
      const s = Atomics.load(shared, START);
      const e = Atomics.load(shared, END);
      if (seq === Atomics.load(shared, SEQ) && s >= since && e > 0n) return e;
      if (Date.now() > end) return null;
      await sleep(1);
    }
  };

  const rand = rng(cfg.seed);
  let lastKilled = 0;
  while (cfg.kill && !stopping) {
    await sleep(cfg.minMs + Math.floor(rand() * (cfg.maxMs - cfg.minMs + 1)));
    if (stopping) break;
    // the pid file afresh: after a kill it names the dead daemon until the new one has written it
    let pids = daemonPids(cfg.run).filter((p) => p !== lastKilled);
    const waitPid = Date.now() + cfg.recoveryLimitMs;
    while (pids.length === 0 && !stopping && Date.now() < waitPid) {
      await sleep(10);
      pids = daemonPids(cfg.run).filter((p) => p !== lastKilled);
    }
    if (pids.length === 0) {
      if (!stopping) report.gaveUp = `no live daemon named by ${cfg.run}/daemon-*.pid for ${cfg.recoveryLimitMs} ms`;
      break;
    }
    const at = process.hrtime.bigint();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* exited meanwhile */
      }
    }
    lastKilled = pids[0]!;
    const rec: KillRecord = { atMs: ms(at), pid: pids[0]!, recoveryMs: null };
    report.kills.push(rec);
    const e = await recovered(at, cfg.recoveryLimitMs);
    if (e === null) {
      report.gaveUp = `the mount did not answer for ${cfg.recoveryLimitMs} ms after kill #${report.kills.length} (pid ${rec.pid} at ${rec.atMs.toFixed(0)} ms)`;
      break;
    }
    rec.recoveryMs = Number(e - at) / 1e6;
  }
  while (!stopping) await sleep(20);
  clearTimeout(life);
  // one last answered request (the last kill's recovery, or the mount still answering)
  await recovered(process.hrtime.bigint(), 5_000);
  const inflight = Atomics.load(shared, INFLIGHT);
  report.probeStuckMs = inflight > 0n ? Number(process.hrtime.bigint() - inflight) / 1e6 : null;
  await sleep(20); // let the worker's last messages arrive
  report.durationMs = ms(process.hrtime.bigint());
  writeFileSync(cfg.out, JSON.stringify(report));
  process.exit(0); // the probe may be blocked on a dead mount: exit takes it down
}

if (isMainThread) {
  if (process.argv[2] === undefined) {
    console.error('kill-driver: usage: kill-driver.js CONFIG_JSON');
    process.exit(2);
  }
  void killerMain(JSON.parse(process.argv[2]) as DriverConfig);
} else {
  const d = workerData as { cfg: DriverConfig; shared: BigInt64Array };
  probeMain(d.cfg, d.shared);
}
