/**
 * `replay` on the real broker, as an operator runs it: the processor (real Chromium executor) and
 * the dispatcher run in this process on their own topics, two fake partners listen on loopback,
 * and the CLI runs as a child process.
 *
 * 1. Partner A answers 503 during a run: with a short retry window its requests end in the
 *    requests DLQ while B gets each of its own once. A comes back; `replay` over that range makes A
 *    receive each of its requests exactly once, B nothing twice (its keys are delivered already),
 *    and no jar is written.
 * 2. `replay --dry-run` after A added a parameter and B moved its endpoint prints both differences
 *    and publishes nothing (end offsets of the events, requests and cookie topics unchanged).
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { parsePartners, type PartnerConfigInput } from '../../core/contracts/index.ts';
import { createExecutor, type Executor as ExecutorPool } from '../../processors/executor/index.ts';
import { loadSettings, type Settings } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { KafkaClient } from '../../runtime/kafka/types.ts';
import type { ReplaySummary } from '../../runtime/operator/replay.ts';
import { startDispatcher, type DispatcherHandle } from '../../runtime/roles/dispatcher.ts';
import { poolExecutor } from '../../runtime/roles/executor-adapter.ts';
import { startProcessor, type ProcessorHandle } from '../../runtime/roles/processor.ts';
import { createTopics } from '../../runtime/topics.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { readAll, waitFor } from '../runner/helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const PARTITIONS = 3;
const VISITORS = ['visitor-1', 'visitor-2'];
const PAGES = ['/p/1', '/p/2'];

interface FakePartner {
  port: number;
  /** Paths (with query) answered 2xx, with how often. */
  delivered: Map<string, number>;
  hits: number;
  down: boolean;
  close(): Promise<void>;
}

