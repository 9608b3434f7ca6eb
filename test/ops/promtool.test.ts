/**
 * The alert rules with Prometheus' own tool (Debian's package, /usr/bin/promtool): the rule file
 * is valid, every alert has a unit test that makes it fire (docker/prometheus/alerts.test.yml),
 * the tests pass, a wrong expectation fails them, and the scrape configuration is valid.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadSettings } from '../../runtime/config.ts';
import { alertRules, PROMETHEUS_DIR, withoutThresholds } from './rules.ts';

const DIR = PROMETHEUS_DIR;
const PROMTOOL = '/usr/bin/promtool';

interface RuleTests {
  rule_files: string[];
  tests: Array<{ name: string; alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
}

const promtool = (...args: string[]) => spawnSync(PROMTOOL, args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });

describe('docker/prometheus: alert rules checked by promtool', function () {
  this.timeout(60_000);

  it('promtool check rules accepts alerts.yml', () => {
    const r = promtool('check', 'rules', 'alerts.yml');
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(new RegExp(`SUCCESS: ${alertRules().length} rules found`));
  });

  it('every alert has a test in alerts.test.yml that expects it to fire', () => {
    const tests = parse(readFileSync(join(DIR, 'alerts.test.yml'), 'utf8')) as RuleTests;
    expect(tests.rule_files).to.deep.equal(['alerts.yml']);
    const fired = new Set(tests.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const names = alertRules().map((r) => r.alert);
    expect(names).to.include.members(['TagstreamConsumerLagGrowing', 'TagstreamConsumerLagSecondsHigh', 'TagstreamPartnerErrorRatioHigh', 'TagstreamPartnerTimeoutRatioHigh', 'TagstreamDeadLettersRising', 'TagstreamBreakerOpen', 'TagstreamBrowserRestarts', 'TagstreamPartnerScriptChanged', 'TagstreamNoEventsReceived']);
    for (const name of names) expect(fired.has(name as string), `${name} has no firing test`).to.equal(true);
    for (const rule of alertRules()) expect(rule.labels?.severity, `${rule.alert} severity`).to.be.oneOf(['info', 'warning', 'critical']);
  });

  it('promtool test rules passes alerts.test.yml', () => {
    const r = promtool('test', 'rules', 'alerts.test.yml');
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.include('SUCCESS');
  });

  it('a wrong expectation fails promtool test rules (the tests can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'promtool-'));
    try {
      copyFileSync(join(DIR, 'alerts.yml'), join(dir, 'alerts.yml'));
      const wrong = readFileSync(join(DIR, 'alerts.test.yml'), 'utf8').replace('partner: broken }', 'partner: healthy }');
      writeFileSync(join(dir, 'alerts.test.yml'), wrong);
      const r = spawnSync(PROMTOOL, ['test', 'rules', 'alerts.test.yml'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
      expect(r.status).to.not.equal(0);
      expect(r.stdout + r.stderr).to.include('FAILED');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the thresholds of every alert can be removed to query its series on a running product', () => {
    expect(withoutThresholds('max by (p) (x) > 1000 and max by (p) (deriv(y[10m])) > 0')).to.equal('max by (p) (x) and max by (p) (deriv(y[10m]))');
    expect(withoutThresholds('sum(rate(a{s="c"}[15m])) == 0 or absent(a)')).to.equal('sum(rate(a{s="c"}[15m])) or absent(a)');
    for (const rule of alertRules()) expect(withoutThresholds(rule.expr), rule.alert).to.not.match(/(>|<|==)\s*[0-9]/);
  });

  it('promtool check config accepts prometheus.yml (rule file where compose mounts it)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'promtool-'));
    try {
      const config = readFileSync(join(DIR, 'prometheus.yml'), 'utf8');
      expect(config).to.include('/etc/prometheus/alerts.yml');
      copyFileSync(join(DIR, 'alerts.yml'), join(dir, 'alerts.yml'));
      writeFileSync(join(dir, 'prometheus.yml'), config.replace('/etc/prometheus/alerts.yml', join(dir, 'alerts.yml')));
      const r = spawnSync(PROMTOOL, ['check', 'config', 'prometheus.yml'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      const parsed = parse(config) as { scrape_configs: Array<{ job_name: string; static_configs?: Array<{ targets: string[] }>; dns_sd_configs?: Array<{ names: string[]; port: number }> }> };
      const targets = parsed.scrape_configs.flatMap((c) => [...(c.static_configs ?? []).flatMap((s) => s.targets), ...(c.dns_sd_configs ?? []).flatMap((d) => d.names.map((n) => `${n}:${d.port}`))]);
      // Every role is scraped on the default metrics port of `run` (runtime/config.ts metrics.port).
      const port = loadSettings({ env: {} }).metrics.port;
      expect(targets).to.have.members([`collector:${port}`, `processor:${port}`, `dispatcher:${port}`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
