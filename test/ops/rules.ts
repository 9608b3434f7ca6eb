/** The alert rules of docker/prometheus/alerts.yml, for the promtool, dashboard and Prometheus tests. */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

export const PROMETHEUS_DIR = resolve('docker/prometheus');

export interface AlertRule {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function alertRules(): AlertRule[] {
  const file = parse(readFileSync(join(PROMETHEUS_DIR, 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: AlertRule[] }> };
  return file.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);
}

/**
 * The expression without its comparisons against numbers (`> 1000`, `== 1`, `> bool 0`): what
 * must return series on a running product for the alert to mean anything there.
 */
export function withoutThresholds(expr: string): string {
  return expr.replace(/\s*(>=|<=|==|!=|>|<)\s*(bool\s+)?-?[0-9][0-9.e+]*/g, '');
}
