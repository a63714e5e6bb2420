/**
 * `layerfs layer import|export|ls|inspect|rm|squash|diff`: read-only layers of the store
 * (Docker's aufs layout under --root: diff/<id>, layers/<id>, mnt/<id>).
 */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { formatChanges } from '../changes.js';
import { formatTree } from '../layer-tree.js';
import { CliError, UsageError } from '../errors.js';
import { fileProgress, inputOf, openStore, withRoot, type RootFlags } from './store-common.js';

export function register(program: Command): void {
  const layer = program
    .command('layer')
    .description('manage read-only layers: import/export OCI tar layers, list, inspect, remove, squash')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  layerfs layer import base.tar.gz --name base     # a base layer, named as image base:latest\n' +
        '  layerfs layer import app.tar --parent base        # a layer on top of it\n' +
        '  layerfs layer ls                                  # the layers as a tree\n' +
        '  layerfs layer export base -o base.tar             # reproducible OCI tar (same content, same DiffID)',
    );

  withRoot(
    layer
      .command('import')
      .description('import a tar layer (plain, gzip or zstd; OCI whiteouts) from FILE or stdin; prints the new id')
      .argument('[file]', 'tar file, - or nothing for stdin')
      .option('-p, --parent <layer>', 'parent layer (id, id prefix or image name)')
      .option('-n, --name <image>', 'image name to point at the new layer'),
  ).action(async (file: string | undefined, flags: RootFlags & { parent?: string; name?: string }) => {
    const store = openStore(flags);
    if ((file === undefined || file === '-') && process.stdin.isTTY) throw new UsageError('layer import', 'no input: give a file or pipe a tar into stdin');
    const bar = fileProgress('import', file);
    try {
      const meta = await store.importTar(inputOf(file), {
        ...(flags.parent !== undefined ? { parent: flags.parent } : {}),
        ...(flags.name !== undefined ? { name: flags.name } : {}),
        onBytes: (n) => bar.update(n),
      });
      bar.stop();
      process.stdout.write(`${meta.id}\n`);
    } finally {
      bar.stop();
    }
  });

  withRoot(
    layer
      .command('export')
      .description('write a layer as a reproducible OCI tar layer (whiteouts as .wh. entries)')
      .argument('<layer>', 'id, id prefix or image name')
      .option('-o, --output <file>', 'output file (default stdout)')
      .option('-z, --gzip', 'gzip the output'),
  ).action(async (ref: string, flags: RootFlags & { output?: string; gzip?: boolean }) => {
    const store = openStore(flags);
    const id = store.resolve(ref);
    if (flags.output === undefined && process.stdout.isTTY) throw new UsageError('layer export', 'refusing to write a tar to a terminal; use -o FILE or a pipe');
    const out = flags.output === undefined ? process.stdout : fs.createWriteStream(`${flags.output}.tmp-${process.pid}`);
    const tarStream = store.exportTar(id);
    try {
      if (flags.gzip) await pipeline(tarStream, createGzip(), out);
      else await pipeline(tarStream, out);
      if (flags.output !== undefined) fs.renameSync(`${flags.output}.tmp-${process.pid}`, flags.output);
    } catch (e) {
      if (flags.output !== undefined) fs.rmSync(`${flags.output}.tmp-${process.pid}`, { force: true });
      throw e;
    }
  });

  withRoot(
    layer
      .command('ls')
      .alias('list')
      .description('list layers and containers as a tree (parent -> children) with sizes and image names')
      .option('--json', 'print the metadata as JSON'),
  ).action((flags: RootFlags & { json?: boolean }) => {
    const store = openStore(flags);
    const list = store.list().map((m) => (m.kind === 'container' ? { ...m, size: store.liveSize(m.id) } : m));
    if (flags.json) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
    else process.stdout.write(formatTree(list, store.images()));
  });

  withRoot(
    layer.command('inspect').description('print layer metadata as JSON (DiffID, ChainID, size, parents)').argument('<layer...>', 'ids, id prefixes or image names'),
  ).action((refs: string[], flags: RootFlags) => {
    const store = openStore(flags);
    const out = refs.map((r) => {
      const id = store.resolve(r);
      const images = Object.entries(store.images()).filter(([, e]) => e.layer === id).map(([n]) => n);
      const meta = store.get(id);
      return { ...meta, size: meta.kind === 'container' ? store.liveSize(id) : meta.size, layers: store.chain(id).slice(1), images, mounted: store.isMounted(id), diffDir: store.diffDir(id) };
    });
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  });

  withRoot(
    layer.command('rm').alias('remove').description('remove layers (refused while mounted, with children, or named by an image; `image rm` and `image prune` remove unneeded layers)').argument('<layer...>'),
  ).action(async (refs: string[], flags: RootFlags) => {
    const store = openStore(flags);
    for (const r of refs) {
      try {
        await store.remove(r);
      } catch (e) {
        throw new CliError(`layer rm ${r}`, e);
      }
      process.stdout.write(`${r}\n`);
    }
  });

  withRoot(
    layer
      .command('squash')
      .description('flatten a layer and its ancestors into one new base layer; prints its id')
      .argument('<layer>')
      .option('-n, --name <image>', 'image name for the result'),
  ).action(async (ref: string, flags: RootFlags & { name?: string }) => {
    const store = openStore(flags);
    const meta = await store.squash(ref, flags.name !== undefined ? { name: flags.name } : {});
    process.stdout.write(`${meta.id}\n`);
  });

  withRoot(layer.command('diff').description("a layer's changes over its parents: A/C/D lines like docker diff").argument('<layer>')).action(
    (ref: string, flags: RootFlags) => {
      process.stdout.write(formatChanges(openStore(flags).diff(ref)));
    },
  );
}
