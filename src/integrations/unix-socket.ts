/** Unix sockets the integrations listen on. */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { FsError, isCode } from '../errors/index.js';

/** Refuses to take over a socket another process still answers on; removes a stale one. */
export async function clearStaleSocket(path: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch (e) {
    if (isCode(e, 'ENOENT')) return;
    throw e;
  }
  if (!st.isSocket()) throw new FsError('EEXIST', 'listen', path, undefined, 'exists and is not a socket');
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new FsError('EADDRINUSE', 'listen', path, undefined, 'another process serves this socket');
  fs.unlinkSync(path);
}
