#!/usr/bin/env node
/**
 * `layerfs` entry point (bin/layerfs execs this file).
 *
 * To add a command: create `src/cli/commands/<name>.ts` exporting `register(program: Command)`,
 * then add one import line and one entry to COMMANDS below. Nothing else to touch.
 */
import { run, type CommandModule } from './program.js';

// ---- Commands: one import + one list entry each -------------------------------------------
import * as tree from './commands/tree.js';
import * as diff from './commands/diff.js';
import * as mount from './commands/mount.js';
import * as umount from './commands/umount.js';
import * as info from './commands/info.js';
import * as layer from './commands/layer.js';
import * as container from './commands/container.js';
import * as image from './commands/image.js';

const COMMANDS: readonly CommandModule[] = [
  tree,
  diff,
  mount,
  umount,
  info,
  layer,
  container,
  image,
];
// --------------------------------------------------------------------------------------------

await run(COMMANDS);