async function fakePartner(): Promise<FakePartner> {
  const state = { delivered: new Map<string, number>(), hits: 0, down: false };
  const server: Server = createServer((req, res) => {
    state.hits += 1;
    if (state.down) {
      res.writeHead(503).end();
      return;
    }
    state.delivered.set(req.url ?? '', (state.delivered.get(req.url ?? '') ?? 0) + 1);
    res.writeHead(204).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return Object.assign(state, {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  }) as FakePartner;
}

/** A pixel partner: one image per page view, to `path`, with the page and any extra query. */
function pixel(id: string, port: number, path: string, extra = '', retryWindowMs?: number): PartnerConfigInput {
  return {
    id,
    consent: 'analytics',
    captureHosts: [`127.0.0.1:${port}`],
    html: `<script>new Image().src='http://127.0.0.1:${port}${path}?page='+encodeURIComponent(location.pathname)+'${extra}'</script>`,
    timeoutMs: 2000,
    ...(retryWindowMs === undefined ? {} : { delivery: { retryWindowMs } }),
  };
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'info', EXECUTOR_BROWSERS: '1', EXECUTOR_PAGES_PER_BROWSER: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('replay (CLI) on the real broker with the processor and the dispatcher', function () {
  this.timeout(240_000);
  let dir: string;
  let a: FakePartner;
  let b: FakePartner;
  let settings: Settings;
  let configFile: string;
  let client: KafkaClient;
  let pool: ExecutorPool;
  let processor: ProcessorHandle;
  let dispatcher: DispatcherHandle;
  let from: string;
  let to: string;

  const endOffsets = async (topic: string): Promise<number[]> => {
    const admin = await client.admin();
    try {
      return (await admin.listEndOffsets(topic)).map((p) => p.offset);
    } finally {
      await admin.close();
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'replay-'));
    [a, b] = await Promise.all([fakePartner(), fakePartner()]);
    const prefix = uniqueTopic('replay');
    const topics = { events: `${prefix}-events`, cookies: `${prefix}-cookies`, requests: `${prefix}-requests`, requestsDlq: `${prefix}-requests-dlq`, eventsDlq: `${prefix}-events-dlq` };
    const groups = { processor: `${prefix}-processor`, dispatcher: `${prefix}-dispatcher` };
    const common = { brokers: realBroker().brokers, topics, groups, partitions: PARTITIONS, requestPartitions: PARTITIONS };
    configFile = join(dir, 'settings.json');
    writeFileSync(configFile, JSON.stringify(common));
    settings = loadSettings({
      env: {},
      flags: {
        ...common,
        state: { store: 'memory' },
        runner: { sessionTimeoutMs: 10_000 },
        executor: { allowPrivateNetwork: true, browsers: 1, pagesPerBrowser: 2 },
        // Retries in seconds: A's requests reach the DLQ soon after its 1.5 s window.
        dispatcher: { allowPrivateNetwork: true, inMemoryAttempts: 2, inMemoryBudgetMs: 1_000, inMemoryBaseDelayMs: 20, retryBaseDelayMs: 300, retryMaxDelayMs: 1_000, breakerThreshold: 3, halfOpenAfterMs: 500 },
      },
    });
    client = createKafkaClient('platformatic', { brokers: realBroker().brokers, clientId: 'replay-test' });
    const admin = await client.admin();
    try {
      await createTopics(admin, settings);
    } finally {
      await admin.close();
    }
    const partners = parsePartners([pixel('partner-a', a.port, '/a', '', 1_500), pixel('partner-b', b.port, '/b')]);
    writeFileSync(join(dir, 'partners.json'), JSON.stringify(partners));
    pool = await createExecutor({ browsers: 1, pagesPerBrowser: 2, allowPrivateNetwork: true });
    processor = await startProcessor({ settings, client, executor: poolExecutor(pool, partners), registry: new Registry() });
    dispatcher = await startDispatcher({ settings, client, partners, registry: new Registry() });
  });

  after(async () => {
    await Promise.allSettled([processor?.stop(5_000), dispatcher?.stop(5_000)]);
    await pool?.close();
    await client?.close();
    await Promise.allSettled([a?.close(), b?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('A down during a run (its requests dead-lettered), then `replay` of that range: A receives each of its requests once, B nothing twice, no jar written', async () => {
    a.down = true;
    from = new Date(Date.now() - 1_000).toISOString();
    const producer = await client.producer();
    try {
      const records = VISITORS.flatMap((userId) =>
        PAGES.map((page) => ({
          topic: settings.topics.events,
          key: userId,
          value: JSON.stringify({ eventId: randomUUID(), userId, timestamp: new Date().toISOString(), type: 'page_view', page: { url: `https://www.shop.example${page}?u=${userId}` }, consent: { analytics: true } }),
        })),
      );
      await producer.send(records);
    } finally {
      await producer.close();
    }
    const expected = VISITORS.flatMap((u) => PAGES.map((p) => `?page=${encodeURIComponent(p)}`).map((q) => `${q}|${u}`));
    expect(expected).to.have.length(4);
    await waitFor('B got its 4 pixels', () => [...b.delivered.values()].reduce((n, c) => n + c, 0) >= 4, 90_000, 100);
    await waitFor("A's 4 requests in the requests DLQ", async () => (await readAll(client, settings.topics.requestsDlq, PARTITIONS)).length >= 4, 90_000, 250);
    expect(a.delivered.size, 'A answered 503 to everything').to.equal(0);
    expect(a.hits).to.be.at.least(4);
    // Two visitors, the same pages: B's 2 distinct URLs twice each.
    expect([...b.delivered.entries()].sort()).to.deep.equal([['/b?page=%2Fp%2F1', 2], ['/b?page=%2Fp%2F2', 2]]);
    // --to is exclusive and the first run's events were produced seconds ago: the range ends now,
    // so the records the replays below publish (Kafka timestamps after this) are never inside it.
    to = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await waitFor('both jars of the first run written', async () => (await readAll(client, settings.topics.cookies, PARTITIONS)).length >= 4, 30_000, 100);
    const cookiesBefore = await endOffsets(settings.topics.cookies);

    a.down = false;
    const run = await cli(['replay', '--from', from, '--to', to, '--config', configFile, '--brokers', realBroker().brokers.join(','), '--partners', join(dir, 'partners.json'), '--format', 'json', '--wait-timeout', '2m']);
    expect(run.code, run.stderr.slice(-2000)).to.equal(0);
    const summary = JSON.parse(run.stdout) as ReplaySummary;
    expect(summary.mode).to.equal('replay');
    expect(summary.events.replayed).to.equal(4);
    expect(summary.processed).to.equal(true);
    expect(summary.failures).to.deep.equal([]);
    expect(summary.perPartner['partner-a']?.requests).to.equal(4);
    expect(summary.perPartner['partner-b']?.requests).to.equal(4);
    // Progress went to stderr as JSON log lines (not a terminal).
    expect(run.stderr).to.match(/"msg":"replay progress"/);

    // A: the 4 dead-lettered requests, once each. B: its 4 replayed keys are skipped as delivered.
    await waitFor('A received its 4 requests', () => [...a.delivered.values()].reduce((n, c) => n + c, 0) >= 4, 60_000, 100);
    await waitFor("the dispatcher skipped B's 4 replayed keys", () => dispatcher.stats().duplicates >= 4, 60_000, 100);
    expect([...a.delivered.entries()].sort()).to.deep.equal([['/a?page=%2Fp%2F1', 2], ['/a?page=%2Fp%2F2', 2]]);
    expect([...b.delivered.entries()].sort()).to.deep.equal([['/b?page=%2Fp%2F1', 2], ['/b?page=%2Fp%2F2', 2]]);
    expect(dispatcher.stats().duplicates).to.equal(4);
    // The replayed events ran with the current jars and wrote none.
    expect(await endOffsets(settings.topics.cookies)).to.deep.equal(cookiesBefore);
    // A second replay of the same range: everything is delivered now, nobody receives anything again.
    const again = await cli(['replay', '--from', from, '--to', to, '--config', configFile, '--brokers', realBroker().brokers.join(','), '--partner', 'partner-a', '--format', 'json']);
    expect(again.code, again.stderr.slice(-2000)).to.equal(0);
    const second = JSON.parse(again.stdout) as ReplaySummary;
    expect(second.events.replayed).to.equal(4);
    expect(second.events.skipped.replays).to.equal(0);
    expect(second.perPartner).to.deep.equal({ 'partner-a': { requests: 4 } });
    await waitFor("the dispatcher skipped A's 4 replayed keys", () => dispatcher.stats().duplicates >= 8, 60_000, 100);
    expect([...a.delivered.values()].reduce((n, c) => n + c, 0)).to.equal(4);
    expect([...b.delivered.values()].reduce((n, c) => n + c, 0)).to.equal(4);
  });

  it('--dry-run after the partners changed their scripts prints the differences and publishes nothing', async () => {
    expect(from, 'the first test set the range').to.be.a('string');
    const changed = parsePartners([pixel('partner-a', a.port, '/a', '&v=2', 1_500), pixel('partner-b', b.port, '/b2')]);
    const changedFile = join(dir, 'partners.changed.json');
    writeFileSync(changedFile, JSON.stringify(changed));
    const before = await Promise.all([settings.topics.events, settings.topics.requests, settings.topics.cookies].map(endOffsets));
    const hitsBefore = { a: a.hits, b: b.hits };
    const args = ['replay', '--from', from, '--to', to, '--dry-run', '--config', configFile, '--brokers', realBroker().brokers.join(','), '--partners', changedFile, '--allow-private-network'];

    const json = await cli([...args, '--format', 'json']);
    expect(json.code, json.stderr.slice(-2000)).to.equal(0);
    const summary = JSON.parse(json.stdout) as ReplaySummary;
    expect(summary.mode).to.equal('dry-run');
    expect(summary.events.replayed).to.equal(4);
    // The events a replay published are in the range's offsets only after `to`; none is read twice.
    expect(summary.failures).to.deep.equal([]);
    expect(summary.perPartner['partner-a']).to.deep.include({ requests: 4, original: 4, added: 0, removed: 0, changed: 4, unchanged: 0 });
    expect(summary.perPartner['partner-b']).to.deep.include({ requests: 4, original: 4, added: 0, removed: 0, changed: 4, unchanged: 0 });
    expect(summary.differences).to.equal(8);
    expect(summary.eventsWithDifferences).to.have.length(4);
    for (const e of summary.eventsWithDifferences) {
      const da = e.partners.find((d) => d.partner === 'partner-a')!;
      expect(da.changed[0]?.endpointChanged).to.equal(false);
      expect(da.changed[0]?.params).to.deep.equal([{ name: 'query:v', before: null, after: '2' }]);
      expect(da.changed[0]?.before.key).to.equal(`${e.eventId}:partner-a:0`);
      expect(da.changed[0]?.after.key).to.equal(`${e.eventId}:partner-a:0`);
      const db = e.partners.find((d) => d.partner === 'partner-b')!;
      expect(db.changed[0]?.endpointChanged).to.equal(true);
      expect(db.changed[0]?.before.endpoint).to.equal(`GET http://127.0.0.1:${b.port}/b`);
      expect(db.changed[0]?.after.endpoint).to.equal(`GET http://127.0.0.1:${b.port}/b2`);
    }

    const text = await cli(args);
    expect(text.code, text.stderr.slice(-2000)).to.equal(0);
    expect(text.stdout).to.contain('replay --dry-run (nothing published, no jar changed)');
    expect(text.stdout).to.match(/changed parameter query:v: \(absent\) → "2"\s+\(4×; ids /);
    expect(text.stdout).to.contain(`changed endpoint  GET http://127.0.0.1:${b.port}/b → GET http://127.0.0.1:${b.port}/b2`);
    expect(text.stdout).to.contain('differences: 8');

    const after = await Promise.all([settings.topics.events, settings.topics.requests, settings.topics.cookies].map(endOffsets));
    expect(after).to.deep.equal(before);
    expect({ a: a.hits, b: b.hits }, 'a dry run sends nothing to partners').to.deep.equal(hitsBefore);
  });

  it('bad input: exit 2 with one line naming the flag', async () => {
    const brokers = realBroker().brokers.join(',');
    const cases: Array<[string[], RegExp]> = [
      [['--from', 'yesterday', '--to', 'now'], /^error: --from: "yesterday" is not a time/],
      [['--from', '-1h', '--to', '-2h'], /^error: --to: must be after --from/],
      [['--from', '-1h', '--to', 'now', '--format', 'xml'], /^error: --format: must be text or json/],
      [['--from', '-1h', '--to', 'now', '--dry-run'], /^error: --partners: /],
      [['--from', '-1h', '--to', 'now', '--partner', 'nobody', '--partners', join(dir, 'partners.json')], /^error: --partner: unknown partner "nobody"/],
    ];
    for (const [extra, message] of cases) {
      const r = await cli(['replay', '--config', configFile, '--brokers', brokers, ...extra]);
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr.trim().split('\n'), r.stderr).to.have.length(1);
      expect(r.stderr.trim()).to.match(message);
    }
  });
});
