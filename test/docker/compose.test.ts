/**
 * No Docker engine runs here, so docker/ is checked by what can be checked: the compose file
 * parses (with the merge keys Compose supports), every file it builds from or mounts exists, every
 * command it runs in the image is one the CLI accepts (parsed by the CLI's own commander program,
 * actions replaced), every environment variable it sets is a setting that validates, and the
 * image installs the browser exactly as scripts/install-infra.sh does.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { buildProgram } from '../../runtime/cli/main.ts';
import { ENV_SETTINGS, loadSettings } from '../../runtime/config.ts';

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  entrypoint?: string[];
  volumes?: string[];
  environment?: Record<string, string | number>;
  depends_on?: Record<string, { condition: string }> | string[];
  deploy?: { replicas?: number };
  healthcheck?: { disable?: boolean };
}

const composePath = resolve('docker/compose.yaml');
const composeDir = dirname(composePath);
const compose = parse(readFileSync(composePath, 'utf8'), { merge: true }) as { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };
const dockerfile = readFileSync('docker/Dockerfile', 'utf8');
/** Services that run the product's image (built from docker/Dockerfile). */
const ours = Object.entries(compose.services).filter(([, svc]) => svc.build !== undefined);

/** Compose's `${VAR:-default}` interpolation, with the defaults (what `up` uses with an empty environment). */
function interpolate(value: string | number): string {
  return String(value).replace(/\$\{([A-Z0-9_]+)(?::-([^}]*))?\}/g, (_m, _name: string, fallback: string | undefined) => fallback ?? '');
}

/** Every command of the program with a no-op action: parsing checks arguments and options, nothing runs. */
function inertProgram(): { program: Command; ran: string[] } {
  const program = buildProgram();
  const ran: string[] = [];
  const visit = (cmd: Command, path: string[]): void => {
    for (const sub of cmd.commands) {
      const name = [...path, sub.name()];
      sub.exitOverride();
      sub.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
      sub.action(() => {
        ran.push(name.join(' '));
      });
      visit(sub, name);
    }
  };
  program.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
  visit(program, []);
  return { program, ran };
}

