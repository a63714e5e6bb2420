/**
 * `layerfs image import|export|ls|inspect|tag|rm|prune`: images (named top layers) and their exchange
 * formats: OCI image layout directories (`DIR[:TAG]`, as umoci and `skopeo oci:` use) and
 * `docker save` archives (`FILE.tar`, as `docker load` and `skopeo docker-archive:` use).
 */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import { exportDocker, importDocker } from '../../store/image-docker.js';
import { exportOci, importOci, splitLayoutRef } from '../../store/image-oci.js';
import { human } from '../progress.js';
import { UsageError } from '../errors.js';
import { layerProgress, openStore, withRoot, type RootFlags } from './store-common.js';
import { registerRegistry } from './image-registry.js';

type Format = 'oci' | 'docker';

function formatOf(flag: string | undefined, target: string, exists: boolean): Format {
  if (flag === 'oci' || flag === 'docker') return flag;
  if (flag !== undefined) throw new UsageError('image', `unknown format ${flag} (oci or docker)`);
  if (exists) return fs.statSync(target).isDirectory() ? 'oci' : 'docker';
  return /\.tar(\.gz|\.zst)?$/.test(target) ? 'docker' : 'oci';
}

export function register(program: Command): void {
  const img = program
    .command('image')
    .description('manage images: import/export OCI layouts and docker-save archives, list, tag, remove, prune')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  layerfs image import ./oci:latest myimg        # OCI image layout (umoci, skopeo oci:)\n' +
        '  layerfs image import saved.tar                  # docker save archive (name from RepoTags)\n' +
        '  layerfs image export myimg ./out:v1             # OCI layout DIR:TAG\n' +
        '  layerfs image export myimg img.tar              # docker save archive (docker load, skopeo docker-archive:)',
    );
  registerRegistry(img); // push / pull (OCI distribution API)

  withRoot(
    img
      .command('import')
      .description('import an OCI image layout (DIR[:TAG]) or a docker save archive (FILE); prints the top layer id')
      .argument('<source>', 'DIR[:TAG] or FILE')
      .argument('[name]', 'image name (default: the archive tag, or the layout tag)')
      .option('--format <f>', 'oci or docker (default: guessed from the source)'),
  ).action(async (source: string, name: string | undefined, flags: RootFlags & { format?: string }) => {
    const store = openStore(flags);
    const { dir, tag } = splitLayoutRef(source);
    const target = fs.existsSync(source) ? source : dir;
    const format = formatOf(flags.format, target, fs.existsSync(target));
    const bar = layerProgress('import');
    try {
      if (format === 'oci') {
        const n = name ?? `${dir.replace(/\/+$/, '').split('/').pop()!.toLowerCase()}:${tag ?? 'latest'}`;
        const top = await importOci(store, target === source ? source : dir, target === source ? undefined : tag, n, bar.onLayer);
        bar.stop();
        process.stdout.write(`${top}\n`);
      } else {
        const r = await importDocker(store, source, name, bar.onLayer);
        bar.stop();
        process.stdout.write(`${r.top}\n`);
      }
    } finally {
      bar.stop();
    }
  });

  withRoot(
    img
      .command('export')
      .description('export an image as an OCI layout (DIR[:TAG]) or a docker save archive (FILE.tar)')
      .argument('<image>')
      .argument('<dest>', 'DIR[:TAG] or FILE.tar')
      .option('--format <f>', 'oci or docker (default: docker for *.tar, else oci)')
      .option('-t, --tag <name>', 'repository tag written into a docker archive (default: the image name)'),
  ).action(async (image: string, dest: string, flags: RootFlags & { format?: string; tag?: string }) => {
    const store = openStore(flags);
    const format = formatOf(flags.format, dest, false);
    const bar = layerProgress('export');
    try {
      if (format === 'oci') {
        const { dir, tag } = splitLayoutRef(dest);
        await exportOci(store, image, dir, tag ?? (/:([^/:]+)$/.exec(image)?.[1] ?? 'latest'), bar.onLayer);
      } else {
        await exportDocker(store, image, dest, flags.tag ?? (/^[0-9a-f]{4,64}$/.test(image) ? 'layerfs/export:latest' : image), bar.onLayer);
      }
    } finally {
      bar.stop();
    }
  });

  withRoot(img.command('ls').alias('list').description('list images: name, top layer, layers, size')).action((flags: RootFlags) => {
    const store = openStore(flags);
    for (const [n, e] of Object.entries(store.images())) {
      const chain = store.chain(e.layer);
      const size = chain.reduce((s, l) => s + store.get(l).size, 0);
      process.stdout.write(`${n}  ${e.layer.slice(0, 12)}  ${chain.length} layer(s)  ${human(size)}\n`);
    }
  });

  withRoot(img.command('inspect').description('print an image as JSON (layers, DiffIDs, ChainID, config)').argument('<image>')).action(
    (ref: string, flags: RootFlags) => {
      const store = openStore(flags);
      const top = store.resolve(ref);
      const chain = store.chain(top).reverse().map((l) => store.get(l));
      const names = Object.entries(store.images()).filter(([, e]) => e.layer === top);
      process.stdout.write(
        JSON.stringify(
          { id: top, names: names.map(([n]) => n), chainId: store.get(top).chainId, layers: chain, config: names.find(([, e]) => e.config)?.[1].config ?? null },
          null,
          2,
        ) + '\n',
      );
    },
  );

  withRoot(img.command('tag').description('name a layer as an image').argument('<layer>').argument('<name>')).action(async (ref: string, name: string, flags: RootFlags) => {
    await openStore(flags).tag(name, ref);
  });

  withRoot(
    img
      .command('rm')
      .alias('remove')
      .description('remove image names, then the layers nothing else uses (as docker image rm); prints what went')
      .argument('<name...>')
      .option('--no-prune', 'keep the layers (remove only the names)')
      .addHelpText(
        'after',
        '\nAfter the name goes, its top layer and then each parent below it are removed while no other image\n' +
          'name, child layer or container uses them and they are not mounted; the walk stops at the first\n' +
          'layer still in use, so nothing another image or a container needs is touched.\n' +
          'Layers left without any name earlier (or imported without --name) are removed by `image prune`.',
      ),
  ).action(async (names: string[], flags: RootFlags & { prune: boolean }) => {
    const store = openStore(flags);
    for (const n of names) {
      const removed = await store.untag(n, { prune: flags.prune });
      process.stdout.write(`Untagged: ${/:[^/]*$/.test(n) ? n : `${n}:latest`}\n`);
      for (const id of removed) process.stdout.write(`Deleted: ${id}\n`);
    }
  });

  withRoot(
    img
      .command('prune')
      .description('remove every layer that no image name, container or mount needs (as docker image prune); prints what went')
      .addHelpText(
        'after',
        '\nKept: the layers of every named image, of every container, and of every mounted layer.\n' +
          'Removed: all other read-only layers (e.g. left by `image rm --no-prune`, or imported without --name).',
      ),
  ).action(async (flags: RootFlags) => {
    const store = openStore(flags);
    const removed = await store.prune();
    for (const id of removed) process.stdout.write(`Deleted: ${id}\n`);
    process.stdout.write(`${removed.length} layer(s) removed\n`);
  });
}
