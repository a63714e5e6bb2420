import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

// The addon is context-aware: it must load (again) and work inside worker threads,
// as the FUSE transport serves requests from one.
test('the addon loads and works inside worker_threads', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerfs-sysw-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const nativeUrl = new URL('../../src/sys/native.js', import.meta.url).href;
  const script = path.join(dir, 'worker.mjs');
  fs.writeFileSync(
    script,
    `import { parentPort, workerData } from 'node:worker_threads';
const sys = await import(${JSON.stringify(nativeUrl)});
sys.lsetxattr(workerData.file, 'user.w', Buffer.from('from-' + workerData.n), 0);
let code = '';
try { sys.lgetxattr(workerData.file, 'user.none'); } catch (e) { code = e.code; }
parentPort.postMessage({ value: sys.lgetxattr(workerData.file, 'user.w').toString(), code });
`,
  );
  const run = (n: number): Promise<{ value: string; code: string }> => {
    const file = path.join(dir, `f${n}`);
    fs.writeFileSync(file, '');
    return new Promise((resolve, reject) => {
      const w = new Worker(script, { workerData: { file, n } });
      const timer = setTimeout(() => {
        void w.terminate();
        reject(new Error('worker timed out'));
      }, 10_000);
      w.once('message', (m: { value: string; code: string }) => {
        clearTimeout(timer);
        resolve(m);
        void w.terminate();
      });
      w.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  };
  // two workers at once, plus the main thread, each with its own instance
  const [a, b] = await Promise.all([run(1), run(2)]);
  assert.deepEqual(a, { value: 'from-1', code: 'ENODATA' });
  assert.deepEqual(b, { value: 'from-2', code: 'ENODATA' });
  const sys = await import('../../src/sys/index.js');
  assert.equal(sys.lgetxattr(path.join(dir, 'f1'), 'user.w').toString(), 'from-1');
});
