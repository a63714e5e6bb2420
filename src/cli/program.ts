/**
 * The commander program behind `layerfs`: version, help, one-line errors, exit statuses, and
 * the mount-helper argument forms. The list of commands lives in main.ts.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { CliError, EXIT_USAGE, UsageError, reasonOf, reportError } from './errors.js';

/** What each `src/cli/commands/<name>.ts` exports. */
export interface CommandModule {
  register(program: Command): void;
}

/** A command module loaded on start: `{ name: 'tree', load: () => import('./commands/tree.js') }`. */
export interface CommandSource {
  name: string;
  load(): Promise<CommandModule>;
}

/**
 * Load every command module. One that fails to load (a broken build, a missing optional
 * dependency) does not take the others down: it becomes a stand-in command that fails with one
 * line naming the cause, and the rest of the CLI (mount above all) keeps working.
 */
export async function loadCommands(sources: readonly CommandSource[]): Promise<CommandModule[]> {
  const settled = await Promise.allSettled(sources.map((s) => s.load()));
  return settled.map((r, i): CommandModule => {
    if (r.status === 'fulfilled') return r.value;
    const name = sources[i]!.name;
    const reason = reasonOf(r.reason);
    return {
      register(program: Command): void {
        program
          .command(name)
          .description(`(unavailable: ${reason})`)
          .argument('[args...]')
          .allowUnknownOption()
          .helpOption(false)
          .action(() => {
            throw new CliError(name, `command unavailable: ${reason}`);
          });
      },
    };
  });
}

function packageVersion(): string {
  try {
    const url = new URL('../../../package.json', import.meta.url); // dist/src/cli -> repo root
    const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The full program, with every command registered. */
export function createProgram(commands: readonly CommandModule[]): Command {
  const program = new Command('layerfs');
  program
    .description('Copy-on-write union filesystem with AUFS semantics')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      // commander's own errors ("error: unknown option '--x'") become one `layerfs: ...` line
      outputError: (str, write) => write(`layerfs: ${str.replace(/^error: /, '').trimEnd()}\n`),
    })
    .addHelpText(
      'after',
      '\nAlso: `layerfs SOURCE MNT -o OPTS` and `layerfs -o OPTS MNT` mean `layerfs mount ...`' +
        '\n(mount(8) helper and fuse-overlayfs forms).',
    );
  for (const c of commands) c.register(program);
  return program;
}

/** Options that take a value in the mount-helper forms, so their value is not taken for a command. */
const VALUE_OPTIONS = new Set(['-o', '--options']);

/**
 * Mount-helper forms mean `layerfs mount ...`: mount(8) runs `layerfs SOURCE MNT -o OPTS` and
 * fuse-overlayfs users write `layerfs -o lowerdir=... MNT`. So when the first non-option argument
 * is not a command name and the call looks like a mount (an `-o` anywhere, or two or more
 * non-option arguments), `mount` is put in front. A lone unknown word stays an unknown command.
 */
export function rewriteArgs(args: readonly string[], commandNames: ReadonlySet<string>): string[] {
  const positionals: string[] = [];
  let hasOptions = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('-') && a !== '-') {
      if (VALUE_OPTIONS.has(a)) {
        hasOptions = true;
        i++;
      } else if (a.startsWith('-o') || a.startsWith('--options=')) {
        hasOptions = true;
      }
      continue;
    }
    positionals.push(a);
  }
  const first = positionals[0];
  if (first !== undefined && commandNames.has(first)) return [...args];
  if (!commandNames.has('mount')) return [...args];
  return hasOptions || positionals.length >= 2 ? ['mount', ...args] : [...args];
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c && c.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ') || 'layerfs';
}

/** Parse and run; returns the exit status (also set as process.exitCode). */
export async function run(
  commands: readonly CommandSource[],
  argv: readonly string[] = process.argv.slice(2),
): Promise<number> {
  const program = createProgram(await loadCommands(commands));
  const names = new Set<string>(['help']);
  for (const c of program.commands) {
    names.add(c.name());
    for (const a of c.aliases()) names.add(a);
  }
  let current = 'layerfs';
  program.hook('preAction', (_root, action) => {
    current = commandPath(action);
  });
  try {
    await program.parseAsync(rewriteArgs(argv, names), { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help/version: done; everything else commander reports is a usage error (already printed)
      const ok = e.code === 'commander.helpDisplayed' || e.code === 'commander.version';
      process.exitCode = ok ? 0 : EXIT_USAGE;
      return process.exitCode;
    }
    return reportError(current, e);
  }
}


/** `--dirs=SPEC` and/or `-o OPTS` of a command, as given by the user. */
export interface UnionSpecArgs {
  dirs?: string;
  options?: string | string[];
}

/**
 * The mount option string a command's `--dirs`/`-o` arguments stand for (`dirs=SPEC,OPTS`);
 * UsageError when neither is given.
 */
export function unionSpecString(what: string, a: UnionSpecArgs): string {
  const parts: string[] = [];
  if (a.dirs !== undefined) parts.push(`dirs=${a.dirs}`);
  const opts = a.options === undefined ? [] : Array.isArray(a.options) ? a.options : [a.options];
  parts.push(...opts);
  if (parts.length === 0) throw new UsageError(what, 'no branches: give --dirs=A=rw:B=ro:... or -o lowerdir=...,upperdir=...');
  return parts.join(',');
}

/** Collect repeated `-o` values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
