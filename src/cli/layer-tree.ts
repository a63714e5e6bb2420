/** `layer ls` as a tree: parents above their children, with kind, size and image names. */
import type { ImageTable, LayerMeta } from '../store/meta.js';
import { human } from './progress.js';

export function formatTree(layers: LayerMeta[], images: ImageTable): string {
  const names = new Map<string, string[]>();
  for (const [n, e] of Object.entries(images)) names.set(e.layer, [...(names.get(e.layer) ?? []), n]);
  const ids = new Set(layers.map((l) => l.id));
  const kids = new Map<string | null, LayerMeta[]>();
  for (const l of layers) {
    const p = l.parent !== null && ids.has(l.parent) ? l.parent : null;
    kids.set(p, [...(kids.get(p) ?? []), l]);
  }
  const lines: string[] = [];
  const walk = (parent: string | null, indent: string): void => {
    const list = kids.get(parent) ?? [];
    list.forEach((l, i) => {
      const last = i === list.length - 1;
      const n = names.get(l.id);
      const label = `${l.id.slice(0, 12)} ${l.kind === 'container' ? 'container' : 'layer'} ${human(l.size)}${n ? ` ${n.sort().join(', ')}` : ''}`;
      lines.push(`${indent}${last ? '└─ ' : '├─ '}${label}`);
      walk(l.id, indent + (last ? '   ' : '│  '));
    });
  };
  walk(null, '');
  return lines.map((l) => l + '\n').join('');
}
