/**
 * format: layerfs's on-disk format, names and predicates only (no file access). Engine, store and
 * cli read whiteouts, opaque markers and private names through this one module.
 */
export * from './names.js';
