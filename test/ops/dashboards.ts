/** The dashboards of docker/grafana/dashboards and their queries, for the dashboard and Prometheus tests. */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const DASHBOARD_DIR = resolve('docker/grafana/dashboards');

export interface DashboardJson {
  uid: string;
  title: string;
  templating?: { list?: Array<{ name: string; query?: unknown; datasource?: { uid?: string } }> };
  panels?: PanelJson[];
}
export interface PanelJson {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Array<{ refId: string; expr: string; datasource?: { uid?: string } }>;
  panels?: PanelJson[];
}

export interface PanelQuery {
  file: string;
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
}

export function dashboardFiles(): string[] {
  return readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith('.json')).sort();
}

export function loadDashboard(file: string): DashboardJson {
  return JSON.parse(readFileSync(join(DASHBOARD_DIR, file), 'utf8')) as DashboardJson;
}

/** Every panel, rows' children included. */
export function panelsOf(d: DashboardJson): PanelJson[] {
  return (d.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every target expression of every panel of every dashboard. */
export function panelQueries(): PanelQuery[] {
  return dashboardFiles().flatMap((file) => {
    const d = loadDashboard(file);
    return panelsOf(d).flatMap((p) => (p.targets ?? []).map((t) => ({ file, dashboard: d.title, panel: p.title, refId: t.refId, expr: t.expr })));
  });
}

/**
 * A query as Grafana sends it with every variable at "All" (`.*`) and its interval macros over a
 * short test run: `$__rate_interval` 1m, `$__range` 10m, `$__interval` 15s.
 */
export function substitute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__range', '10m')
    .replaceAll('$__interval', '15s')
    .replace(/\$\{?([a-zA-Z_][a-zA-Z0-9_]*)\}?/g, '.*');
}
