/**
 * containerd's filter expressions, as List passes them (`ctr snapshots ls` sends none; clients
 * may): `name==foo`, `parent!=""`, `kind==committed`, `labels."containerd.io/gc.root"`,
 * `labels.a~=^x`. Terms joined by `,` must all hold; a snapshot is listed when any one of the
 * request's filters holds (none: every snapshot).
 *
 *   filter    := term ( ',' term )*
 *   term      := fieldpath ( op value )?      (no op: the field is present and not empty)
 *   fieldpath := field ( '.' field )*          (field: [A-Za-z0-9_/-]+ or a "quoted" string)
 *   op        := '==' | '!=' | '~='            (~=: the value is a regular expression)
 *   value     := "quoted" | /regexp/ | bare    (bare: up to the next ',')
 * Fields of a snapshot: name, parent, kind, labels.KEY (KEY: the rest of the path joined by '.').
 */
export type Fields = (path: readonly string[]) => string | undefined;

type Op = '==' | '!=' | '~=';
interface Term {
  path: string[];
  op?: Op;
  value?: string;
  re?: RegExp;
}

export class FilterError extends Error {}

function unquote(s: string, at: number, filter: string): [string, number] {
  const q = s[at]!;
  let out = '';
  let i = at + 1;
  for (; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      const n = s[++i]!;
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n;
    } else if (c === q) return [out, i + 1];
    else out += c;
  }
  throw new FilterError(`unterminated quote in filter ${JSON.stringify(filter)}`);
}

function parse(filter: string): Term[] {
  const terms: Term[] = [];
  let i = 0;
  const s = filter;
  const bad = (why: string): never => {
    throw new FilterError(`invalid filter ${JSON.stringify(filter)}: ${why}`);
  };
  const skipSpace = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  for (;;) {
    skipSpace();
    const term: Term = { path: [] };
    for (;;) {
      skipSpace();
      if (s[i] === '"' || s[i] === '`') {
        const [v, j] = unquote(s, i, filter);
        term.path.push(v);
        i = j;
      } else {
        const m = /^[A-Za-z0-9_/-]+/.exec(s.slice(i));
        if (!m) bad(`expected a field name at offset ${i}`);
        term.path.push(m![0]);
        i += m![0].length;
      }
      if (s[i] !== '.') break;
      i++;
    }
    skipSpace();
    const op = s.slice(i, i + 2);
    if (op === '==' || op === '!=' || op === '~=') {
      term.op = op;
      i += 2;
      skipSpace();
      if (s[i] === '"' || s[i] === '`' || (s[i] === '/' && op === '~=')) {
        const [v, j] = unquote(s, i, filter);
        term.value = v;
        i = j;
      } else {
        const m = /^[^,]*/.exec(s.slice(i))!;
        term.value = m[0].trimEnd();
        i += m[0].length;
      }
      if (op === '~=') {
        try {
          term.re = new RegExp(term.value);
        } catch {
          bad(`bad regular expression ${JSON.stringify(term.value)}`);
        }
      }
    }
    terms.push(term);
    skipSpace();
    if (i >= s.length) return terms;
    if (s[i] !== ',') bad(`unexpected ${JSON.stringify(s[i])} at offset ${i}`);
    i++;
  }
}

function holds(t: Term, fields: Fields): boolean {
  const v = fields(t.path);
  if (t.op === undefined) return v !== undefined && v !== '';
  if (t.op === '==') return v === t.value;
  if (t.op === '!=') return v !== t.value;
  return v !== undefined && t.re!.test(v);
}

/** A predicate for `filters` (any one holding); throws FilterError on a malformed one. */
export function compileFilters(filters: readonly string[]): (fields: Fields) => boolean {
  const parsed = filters.filter((f) => f.trim() !== '').map(parse);
  if (parsed.length === 0) return () => true;
  return (fields) => parsed.some((terms) => terms.every((t) => holds(t, fields)));
}
