/**
 * One-line error reporting for every CLI command.
 *
 * A failing command prints exactly one line to stderr, `layerfs: <what failed>: <reason>`,
 * and the process exits 1 (2 for usage errors). Commands either throw anything (FsError,
 * node:fs errors, plain Errors; main.ts adds the command name as "what"), or throw a
 * `CliError` / `UsageError` to say precisely what failed.
 */
import { FsError } from '../errors/index.js';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure with its own "what failed" text: `throw new CliError('mount /mnt', err)`. */
export class CliError extends Error {
  readonly what: string;
  readonly exitCode: number;
  constructor(what: string, reason: unknown, exitCode: number = EXIT_FAILURE) {
    super(reasonOf(reason));
    this.name = 'CliError';
    this.what = what;
    this.exitCode = exitCode;
  }
}

/** A bad invocation (missing/contradictory options, bad spec syntax): exit status 2. */
export class UsageError extends CliError {
  constructor(what: string, reason: unknown) {
    super(what, reason, EXIT_USAGE);
    this.name = 'UsageError';
  }
}

/** The reason text of anything thrown: an error's message (first line, no stack), or the value. */
export function reasonOf(e: unknown): string {
  let s: string;
  if (e instanceof FsError || e instanceof Error) s = e.message;
  else if (typeof e === 'string') s = e;
  else s = String(e);
  const line = s.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.trim() || 'unknown error';
}

/** The single line printed for a failure (without trailing newline). */
export function errorLine(what: string, e: unknown): string {
  if (e instanceof CliError) return `layerfs: ${e.what}: ${e.message}`;
  return `layerfs: ${what}: ${reasonOf(e)}`;
}

/** Exit status for a failure. */
export function exitCodeOf(e: unknown): number {
  return e instanceof CliError ? e.exitCode : EXIT_FAILURE;
}

/** Print the one line to stderr and set the exit status; returns the status. */
export function reportError(what: string, e: unknown): number {
  const code = exitCodeOf(e);
  process.stderr.write(errorLine(what, e) + '\n');
  process.exitCode = code;
  return code;
}