describe('docker/compose.yaml', () => {
  it('parses and has every part of the stack: Kafka, the topics job, Couchbase and its init job, the three roles, Prometheus, Grafana', () => {
    expect(Object.keys(compose.services)).to.include.members(['kafka', 'topics', 'couchbase', 'couchbase-init', 'processor', 'dispatcher', 'collector', 'prometheus', 'grafana']);
    expect(compose.services.kafka?.image).to.match(/^apache\/kafka:/);
    expect(compose.services.couchbase?.image).to.match(/^couchbase\/server:community-/);
    expect(compose.services.grafana?.image).to.equal('grafana/grafana:13.2.3');
    expect(compose.services.processor?.deploy?.replicas, 'the processor runs twice').to.equal(2);
  });

  it('builds from the Dockerfile and mounts files that exist (the metrics helper’s Prometheus and Grafana files included)', () => {
    const mounted: string[] = [];
    for (const [name, svc] of Object.entries(compose.services)) {
      if (svc.build) {
        const context = resolve(composeDir, svc.build.context);
        expect(existsSync(join(context, svc.build.dockerfile)), `${name}: dockerfile`).to.equal(true);
      }
      for (const volume of svc.volumes ?? []) {
        const [host = '', target = ''] = volume.split(':');
        if (!host.startsWith('.') && !host.startsWith('/')) {
          expect(compose.volumes ?? {}, `${name}: named volume ${host}`).to.have.property(host);
          continue;
        }
        mounted.push(`${name}: ${host} -> ${target}`);
        expect(existsSync(resolve(composeDir, host)), `${name}: volume ${host}`).to.equal(true);
      }
    }
    expect(mounted).to.include.members([
      'prometheus: ./prometheus/prometheus.yml -> /etc/prometheus/prometheus.yml',
      'prometheus: ./prometheus/alerts.yml -> /etc/prometheus/alerts.yml',
      'grafana: ./grafana/provisioning -> /etc/grafana/provisioning',
      'grafana: ./grafana/dashboards -> /var/lib/grafana/dashboards',
    ]);
  });

  it('runs in the image only commands, arguments and options the CLI accepts', async () => {
    expect(ours.map(([name]) => name)).to.include.members(['topics', 'processor', 'dispatcher', 'collector']);
    for (const [name, svc] of ours) {
      expect(svc.command, `${name}: command`).to.be.an('array');
      const { program, ran } = inertProgram();
      await program.parseAsync(svc.command ?? [], { from: 'user' }).catch((error: unknown) => {
        throw new Error(`${name}: \`${(svc.command ?? []).join(' ')}\` is refused by the CLI: ${(error as Error).message}`);
      });
      expect(ran, `${name}: one command ran`).to.have.length(1);
      if (ran[0] === 'run') {
        const roles = (svc.command ?? []).slice(1).filter((a, i, all) => !a.startsWith('--') && !(all[i - 1] ?? '').startsWith('--'));
        expect(roles, `${name}: roles`).to.satisfy((r: string[]) => r.every((role) => ['collector', 'processor', 'dispatcher', 'all'].includes(role)));
      }
    }
    // The check itself refuses what the CLI refuses.
    const { program } = inertProgram();
    const refused = await program.parseAsync(['run', 'processor', '--no-such-flag'], { from: 'user' }).then(() => false, () => true);
    expect(refused, 'an unknown option fails the check').to.equal(true);
  });

  it('sets only known settings in the image, and they validate', () => {
    const known = new Set([...Object.keys(ENV_SETTINGS), 'LOG_LEVEL', 'NODE_ENV']);
    for (const [name, svc] of ours) {
      const env = Object.fromEntries(Object.entries(svc.environment ?? {}).map(([k, v]) => [k, interpolate(v)]));
      for (const key of Object.keys(env)) expect(known.has(key), `${name}: ${key} is not a setting (runtime/config.ts ENV_SETTINGS)`).to.equal(true);
      expect(() => loadSettings({ env }), `${name}: its environment`).to.not.throw();
    }
    const processor = loadSettings({ env: Object.fromEntries(Object.entries(compose.services.processor?.environment ?? {}).map(([k, v]) => [k, interpolate(v)])) });
    expect(processor.couchbase.connectionString, 'the processor writes jars through to the Couchbase service').to.equal('couchbase://couchbase');
  });

  it('Prometheus scrapes the roles where compose runs them, on their metrics port; Grafana reads that Prometheus', () => {
    const prometheus = parse(readFileSync(resolve(composeDir, 'prometheus/prometheus.yml'), 'utf8')) as {
      scrape_configs: Array<{ job_name: string; static_configs?: Array<{ targets: string[] }>; dns_sd_configs?: Array<{ names: string[]; port: number }> }>;
    };
    const metricsPort = String(loadSettings({ env: {} }).metrics.port);
    const scraped = new Set<string>();
    for (const job of prometheus.scrape_configs) {
      const targets = [
        ...(job.static_configs ?? []).flatMap((c) => c.targets),
        ...(job.dns_sd_configs ?? []).flatMap((c) => c.names.map((n) => `${n}:${c.port}`)),
      ];
      for (const target of targets) {
        const [host = '', port = ''] = target.split(':');
        expect(compose.services, `${job.job_name}: ${target} is a compose service`).to.have.property(host);
        expect(port, `${job.job_name}: ${target} is the metrics port`).to.equal(metricsPort);
        scraped.add(host);
      }
    }
    expect([...scraped].sort()).to.deep.equal(['collector', 'dispatcher', 'processor']);
    const replicas = prometheus.scrape_configs.find((j) => (j.dns_sd_configs ?? []).some((c) => c.names.includes('processor')));
    expect(replicas, 'the scaled processor is discovered by DNS (one target per replica)').to.not.equal(undefined);
    const datasources = parse(readFileSync(resolve(composeDir, 'grafana/provisioning/datasources/prometheus.yaml'), 'utf8')) as { datasources: Array<{ url: string }> };
    for (const ds of datasources.datasources) expect(compose.services, ds.url).to.have.property(new URL(ds.url).hostname);
  });

  it('starts the roles after the topics job and the processor after the Couchbase bucket exists', () => {
    for (const role of ['processor', 'dispatcher', 'collector']) {
      expect(compose.services[role]?.depends_on, role).to.deep.include({ topics: { condition: 'service_completed_successfully' } });
    }
    expect(compose.services.processor?.depends_on).to.deep.include({ 'couchbase-init': { condition: 'service_completed_successfully' } });
    const init = (compose.services['couchbase-init']?.command ?? []).join(' ');
    expect(init).to.include('bucket-create').and.include('--bucket tagstream');
    expect(compose.services.processor?.environment?.COUCHBASE_BUCKET).to.equal('tagstream');
    expect(compose.services.topics?.healthcheck?.disable, 'a one-shot job has no /ready to probe').to.equal(true);
  });
});

