/**
 * A serving thread left without mounts waits a while for the next mount instead of ending.
 *
 * A new thread costs every mount that needs one: a Node worker starts, loads the engine, and the
 * warm-up (warm-up.ts) compiles the request path before the kernel waits on it. Measured on the
 * 2-core VM (mount until the command returns, daemon running): ~290 ms when the mount needed a new
 * thread against ~100 ms when a thread was there. podman mounts and unmounts once per `run`, twice
 * per `diff`, so with one container at a time every mount paid for a new thread.
 *
 * One idle thread per kind (serving-thread.ts groups threads by what they are made with) lingers
 * for `LAYERFS_THREAD_LINGER_MS` (default 60 s; 0: end at once); others end at once. An idle
 * thread holds no mount and no listing (~8.5 MB of an empty worker), and it is unref'd: it never
 * keeps a process alive (a foreground mount, a test) that has nothing else to do (on 'beforeExit'
 * and 'exit' it is woken and ended, else the process would wait on its poll(2)), and the
 * daemon's own idle exit ends it anyway.
 */

/** Default milliseconds an idle serving thread waits for a mount. */
export const DEFAULT_LINGER_MS = 60_000;

export function lingerMsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.LAYERFS_THREAD_LINGER_MS;
  if (raw === undefined || raw.trim() === '') return DEFAULT_LINGER_MS;
  const v = Number(raw);
  return Number.isFinite(v) && v >= 0 ? v : DEFAULT_LINGER_MS;
}

/** What lingers: a thread of a kind, whose worker can be unref'd, that can be told to end. */
export interface Lingering {
  readonly kindKey: string;
  readonly worker: { ref(): void; unref(): void };
  end(): void;
}

export class ThreadLinger<T extends Lingering> {
  private readonly idleByKind = new Map<string, { t: T; timer: NodeJS.Timeout }>();

  constructor(private readonly ms: () => number = () => lingerMsFromEnv()) {}

  /** `t` has no mount left: true when it lingers (ended later by the timer), false to end it now. */
  idle(t: T): boolean {
    const ms = this.ms();
    if (ms <= 0) return false;
    const cur = this.idleByKind.get(t.kindKey);
    if (cur && cur.t !== t) return false; // one idle thread per kind is enough
    if (cur) clearTimeout(cur.timer);
    const timer = setTimeout(() => {
      if (this.idleByKind.get(t.kindKey)?.t !== t) return;
      this.idleByKind.delete(t.kindKey);
      t.end();
    }, ms);
    timer.unref();
    t.worker.unref();
    this.idleByKind.set(t.kindKey, { t, timer });
    this.hookExit();
    return true;
  }

  private hooked = false;
  /**
   * An idle thread sleeps in poll(2): a process ending (its loop empty, or process.exit) would wait
   * on it for ever. Wake it with its `exit` command first.
   */
  private hookExit(): void {
    if (this.hooked) return;
    this.hooked = true;
    const endIdle = (): void => {
      for (const { t, timer } of this.idleByKind.values()) {
        clearTimeout(timer);
        t.end();
      }
      this.idleByKind.clear();
    };
    process.on('beforeExit', endIdle);
    process.on('exit', endIdle);
  }

  /** `t` takes a mount: it no longer lingers. */
  busy(t: T): void {
    const cur = this.idleByKind.get(t.kindKey);
    if (!cur || cur.t !== t) return;
    clearTimeout(cur.timer);
    this.idleByKind.delete(t.kindKey);
    t.worker.ref();
  }

  /** `t` exited. */
  gone(t: T): void {
    const cur = this.idleByKind.get(t.kindKey);
    if (cur && cur.t === t) {
      clearTimeout(cur.timer);
      this.idleByKind.delete(t.kindKey);
    }
  }

  /** Idle threads lingering now. */
  get size(): number {
    return this.idleByKind.size;
  }
}

/** No lingering: a thread without mounts ends at once (test union modules). */
export const noLinger: ThreadLinger<never> = new ThreadLinger<never>(() => 0);
