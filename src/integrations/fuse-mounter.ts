/**
 * The Mounter the integrations hand to the store's LayerDriver: each union is a mount of the
 * resident daemon (daemon/startMount), stopped by unmounting (daemon/stopMount).
 */
import { startMount, stopMount } from '../daemon/index.js';
import type { Mounter } from '../store/layer-driver.js';

export const fuseMounter: Mounter = {
  async mount(options: string, mountpoint: string): Promise<void> {
    await startMount({ options, mountpoint, source: 'layerfs' });
  },
  async unmount(mountpoint: string): Promise<void> {
    await stopMount(mountpoint);
  },
};
