#!/usr/bin/env node
/**
 * `layerfs` entry point (bin/layerfs execs this file).
 *
 * To add a command: create `src/cli/commands/<name>.ts` exporting `register(program: Command)`,
 * then add one line to COMMANDS below. Nothing else to touch.
 */
import type { CommandSource } from './program.js';
import { plainMount, runPlainMount } from './mount-fast.js';

// ---- Commands: one line each ---------------------------------------------------------------
// Loaded with import() so that one module failing to load only disables its own command.
const COMMANDS: readonly CommandSource[] = [
  { name: 'tree', load: () => import('./commands/tree.js') },
  { name: 'diff', load: () => import('./commands/diff.js') },
  { name: 'mount', load: () => import('./commands/mount.js') },
  { name: 'umount', load: () => import('./commands/umount.js') },
  { name: 'info', load: () => import('./commands/info.js') },
  { name: 'daemon', load: () => import('./commands/daemon.js') },
  { name: 'layer', load: () => import('./commands/layer.js') },
  { name: 'container', load: () => import('./commands/container.js') },
  { name: 'image', load: () => import('./commands/image.js') },
  { name: 'docker-plugin', load: () => import('./commands/docker-plugin.js') },
  { name: 'containerd-snapshotter', load: () => import('./commands/containerd-snapshotter.js') },
];
// --------------------------------------------------------------------------------------------

// A plain background mount only talks to the daemon: no commander, no command modules.
const fast = plainMount(process.argv.slice(2), process.cwd());
if (fast) process.exitCode = await runPlainMount(fast);
else await (await import('./program.js')).run(COMMANDS);
