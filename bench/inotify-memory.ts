/**
 * Developer probe (not part of `npm run bench`): kernel memory per inotify watch, as udba=notify
 * holds them. Makes N directories, adds a watch on each through sys/inotify.ts and reads the
 * unreclaimable slab (SUnreclaim in /proc/meminfo) before and after; 3 rounds. Other activity on the
 * machine adds noise: compare the rounds.
 *   node dist/bench/inotify-memory.js [N]
 */
import * as fs from 'node:fs';
import { IN_CREATE, IN_DELETE, IN_ONLYDIR, Inotify } from '../src/sys/inotify.js';

const n = Number(process.argv[2] ?? 20000);
const root = fs.mkdtempSync('/tmp/inotify-memory-');
for (let i = 0; i < n; i++) fs.mkdirSync(`${root}/d${i}`);
const unreclaimable = (): number => Number(/^SUnreclaim:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]);
try {
  for (let r = 0; r < 3; r++) {
    const ino = new Inotify();
    const a = unreclaimable();
    for (let i = 0; i < n; i++) ino.add(`${root}/d${i}`, IN_CREATE | IN_DELETE | IN_ONLYDIR);
    const b = unreclaimable();
    ino.close();
    await new Promise((res) => setTimeout(res, 500));
    console.log(JSON.stringify({ round: r, watches: n, slabDeltaKiB: b - a, bytesPerWatch: Math.round(((b - a) * 1024) / n) }));
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
