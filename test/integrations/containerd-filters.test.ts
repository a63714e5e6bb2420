/** containerd filter expressions as List takes them (pure: no server). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilters } from '../../src/integrations/containerd-filters.js';

const snap = (name: string, kind: string, parent: string, labels: Record<string, string>) => (p: readonly string[]): string | undefined => {
  const [f, ...rest] = p;
  if (f === 'name' && rest.length === 0) return name;
  if (f === 'kind' && rest.length === 0) return kind;
  if (f === 'parent' && rest.length === 0) return parent;
  if (f === 'labels' && rest.length > 0) return labels[rest.join('.')];
  return undefined;
};

const a = snap('default/1/sha256:aa', 'committed', '', { 'containerd.io/gc.root': 't', team: 'x' });
const b = snap('default/2/c1', 'active', 'default/1/sha256:aa', {});

test('filters: operators, quoting, AND within a filter, OR across filters', () => {
  const cases: [string[], boolean, boolean][] = [
    [[], true, true],
    [[''], true, true],
    [['kind==committed'], true, false],
    [['kind!=committed'], false, true],
    [['parent'], false, true],
    [['labels."containerd.io/gc.root"'], true, false],
    [['labels.containerd.io/gc.root==t'], true, false],
    [['labels.team=="x"'], true, false],
    [['name~=c[0-9]$'], false, true],
    [['name~=/sha256:/'], true, false],
    [['kind==committed,labels.team==y'], false, false],
    [['kind==committed, labels.team==x'], true, false],
    [['kind==committed', 'kind==active'], true, true],
  ];
  for (const [f, wa, wb] of cases) {
    const m = compileFilters(f);
    assert.equal(m(a), wa, `${JSON.stringify(f)} on a`);
    assert.equal(m(b), wb, `${JSON.stringify(f)} on b`);
  }
});

test('filters: malformed ones are refused with one line naming the filter', () => {
  for (const [f, re] of [
    ['kind==committed,', /expected a field name/],
    ['labels."open', /unterminated quote/],
    ['name~=(', /bad regular expression/],
    ['==x', /expected a field name at offset 0/],
    ['name x', /unexpected "x"/],
  ] as const) {
    assert.throws(() => compileFilters([f]), (e: Error) => re.test(e.message) && e.message.includes(JSON.stringify(f)) && !e.message.includes('\n'), f);
  }
});
