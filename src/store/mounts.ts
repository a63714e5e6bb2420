/** Which store directories are mount points right now (from /proc/self/mountinfo). */
import * as fs from 'node:fs';

function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points currently mounted (absolute paths). */
export function mountPoints(): Set<string> {
  const out = new Set<string>();
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length > 4) out.add(unescapeMountPath(f[4]!));
  }
  return out;
}

export function isMountPoint(dir: string): boolean {
  let real = dir;
  try {
    real = fs.realpathSync(dir);
  } catch {
    return false;
  }
  return mountPoints().has(real);
}
