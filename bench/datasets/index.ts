/** The data sets, each built once per run on first use, under one root dir. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Sizes } from '../options.js';
import { buildBigFile, type BigFile } from './big-file.js';
import { buildCopyupFiles, type CopyupFiles } from './copyup-files.js';
import { buildLookupStacks, type LookupStacks } from './lookup-layers.js';
import { buildSmallFiles, type SmallFiles } from './small-files.js';
import { buildTree, type Tree } from './tree.js';
import { buildWideDir, type WideDir } from './wide-dir.js';

export class DataSets {
  private readonly built = new Map<string, unknown>();

  constructor(
    private readonly root: string,
    private readonly sizes: Sizes,
    private readonly progress: (msg: string) => void,
  ) {}

  private once<T>(name: string, what: string, build: (dir: string) => T): T {
    if (!this.built.has(name)) {
      this.progress(`building ${what}`);
      const dir = path.join(this.root, name);
      fs.mkdirSync(dir, { recursive: true });
      this.built.set(name, build(dir));
    }
    return this.built.get(name) as T;
  }

  tree(): Tree {
    const n = this.sizes.treeFiles;
    return this.once('t', `the ${n}-file tree in 5 layers`, (d) => buildTree(d, n));
  }

  wide(): WideDir {
    const n = this.sizes.wideNames;
    return this.once('w', `one dir of ${n} names from 10 layers`, (d) => buildWideDir(d, n));
  }

  small(): SmallFiles {
    const n = this.sizes.smallFiles;
    return this.once('s', `${n} small files`, (d) => buildSmallFiles(d, n));
  }

  big(): BigFile {
    const n = this.sizes.bigBytes;
    return this.once('b', `a ${n >> 20} MiB file`, (d) => buildBigFile(d, n));
  }

  copyupFiles(): CopyupFiles {
    const n = this.sizes.copyupFiles;
    return this.once('c', `${n} files of 4 KiB to copy up`, (d) => buildCopyupFiles(d, n, 4096));
  }

  lookup(): LookupStacks {
    const { lookupLayers: counts, lookupNames: names } = this.sizes;
    return this.once('k', `stacks of ${counts.join(', ')} layers`, (d) => buildLookupStacks(d, counts, names));
  }

  /** A file under the data root (lists, tarballs). */
  file(name: string): string {
    return path.join(this.root, name);
  }
}
