#!/usr/bin/env node
/**
 * `layerfs` entry point (bin/layerfs execs this file).
 *
 * To add a command: create `src/cli/commands/<name>.ts` exporting `register(program: Command)`,
 * then add one import line and one entry to COMMANDS below. Nothing else to touch.
 */
import { run, type CommandModule } from './program.js';

// ---- Commands: one import + one list entry each -------------------------------------------

const COMMANDS: readonly CommandModule[] = [
];
// --------------------------------------------------------------------------------------------

await run(COMMANDS);
