/**
 * What push and pull report while they work. The registry module only emits these; the CLI decides
 * what a terminal shows (progress bars on a TTY, nothing when piped).
 */
export type BlobState =
  | 'waiting'
  | 'downloading'
  | 'cached' // a verified copy was already in the blob cache (a resumed pull)
  | 'verified'
  | 'present' // the layer was already in the store (pull) or the blob in the repository (push)
  | 'mounted' // cross-repository mount: the registry linked the blob from another repository
  | 'compressing'
  | 'uploading'
  | 'uploaded'
  | 'imported';

export interface BlobEvent {
  /** Short label: `layer 2/5` or `config`. */
  label: string;
  digest: string;
  /** Bytes expected (0 when not known yet). */
  size: number;
  /** Bytes done so far. */
  done: number;
  state: BlobState;
}

export type OnEvent = (e: BlobEvent) => void;

/** Runs `fns` with at most `limit` at a time; every promise is settled before the first error is thrown. */
export async function inParallel<T>(limit: number, fns: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array<T>(fns.length);
  let next = 0;
  let failed: { e: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < fns.length && !failed) {
      const i = next++;
      try {
        out[i] = await fns[i]!();
      } catch (e) {
        failed ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, fns.length)) }, worker));
  if (failed) throw failed.e;
  return out;
}
