import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Command } from 'commander';
import { TagstreamError } from '../../core/errors.ts';
import { registerTopology } from '../../runtime/cli/commands/topology.ts';
import type { TopologyDescriptionJson } from '../../topology/index.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const golden = readFileSync(new URL('./fixtures/application.describe.txt', import.meta.url), 'utf8');

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return cliWith({}, ...args);
}

function cliWith(extraEnv: NodeJS.ProcessEnv, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  // No KAFKA_BROKERS and an unreachable one would not matter either: describe never connects.
  const env = { ...process.env, KAFKA_BROKERS: '', ...extraEnv };
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', ...args], { cwd: root, env, encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('CLI: topology describe', function () {
  this.timeout(30_000);

  it('prints the Kafka Streams text of the application topology and exits 0 without a broker', () => {
    const { status, stdout, stderr } = cli('topology', 'describe', '--app', 'processor');
    expect(stderr).to.equal('');
    expect(status).to.equal(0);
    expect(stdout).to.equal(golden);
  });

  it('prints the processor and the dispatcher beside each other by default', () => {
    const { status, stdout } = cli('topology', 'describe');
    expect(status).to.equal(0);
    expect(stdout.startsWith(`# processor\n${golden}\n# dispatcher\nTopologies:\n`)).to.equal(true);
    expect(stdout).to.contain('Sink: retry-sink (topic: tracking.requests.retry)');
    expect(stdout.trimEnd().split('\n').at(-1)).to.equal('# dispatcher retry consumer (group tagstream-dispatcher-retry): tracking.requests.retry → waits until each record\'s notBefore → tracking.requests');
    const json = JSON.parse(cli('topology', 'describe', '--format', 'json').stdout) as { dispatcher: TopologyDescriptionJson };
    expect(json.dispatcher.copartitionGroups).to.deep.equal([['tracking.requests', 'tracking.requests.delivered']]);
  });

  it('--format json prints one JSON document, --format mermaid a flowchart', () => {
    const json = cli('topology', 'describe', '--format', 'json', '--app', 'processor');
    expect(json.status).to.equal(0);
    const parsed = JSON.parse(json.stdout) as TopologyDescriptionJson;
    expect(parsed.streamTopics).to.deep.equal(['tracking.events']);
    const mermaid = cli('topology', 'describe', '--format', 'mermaid', '--app', 'processor');
    expect(mermaid.status).to.equal(0);
    expect(mermaid.stdout.startsWith('flowchart TD\n')).to.equal(true);
  });

  it('honours --config and the TOPIC_* variables (the names `run` would use)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'describe-'));
    const config = join(dir, 'settings.json');
    writeFileSync(config, JSON.stringify({ topics: { events: 'shop.events', cookies: 'shop.jars' } }));
    const fromFile = cli('topology', 'describe', '--config', config, '--format', 'json', '--app', 'processor');
    expect(fromFile.stderr).to.equal('');
    const parsed = JSON.parse(fromFile.stdout) as TopologyDescriptionJson;
    expect(parsed.streamTopics).to.deep.equal(['shop.events']);
    expect(parsed.copartitionGroups).to.deep.equal([['shop.events', 'shop.jars']]);
    const fromEnv = cliWith({ TOPIC_REQUESTS: 'shop.requests' }, 'topology', 'describe', '--config', config);
    expect(fromEnv.status).to.equal(0);
    expect(fromEnv.stdout).to.contain('Sink: requests-sink (topic: shop.requests)');
    expect(fromEnv.stdout).to.contain('(topics: [shop.events])');
    const bad = cliWith({ TOPIC_EVENTS: 'no spaces allowed' }, 'topology', 'describe');
    expect(bad.status).to.equal(2);
    expect(bad.stderr.trim().split('\n')).to.have.length(1);
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 2 with a one-line reason on a bad --format', () => {
    const { status, stdout, stderr } = cli('topology', 'describe', '--format', 'yaml');
    expect(status).to.equal(2);
    expect(stdout).to.equal('');
    expect(stderr.trim().split('\n')).to.have.length(1);
    expect(stderr).to.contain('--format: must be one of text, json, mermaid (got "yaml")');
  });

  it('registerTopology throws InvalidInputError (ERR_INVALID_INPUT) for a bad format, in process', async () => {
    const program = new Command('t').exitOverride();
    registerTopology(program);
    const err = await program.parseAsync(['node', 't', 'topology', 'describe', '--format', 'dot']).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(TagstreamError);
    expect((err as TagstreamError).code).to.equal('ERR_INVALID_INPUT');
  });
});
