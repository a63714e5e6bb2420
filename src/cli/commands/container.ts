/**
 * `layerfs container create|mount|umount|rm|diff|commit|ls`: writable layers over an image,
 * mounted through FUSE with Docker's aufs branch string at <root>/mnt/<id>.
 */
import { realpathSync } from 'node:fs';
import type { Command } from 'commander';
import { listMounts } from '../../fuse/runtime-dir.js';
import { startMount, stopMount } from '../../daemon/index.js';
import { formatChanges } from '../changes.js';
import { storeErr } from '../../store/store-error.js';
import { human, progress } from '../progress.js';
import type { LayerStore } from '../../store/store.js';
import { CliError } from '../errors.js';
import { openStore, withRoot, type RootFlags } from './store-common.js';

function container(store: LayerStore, ref: string): string {
  const id = store.resolve(ref);
  if (store.get(id).kind !== 'container') throw storeErr('EINVAL', `${ref} is not a container`);
  return id;
}

/** Mounts container (or image layer, read-only) `id` at its mnt dir; returns the mount point. */
export async function mountLayer(store: LayerStore, id: string, debug = false): Promise<string> {
  const mountpoint = store.paths.mnt(id);
  await store.locked(async () => {
    store.get(id);
    if (store.isMounted(id)) throw storeErr('EBUSY', `${id.slice(0, 12)} is already mounted at ${mountpoint}`);
    await startMount({ options: store.branchString(id), mountpoint, source: 'layerfs', debug });
  });
  return mountpoint;
}

/** Where a live layerfs mount (the daemon's table) has `dir` as its writable branch, if anywhere. */
export function mountedRw(dir: string): string | undefined {
  const real = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  const want = real(dir);
  return listMounts().find((m) => m.branches.some((b) => b.perm.startsWith('rw') && real(b.path) === want))?.mountpoint;
}

export async function unmountLayer(store: LayerStore, id: string): Promise<void> {
  if (!store.isMounted(id)) throw storeErr('EINVAL', `${id.slice(0, 12)} is not mounted`);
  await stopMount(store.paths.mnt(id));
}

export function register(program: Command): void {
  const c = program
    .command('container')
    .description('manage containers: a writable layer over an image, mounted with the AUFS branch string')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  id=$(layerfs container create base)      # new writable layer over image base\n' +
        '  layerfs container mount $id              # prints the mount point (<root>/mnt/<id>)\n' +
        '  echo hi > /var/lib/layerfs/mnt/$id/hello\n' +
        '  layerfs container diff $id               # A /hello\n' +
        '  layerfs container umount $id\n' +
        '  layerfs container commit $id base:v2     # a new read-only layer, named base:v2\n' +
        '  layerfs container rm $id',
    );

  withRoot(c.command('create').description('create a container over IMAGE; prints its id').argument('<image>', 'image name or layer id')).action(
    async (image: string, flags: RootFlags) => {
      const meta = await openStore(flags).createContainer(image);
      process.stdout.write(`${meta.id}\n`);
    },
  );

  withRoot(
    c
      .command('mount')
      .description("mount a container (its layer rw, the image's layers ro) at <root>/mnt/<id>; prints the mount point")
      .argument('<container>')
      .option('-d, --debug', 'the daemon traces requests to its log'),
  ).action(async (ref: string, flags: RootFlags & { debug?: boolean }) => {
    const store = openStore(flags);
    try {
      const id = container(store, ref);
      process.stdout.write(`${await mountLayer(store, id, flags.debug ?? false)}\n`);
    } catch (e) {
      throw new CliError(`container mount ${ref}`, e);
    }
  });

  withRoot(c.command('umount').alias('unmount').description('unmount a container').argument('<container>')).action(async (ref: string, flags: RootFlags) => {
    const store = openStore(flags);
    try {
      await unmountLayer(store, store.resolve(ref));
    } catch (e) {
      throw new CliError(`container umount ${ref}`, e);
    }
  });

  withRoot(c.command('rm').alias('remove').description('remove a container (refused while mounted)').argument('<container...>')).action(
    async (refs: string[], flags: RootFlags) => {
      const store = openStore(flags);
      for (const r of refs) {
        try {
          await store.remove(container(store, r));
        } catch (e) {
          throw new CliError(`container rm ${r}`, e);
        }
        process.stdout.write(`${r}\n`);
      }
    },
  );

  withRoot(c.command('diff').description('changes of a container: A added, C changed, D deleted (like docker diff)').argument('<container>')).action(
    (ref: string, flags: RootFlags) => {
      const store = openStore(flags);
      process.stdout.write(formatChanges(store.diff(container(store, ref))));
    },
  );

  withRoot(
    c
      .command('commit')
      .description("commit a container's changes as a new read-only layer (a reflink/copy_file_range copy of its rw dir; DiffID from its tar); refused while mounted; prints the layer id")
      .argument('<container>')
      .argument('[image]', 'image name for the new layer')
      .option('--squash', "one base layer with the container's whole merged view (image and changes) instead of a layer on the image"),
  ).action(async (ref: string, image: string | undefined, flags: RootFlags & { squash?: boolean }) => {
    const store = openStore(flags);
    const bar = progress('commit', undefined);
    try {
      const meta = await store.commit(ref, {
        ...(image !== undefined ? { name: image } : {}),
        ...(flags.squash ? { squash: true } : {}),
        onBytes: (n) => bar.update(n),
        mountedAt: mountedRw,
      });
      bar.stop();
      process.stdout.write(`${meta.id}\n`);
    } catch (e) {
      throw new CliError(`container commit ${ref}`, e);
    } finally {
      bar.stop();
    }
  });

  withRoot(c.command('ls').alias('list').description('list containers: id, image layer, size, mounted')).action((flags: RootFlags) => {
    const store = openStore(flags);
    const images = store.images();
    for (const m of store.list().filter((l) => l.kind === 'container')) {
      const parent = m.parent ?? '';
      const name = Object.entries(images).find(([, e]) => e.layer === parent)?.[0] ?? parent.slice(0, 12);
      process.stdout.write(`${m.id.slice(0, 12)}  ${name}  ${human(store.liveSize(m.id))}  ${store.isMounted(m.id) ? 'mounted' : '-'}\n`);
    }
  });
}
