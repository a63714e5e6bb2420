/** Our per-layer metadata (`meta/<id>.json`) and the image name table (`images.json`). */
import { createHash } from 'node:crypto';

export type LayerKind = 'layer' | 'container';

export interface LayerMeta {
  id: string;
  /** Direct parent layer id, or null for a base layer. */
  parent: string | null;
  kind: LayerKind;
  /** `sha256:` of the uncompressed tar this layer came from (null for containers). */
  diffId: string | null;
  /** OCI ChainID of this layer over its parents (null for containers). */
  chainId: string | null;
  /** Bytes of file content in this layer alone. */
  size: number;
  /** ISO 8601. */
  created: string;
  /** How it was made: `import`, `commit <container>`, `squash <layer>`, `create <image>`. */
  createdBy: string;
}

export interface ImageEntry {
  /** Top layer id. */
  layer: string;
  /** The image config an import brought along (reused on export, diff_ids refreshed). */
  config?: Record<string, unknown>;
}

export type ImageTable = Record<string, ImageEntry>;

/** ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
export function chainIdOf(parentChainId: string | null, diffId: string): string {
  if (parentChainId === null) return diffId;
  return `sha256:${createHash('sha256').update(`${parentChainId} ${diffId}`).digest('hex')}`;
}

export function parseMeta(text: string, id: string): LayerMeta {
  const m = JSON.parse(text) as Partial<LayerMeta>;
  if (m.id !== id || (m.kind !== 'layer' && m.kind !== 'container')) throw new Error(`bad metadata for ${id}`);
  return {
    id,
    parent: typeof m.parent === 'string' ? m.parent : null,
    kind: m.kind,
    diffId: typeof m.diffId === 'string' ? m.diffId : null,
    chainId: typeof m.chainId === 'string' ? m.chainId : null,
    size: typeof m.size === 'number' ? m.size : 0,
    created: typeof m.created === 'string' ? m.created : '',
    createdBy: typeof m.createdBy === 'string' ? m.createdBy : '',
  };
}
