/**
 * The topology folder's import rules (HOUSE.md "Arrows"): topology/ imports core/ and state/ only,
 * its files form no cycle, and the built-topology model stays below the DSL (describe.ts and
 * validate.ts read model.ts, never dsl.ts). Type-only imports count: a cycle of types is still a
 * knot a reader has to untie.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const root = fileURLToPath(new URL('../../', import.meta.url));
const topologyDir = join(root, 'topology');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** Project-relative paths of the relative imports and re-exports of `file`. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/^\s*(?:import|export)\s[^'";]*?from\s+'(\.[^']+)'/gms)].map((m) => m[1] as string);
  return specs.map((s) => relative(root, resolve(dirname(file), s)));
}

const graph = new Map(tsFiles(topologyDir).map((f) => [relative(root, f), importsOf(f)]));

describe('topology: import rules', () => {
  it('topology/ imports only core/, state/ and itself', () => {
    for (const [file, deps] of graph) {
      for (const dep of deps) expect(dep, `${file} imports ${dep}`).to.match(/^(core|state|topology)\//);
    }
  });

  it('describe.ts and validate.ts depend on the model, not on the DSL; model.ts on nothing but serde types', () => {
    const local = (file: string): string[] => (graph.get(file) ?? []).filter((d) => d.startsWith('topology/'));
    expect(local('topology/describe.ts')).to.deep.equal(['topology/model.ts']);
    expect(local('topology/validate.ts')).to.deep.equal(['topology/model.ts']);
    expect(local('topology/model.ts')).to.deep.equal(['topology/serde.ts']);
  });

  it('no import cycle between topology files', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'visiting');
      for (const dep of graph.get(file) ?? []) if (graph.has(dep)) visit(dep, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).to.deep.equal([]);
  });
});
