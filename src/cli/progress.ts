/**
 * Progress for long imports/exports/commits: a cli-progress bar on stderr when stderr is a TTY,
 * nothing at all when it is piped or redirected.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Bytes done so far (of `total` when known). */
  update(done: number): void;
  /** Start a new step (e.g. the next layer). */
  step(label: string, total?: number): void;
  stop(): void;
}

const quiet: Progress = { update() {}, step() {}, stop() {} };

export function progress(label: string, total?: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return quiet;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{label} [{bar}] {percentage}% {value_h}/{total_h}',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
      formatValue: (v: number, _o: unknown, type: string) => (type === 'value' || type === 'total' ? human(v) : String(v)),
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const start = (l: string, t?: number): void => {
    if (started) bar.stop();
    bar.start(t ?? 0, 0, { label: l, value_h: human(0), total_h: t === undefined ? '?' : human(t) });
    started = true;
  };
  start(label, total);
  return {
    update(done: number) {
      if (bar.getTotal() < done) bar.setTotal(done);
      bar.update(done, { value_h: human(done) });
    },
    step(l: string, t?: number) {
      start(l, t);
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

export function human(n: number): string {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < u.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v}B` : `${v.toFixed(1)}${u[i]}`;
}
