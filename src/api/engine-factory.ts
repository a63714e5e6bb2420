/** Build an engine from a mount option string or parsed options. */
import { Union, parseOptions } from '../engine/index.js';
import type { UnionOptions } from '../engine/types.js';
import type { Engine } from './resolve.js';

export function createEngine(options: string | UnionOptions): Engine {
  return new Union(typeof options === 'string' ? parseOptions(options) : options);
}
