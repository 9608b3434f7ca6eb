/**
 * The Grafana dashboards checked with what Grafana publishes (no Grafana runs here): each JSON is
 * type-checked against the `Dashboard` type of @grafana/schema (the major version of the Grafana
 * the compose file runs) by the TypeScript compiler, and a broken dashboard fails that check.
 * Plus what the type cannot say: one data source (the provisioned one), unique panel ids, a
 * query per panel, provisioning files that point where the compose file mounts them, and every
 * metric a query or an alert names documented in docs/metrics.md.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { dashboardFiles, DASHBOARD_DIR, loadDashboard, panelQueries, panelsOf } from './dashboards.ts';
import { alertRules } from './rules.ts';

const ROOT = resolve('.');
const schemaVersion = (JSON.parse(readFileSync(join(ROOT, 'node_modules/@grafana/schema/package.json'), 'utf8')) as { version: string }).version;

/** Compiles one `const d: Dashboard = <json>` per file with tsc; the errors by file. */
function typeCheck(files: Record<string, string>): { status: number | null; output: string; errorsIn: (name: string) => string[] } {
  // Inside the project, so `@grafana/schema` resolves from its node_modules.
  const cache = join(ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, 'dashboards-'));
  try {
    for (const [name, json] of Object.entries(files)) {
      writeFileSync(join(dir, `${name}.ts`), `import type { Dashboard } from '@grafana/schema';\nexport const dashboard: Dashboard = ${json};\n`);
    }
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', skipLibCheck: true, types: [] },
      files: Object.keys(files).map((n) => `${n}.ts`),
    }));
    const r = spawnSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.json'), '--pretty', 'false'], { encoding: 'utf8', timeout: 120_000 });
    const output = r.stdout + r.stderr;
    return { status: r.status, output, errorsIn: (name) => output.split('\n').filter((l) => l.startsWith(`${name}.ts(`) || l.includes(`/${name}.ts(`)) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe(`docker/grafana: dashboards against @grafana/schema ${schemaVersion}`, function () {
  this.timeout(180_000);
  const files = dashboardFiles();

  it('has the dashboards of the issue', () => {
    expect(files).to.have.members(['collector.json', 'delivery.json', 'funnel.json', 'lag.json', 'pages.json', 'streams.json']);
    expect(schemaVersion.split('.')[0]).to.equal('13');
  });

  it('every dashboard type-checks as a Dashboard; a broken one does not', () => {
    const sources: Record<string, string> = {};
    for (const f of files) sources[f.replace(/\.json$/, '').replace(/\W/g, '_')] = readFileSync(join(DASHBOARD_DIR, f), 'utf8');
    // The same dashboard twice broken: a panel whose gridPos is a string; a misspelt top-level key.
    const lag = (): Record<string, unknown> & { panels: Array<Record<string, unknown>> } => JSON.parse(readFileSync(join(DASHBOARD_DIR, 'lag.json'), 'utf8')) as Record<string, unknown> & { panels: Array<Record<string, unknown>> };
    const badGrid = lag();
    badGrid.panels[1]!.gridPos = 'top-left';
    const badKey = lag();
    badKey.refersh = '10s';
    sources.broken_grid = JSON.stringify(badGrid);
    sources.broken_key = JSON.stringify(badKey);
    const result = typeCheck(sources);
    for (const name of Object.keys(sources).filter((n) => !n.startsWith('broken'))) expect(result.errorsIn(name), result.output).to.deep.equal([]);
    expect(result.status).to.not.equal(0);
    expect(result.errorsIn('broken_grid').join('\n'), result.output).to.match(/gridPos|GridPos/);
    expect(result.errorsIn('broken_key').join('\n'), result.output).to.include('refersh');
  });

  it('panels use the provisioned Prometheus, have unique ids and a query each', () => {
    const provisioned = parse(readFileSync(resolve('docker/grafana/provisioning/datasources/prometheus.yaml'), 'utf8')) as { datasources: Array<{ uid: string; type: string; url: string }> };
    expect(provisioned.datasources[0]).to.include({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' });
    const uids = new Set<string>();
    for (const f of files) {
      const d = loadDashboard(f);
      expect(uids.has(d.uid), `uid ${d.uid} twice`).to.equal(false);
      uids.add(d.uid);
      const panels = panelsOf(d);
      expect(new Set(panels.map((p) => p.id)).size, `${f}: panel ids`).to.equal(panels.length);
      for (const p of panels.filter((x) => x.type !== 'row')) {
        expect(p.datasource?.uid, `${f} ${p.title}`).to.equal('prometheus');
        expect((p.targets ?? []).length, `${f} ${p.title}: no query`).to.be.greaterThan(0);
        for (const t of p.targets ?? []) expect(t.expr.trim(), `${f} ${p.title}`).to.not.equal('');
      }
      for (const v of d.templating?.list ?? []) expect(v.datasource?.uid, `${f} variable ${v.name}`).to.equal('prometheus');
    }
    const providers = parse(readFileSync(resolve('docker/grafana/provisioning/dashboards/tagstream.yaml'), 'utf8')) as { providers: Array<{ type: string; options: { path: string } }> };
    expect(providers.providers[0]).to.deep.include({ type: 'file', options: { path: '/var/lib/grafana/dashboards', foldersFromFilesStructure: false } });
  });

  it('every metric a panel or an alert queries is documented in docs/metrics.md', () => {
    const doc = readFileSync(resolve('docs/metrics.md'), 'utf8');
    const exprs = [...panelQueries().map((q) => q.expr), ...alertRules().map((r) => r.expr)];
    const names = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:tagstream|kafka|kminion|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ''))));
    expect(names.size).to.be.greaterThan(20);
    for (const name of names) expect(doc, `${name} is not in docs/metrics.md`).to.include(`\`${name}`);
  });
});
