/**
 * Enforces design.md's import arrows on src/: reads every import/export-from/dynamic import of
 * every src/**\/*.ts file and fails, naming file and line, on an arrow the design forbids or on a
 * cycle between areas.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'); // dist/test -> repo
const SRC = join(ROOT, 'src');

/** Which areas each area may import (besides itself). `index` is src/index.ts, the package entry. */
const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  util: [],
  sys: ['errors', 'util'],
  /** The on-disk format: whiteout, opaque-marker and private names and their predicates (no file access). */
  format: ['sys', 'errors', 'util'],
  branch: ['sys', 'errors', 'util'],
  engine: ['format', 'branch', 'sys', 'errors', 'util'],
  fuse: ['engine', 'branch', 'sys', 'errors', 'util'],
  api: ['engine', 'branch', 'sys', 'errors', 'util'],
  store: ['format', 'engine', 'branch', 'sys', 'errors', 'util'],
  /** The resident daemon serving every mount, its client and supervisor (process model over fuse). */
  daemon: ['fuse', 'engine', 'branch', 'sys', 'errors', 'util'],
  /** OCI distribution client: push/pull between the store and a registry. */
  registry: ['store', 'format', 'engine', 'branch', 'sys', 'errors', 'util'],
  /** Container engines' storage protocols (Docker graphdriver plugin, containerd snapshotter). */
  integrations: ['daemon', 'registry', 'store', 'fuse', 'format', 'engine', 'branch', 'sys', 'errors', 'util'],
  cli: ['integrations', 'registry', 'daemon', 'store', 'fuse', 'api', 'format', 'engine', 'branch', 'sys', 'errors', 'util'],
  index: ['api', 'store', 'engine', 'branch', 'sys', 'errors', 'util', 'fuse'],
};

export interface ImportLine {
  file: string; // relative to repo root
  line: number;
  spec: string;
  typeOnly: boolean;
}

/** Blank out comments, keeping line numbers, so examples in doc comments are not imports. */
function stripComments(src: string): string {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' '))
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, (_m, pre: string) => pre);
}

const PATTERNS = [
  /(?:^|[;\s])(?:import|export)\s+(type\s+)?[^;'"`]*?\bfrom\s*['"]([^'"]+)['"]/g, // import x from / export * from
  /(?:^|[;\s])import\s*()['"]([^'"]+)['"]/g, // side-effect import
  /\bimport\s*\(\s*()['"]([^'"]+)['"]\s*\)/g, // dynamic import
];

export function importsOf(file: string, text: string): ImportLine[] {
  const code = stripComments(text);
  const out: ImportLine[] = [];
  for (const re of PATTERNS) {
    for (const m of code.matchAll(re)) {
      const at = (m.index ?? 0) + m[0].length - m[2]!.length - 1;
      out.push({ file, line: code.slice(0, at).split('\n').length, spec: m[2]!, typeOnly: Boolean(m[1]) });
    }
  }
  return out.sort((a, b) => a.line - b.line);
}

/** Area of a path relative to src/ ('engine/union.ts' -> 'engine', 'index.ts' -> 'index'). */
export function areaOf(relToSrc: string): string {
  const parts = relToSrc.split(sep).join('/').split('/');
  return parts.length === 1 ? parts[0]!.replace(/\.(ts|js)$/, '') : parts[0]!;
}

export interface Violation {
  where: string;
  why: string;
}

