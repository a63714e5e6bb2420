/**
 * The Mounter the integrations hand to the store's LayerDriver: one detached layerfs mount daemon
 * per union (fuse/startMount), stopped by unmounting (fuse/stopMount). When the resident daemon
 * lands, only this file changes.
 */
import { startMount, stopMount } from '../fuse/index.js';
import type { Mounter } from '../store/layer-driver.js';

export const fuseMounter: Mounter = {
  async mount(options: string, mountpoint: string): Promise<void> {
    await startMount({ options, mountpoint, source: 'layerfs' });
  },
  async unmount(mountpoint: string): Promise<void> {
    await stopMount(mountpoint);
  },
};
