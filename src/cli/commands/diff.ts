/**
 * `layerfs diff --dirs=SPEC`: what the writable (topmost rw) branch changed over the branches
 * below it, as `docker diff` lists it: `A /path`, `C /path`, `D /path`, sorted by path.
 */
import type { Command } from 'commander';
import { parseOptions, validateOptions } from '../../engine/index.js';
import { changes } from '../../store/changes.js';
import { formatChanges } from '../changes.js';
import { UsageError } from '../errors.js';
import { collect, unionSpecString, type UnionSpecArgs } from '../program.js';

export function register(program: Command): void {
  program
    .command('diff')
    .description("list the writable branch's changes (A added, C changed, D deleted), like docker diff")
    .option('--dirs <spec>', 'branches, as in the dirs= mount option: A=rw:B=ro:C')
    .option('-o, --options <opts>', 'mount options (dirs=... or lowerdir=...,upperdir=...)', collect)
    .action((opts: UnionSpecArgs) => {
      const o = parseOptions(unionSpecString('diff', opts));
      validateOptions(o);
      const [top, ...lower] = o.branches;
      if (!top || top.perm !== 'rw') {
        throw new UsageError('diff', 'no writable branch: mark the topmost branch =rw');
      }
      process.stdout.write(formatChanges(changes(top.path, lower.map((b) => b.path))));
    });
}
