/**
 * For tests of one branch held by its directory fd (test/branch): a scratch dir with `br/` (the
 * branch) and `out/` (outside it, where a symlink leading out of the branch would land), and the
 * errno code a call ends with.
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** `canary`: a file `out/canary` whose content a test checks is never read or changed. */
export function branchScratch(t: { after(fn: () => void): void }, prefix: string, canary?: string): { root: string; br: string; out: string } {
  const root = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), `layerfs-${prefix}-`)));
  const br = join(root, 'br');
  const out = join(root, 'out');
  fs.mkdirSync(br);
  fs.mkdirSync(out);
  if (canary !== undefined) fs.writeFileSync(join(out, 'canary'), canary);
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  return { root, br, out };
}

/** 'ok', or the code of what `fn` threw ('throw' without one). */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code ?? 'throw';
  }
}
