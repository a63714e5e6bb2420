/**
 * LAYERFS_MOUNT_TIMING=1: the daemon writes, for each mount request, how long each phase took to
 * its log (`<run>/daemon-<mntns>.log`), one line:
 *   layerfs daemon PID: mount MNT: timing (ms): request 0.3, thread 0.1, union 4.2, mount(2) 1.0, init 0.8, published 0.4, reply 0.1; total 6.9
 * request: from the connection to the parsed request; thread: picking (or starting) its serving
 * thread; union: the serving thread opened the branches; mount(2): /dev/fuse opened and mounted;
 * init: the kernel's INIT answered; published: the runtime dir written; reply: the reply sent.
 */
import { performance } from 'node:perf_hooks';

export function mountTimingOn(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.LAYERFS_MOUNT_TIMING === '1';
}

export class MountTiming {
  private readonly phases: string[] = [];
  private last: number;

  constructor(private readonly t0: number = performance.now()) {
    this.last = t0;
  }

  /** The phase that ends now. */
  mark(phase: string): void {
    const now = performance.now();
    this.phases.push(`${phase} ${(now - this.last).toFixed(1)}`);
    this.last = now;
  }

  line(): string {
    return `timing (ms): ${this.phases.join(', ')}; total ${(this.last - this.t0).toFixed(1)}`;
  }
}
