/**
 * Runs a list of file operations in a python3 child, optionally as another user (setpriv), and returns
 * one result per operation: 'ok', a value, or the errno name. Used for permission checks through a
 * mount (the test process is root) and for mmap, which node:fs lacks.
 */
import { spawnSync } from 'node:child_process';

export type ProbeOp =
  | ['read', string]
  | ['write', string, string]
  | ['append', string, string]
  | ['create', string, number]
  | ['unlink', string]
  | ['rename', string, string]
  | ['mkdir', string, number]
  | ['rmdir', string]
  | ['stat', string]
  | ['chmod', string, number]
  | ['utime_now', string]
  | ['mmap_read', string]
  | ['mmap_write', string, number, string];

export type ProbeResult = string | number | Record<string, number> | null;

const SCRIPT = String.raw`
import errno, json, mmap, os, sys
out = []
for op in json.loads(sys.argv[1]):
    k = op[0]
    try:
        if k == 'read':
            with open(op[1], 'rb') as f: r = f.read().decode('latin1')
        elif k == 'write':
            fd = os.open(op[1], os.O_WRONLY); os.write(fd, op[2].encode()); os.close(fd); r = 'ok'
        elif k == 'append':
            fd = os.open(op[1], os.O_WRONLY | os.O_APPEND); os.write(fd, op[2].encode()); os.close(fd); r = 'ok'
        elif k == 'create':
            fd = os.open(op[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, op[2]); os.close(fd); r = 'ok'
        elif k == 'unlink': os.unlink(op[1]); r = 'ok'
        elif k == 'rename': os.rename(op[1], op[2]); r = 'ok'
        elif k == 'mkdir': os.mkdir(op[1], op[2]); r = 'ok'
        elif k == 'rmdir': os.rmdir(op[1]); r = 'ok'
        elif k == 'chmod': os.chmod(op[1], op[2]); r = 'ok'
        elif k == 'utime_now': os.utime(op[1], None); r = 'ok'
        elif k == 'stat':
            s = os.lstat(op[1]); r = {'uid': s.st_uid, 'gid': s.st_gid, 'mode': s.st_mode, 'size': s.st_size}
        elif k == 'mmap_read':
            with open(op[1], 'rb') as f:
                m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); r = m[:].decode('latin1'); m.close()
        elif k == 'mmap_write':
            with open(op[1], 'r+b') as f:
                m = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
                data = op[3].encode(); m[op[2]:op[2] + len(data)] = data; m.flush(); m.close()
            r = 'ok'
        else:
            r = 'bad op ' + k
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    out.append(r)
print(json.dumps(out))
`;

/** Run `ops` with python3; as `uid`/`gid` (no supplementary groups) when given. */
export function probe(ops: ProbeOp[], as?: { uid: number; gid: number }): ProbeResult[] {
  const py = ['/usr/bin/python3', '-c', SCRIPT, JSON.stringify(ops)];
  const argv = as ? ['setpriv', `--reuid=${as.uid}`, `--regid=${as.gid}`, '--clear-groups', ...py] : py;
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`probe failed (${r.status ?? r.signal}): ${r.stderr}${r.error ? String(r.error) : ''}`);
  return JSON.parse(r.stdout) as ProbeResult[];
}
