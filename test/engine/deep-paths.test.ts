import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ctx, O_RDWR, setup, throwsCode } from './fixture.js';

const SEG = 'd'.repeat(200);

/** mkdir -p of `depth` 200-byte dirs under `root` + a file, using chdir (host paths pass PATH_MAX). */
function buildDeep(root: string, depth: number, file: string, content: string): void {
  const cwd = process.cwd();
  try {
    process.chdir(root);
    for (let i = 0; i < depth; i++) {
      fs.mkdirSync(SEG);
      process.chdir(SEG);
    }
    fs.writeFileSync(file, content);
  } finally {
    process.chdir(cwd);
  }
}

test('union paths near PATH_MAX work even when branch host paths are longer', (t) => {
  const f = setup(t, { up: {}, low: {} });
  const depth = 19; // 19 * 201 = 3819 bytes of dirs
  buildDeep(f.br.low!, depth, 'f'.repeat(200), 'deep data');
  let n = f.u.root;
  for (let i = 0; i < depth; i++) n = f.u.lookup(n, SEG);
  const leaf = f.u.lookup(n, 'f'.repeat(200));
  assert.equal(f.u.getattr(leaf).size, 9);
  const fh = f.u.open(leaf, O_RDWR, ctx); // copies up the whole chain
  f.u.write(fh, Buffer.from('DEEP'), 0, 4, 0);
  f.u.release(fh);
  const b = Buffer.alloc(20);
  const rfh = f.u.open(leaf, 0, ctx);
  assert.equal(b.subarray(0, f.u.read(rfh, b, 0, 20, 0)).toString(), 'DEEP data');
  f.u.release(rfh);
  f.u.unlink(n, 'f'.repeat(200));
  assert.deepEqual(f.u.readdir(n), []);
  f.u.mkdir(n, 'x', 0o755, ctx);
  f.u.rename(n, 'x', n, 'y', 0);
  assert.deepEqual(f.u.readdir(n).map((e) => e.name), ['y']);
  throwsCode(() => f.u.lookup(n, 'z'), 'ENOENT');
  // the lower copy is untouched
  const cwd = process.cwd();
  try {
    process.chdir(f.br.low!);
    for (let i = 0; i < depth; i++) process.chdir(SEG);
    assert.equal(fs.readFileSync('f'.repeat(200), 'utf8'), 'deep data');
  } finally {
    process.chdir(cwd);
  }
});