/** Check a set of files (path relative to src/ -> source text). */
export function check(files: ReadonlyMap<string, string>): { violations: Violation[]; edges: number } {
  const violations: Violation[] = [];
  const graph = new Map<string, Map<string, string>>(); // area -> imported area -> first place
  let edges = 0;
  for (const [rel, text] of files) {
    const from = areaOf(rel);
    if (!ALLOWED[from]) {
      violations.push({ where: `src/${rel}`, why: `unknown area '${from}': add it to ALLOWED in test/layering.test.ts` });
      continue;
    }
    for (const imp of importsOf(`src/${rel}`, text)) {
      if (!imp.spec.startsWith('.')) continue; // node: builtins and packages
      const target = relative('/src', resolve('/src', dirname(rel), imp.spec));
      const where = `${imp.file}:${imp.line}: '${imp.spec}'`;
      if (target.startsWith('..')) {
        violations.push({ where, why: 'imports from outside src/' });
        continue;
      }
      const to = areaOf(target);
      edges++;
      if (to === from) continue;
      if (to === 'cli') violations.push({ where, why: `${from} imports cli (nothing may import cli)` });
      else if (!ALLOWED[from]!.includes(to)) violations.push({ where, why: `${from} may not import ${to}` });
      if (!graph.has(from)) graph.set(from, new Map());
      if (!graph.get(from)!.has(to)) graph.get(from)!.set(to, where);
    }
  }
  // cycles between areas
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const visit = (a: string): void => {
    state.set(a, 'active');
    stack.push(a);
    for (const [b, where] of graph.get(a) ?? []) {
      if (state.get(b) === 'active') {
        const cycle = [...stack.slice(stack.indexOf(b)), b].join(' -> ');
        violations.push({ where, why: `import cycle between areas: ${cycle}` });
      } else if (!state.has(b)) visit(b);
    }
    stack.pop();
    state.set(a, 'done');
  };
  for (const a of graph.keys()) if (!state.has(a)) visit(a);
  return { violations, edges };
}

function srcFiles(dir: string, out: Map<string, string>): Map<string, string> {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) srcFiles(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.set(relative(SRC, p), readFileSync(p, 'utf8'));
  }
  return out;
}

test('src/ follows the import arrows of design.md, with no cycles between areas', () => {
  const files = srcFiles(SRC, new Map());
  assert.ok(files.size > 10, `expected the src tree, found ${files.size} files under ${SRC}`);
  const { violations, edges } = check(files);
  assert.ok(edges > 10, `found only ${edges} relative imports: the import reader is broken`);
  assert.equal(violations.length, 0, '\n' + violations.map((v) => `${v.where}: ${v.why}`).join('\n'));
});

test('the checker catches forbidden arrows, imports of cli, cycles, and every import form', () => {
  const files = new Map<string, string>([
    ['engine/union.ts', "import { x } from '../fuse/ops.js';\n"],
    ['store/a.ts', "// import { y } from '../cli/main.js';\nexport * from '../cli/main.js';\n"],
    ['api/b.ts', "const m = await import('../store/a.js');\n/* import '../fuse/x.js' */\n"],
    ['errors/c.ts', "import {\n  a,\n  b,\n} from '../util/d.js';\n"],
    ['util/d.ts', "import '../errors/c.js';\n"],
    ['cli/main.ts', "import { UnionFS } from '../api/index.js';\nimport * as fs from 'node:fs';\n"],
    ['branch/e.ts', "import type { UnionOptions } from '../engine/types.js';\nimport { parseOptions } from '../engine/types.js';\n"],
  ]);
  const { violations } = check(files);
  const lines = violations.map((v) => `${v.where}: ${v.why}`);
  assert.ok(lines.some((l) => l.startsWith("src/engine/union.ts:1: '../fuse/ops.js': engine may not import fuse")), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith("src/store/a.ts:2: '../cli/main.js': store imports cli")), lines.join('\n'));
  assert.ok(!lines.some((l) => l.startsWith('src/store/a.ts:1')), 'a commented-out import was counted');
  assert.ok(lines.some((l) => l.startsWith("src/api/b.ts:1: '../store/a.js': api may not import store")), lines.join('\n'));
  assert.ok(!lines.some((l) => l.startsWith('src/api/b.ts:2')), 'an import inside a block comment was counted');
  assert.ok(lines.some((l) => l.startsWith("src/errors/c.ts:4: '../util/d.js': errors may not import util")), lines.join('\n'));
  assert.ok(lines.some((l) => l.includes('import cycle between areas: ')), lines.join('\n'));
  assert.ok(!lines.some((l) => l.startsWith('src/cli/')), 'cli may import api');
  assert.ok(lines.some((l) => l.startsWith("src/branch/e.ts:1: '../engine/types.js': branch may not import engine")), 'an import type is an arrow too');
  assert.ok(lines.some((l) => l.startsWith("src/branch/e.ts:2: '../engine/types.js': branch may not import engine")), lines.join('\n'));
});