describe('docker/Dockerfile', () => {
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

  it('copies every source folder the TypeScript build includes', () => {
    const tsconfig = JSON.parse(readFileSync('tsconfig.json', 'utf8')) as { include: string[] };
    for (const folder of tsconfig.include) {
      expect(dockerfile, `COPY ${folder}`).to.match(new RegExp(`^COPY ${folder} ${folder}$`, 'm'));
    }
  });

  it('runs Node 22 slim as a non-root user, with a health check on /ready of the default metrics port', () => {
    expect(finalStage).to.match(/^FROM node:22-[a-z]+-slim$/m);
    expect(finalStage).to.match(/^USER node$/m);
    expect(finalStage).to.match(/^HEALTHCHECK .*\n?.*\/ready/m);
    const port = /METRICS_PORT=(\d+)/.exec(finalStage)?.[1];
    expect(Number(port), 'the image’s METRICS_PORT is the settings’ default').to.equal(loadSettings({ env: {} }).metrics.port);
  });

  it('installs the browser with the install script itself, so the image gets exactly its packages', () => {
    expect(finalStage).to.match(/^COPY scripts\/install-infra\.sh \/opt\/tagstream\/scripts\/install-infra\.sh$/m);
    expect(finalStage).to.match(/bash \/opt\/tagstream\/scripts\/install-infra\.sh browser/);
    // Besides the script's packages, only what the image itself needs (TLS roots, an init for signals).
    const direct = [...finalStage.matchAll(/apt-get install -y --no-install-recommends ([^\\&\n]+)/g)].flatMap((m) => (m[1] ?? '').trim().split(/\s+/));
    expect(direct.sort()).to.deep.equal(['ca-certificates', 'tini']);
    expect(finalStage.indexOf('install-infra.sh browser'), 'installed as root, before USER').to.be.below(finalStage.indexOf('USER node'));
  });

  it('the install script’s browser part lists Chromium, its headless shell and the fonts, and only those', () => {
    // The browser part as the image runs it, on a machine where nothing is installed yet: what apt would get.
    const script = readFileSync('scripts/install-infra.sh', 'utf8');
    const fonts = /^browser_fonts=\(([^)]*)\)$/m.exec(script)?.[1]?.split(/\s+/).filter(Boolean);
    expect(fonts).to.deep.equal(['fonts-liberation', 'fonts-noto-color-emoji']);
    expect(script).to.match(/need_apt\+=\(chromium\)/).and.match(/need_apt\+=\(chromium-headless-shell\)/);
    // And the script is valid bash (the image runs it as is).
    execFileSync('bash', ['-n', 'scripts/install-infra.sh']);
  });
});
