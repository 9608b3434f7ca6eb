/**
 * `dlq redrive` through the CLI on the real broker, on both DLQs: the dispatcher role in process
 * against fake HTTPS partners (a 400 dead-letters at once), the processor role in process with a
 * fake executor. A redriven request is delivered once the partner is fixed; the ledger keeps a
 * dead letter from being redriven twice (per partner); a record that dead-letters again carries
 * its count (1, then 2) and its attempt history, and at --max-redrives it is skipped; --dry-run
 * publishes nothing. An event dead letter is redriven to the events topic and processed.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { eventDeadLetter, REDRIVE_COUNT_HEADER, type EventDeadLetter, type PartnerConfigInput, type RequestDeadLetter, type RequestRecord } from '../../core/contracts/index.ts';
import { silentLogger } from '../../core/log.ts';
import { loadSettings } from '../../runtime/config.ts';
import type { KafkaClient } from '../../runtime/kafka/types.ts';
import type { RedriveSummary } from '../../runtime/operator/redrive.ts';
import { configuredProcessorTopology } from '../../runtime/roles/index.ts';
import { eventDeadLetters, startStreams } from '../../runtime/streams/index.ts';
import type { Executor } from '../../topology/app/processor.ts';
import { fakePartner, makeCert, ok, requestRecord, type FakePartner, type TestCert } from '../dispatcher/helpers.ts';
import { createDispatcherTopics, dispatcherSettings, FAST, Harness, names, PARTITIONS, readJson, type DispatcherTopics } from '../dispatcher/setup.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { readAll, waitFor } from '../runner/helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const A = 'collect.partner-a.example';
const B = 'collect.partner-b.example';
const badRequest = () => ({ status: 400 });

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, KAFKA_BROKERS: realBroker().brokers.join(','), LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

async function redriveJson(args: string[], env: NodeJS.ProcessEnv): Promise<RedriveSummary> {
  const run = await cli(['dlq', 'redrive', ...args, '--format', 'json'], env);
  expect(run.status, run.stderr).to.equal(0);
  return JSON.parse(run.stdout) as RedriveSummary;
}

async function endOffsets(client: KafkaClient, topic: string): Promise<number> {
  const admin = await client.admin();
  try {
    return (await admin.listEndOffsets(topic)).reduce((s, e) => s + e.offset, 0);
  } finally {
    await admin.close();
  }
}

describe('dlq redrive (CLI, real broker)', function () {
  this.timeout(240_000);

  describe('requests DLQ, dispatcher in process', () => {
    let cert: TestCert;
    let a: FakePartner;
    let b: FakePartner;
    let h: Harness;
    let topics: DispatcherTopics;
    let client: KafkaClient;
    let env: NodeJS.ProcessEnv;
    let ledger: string;

    before(() => {
      cert = makeCert([A, B]);
    });
    beforeEach(async () => {
      h = new Harness();
      a = await fakePartner(cert, badRequest);
      b = await fakePartner(cert, badRequest);
      const named = names();
      topics = named.topics;
      ledger = `${named.group}-ledger`;
      client = h.client();
      await createDispatcherTopics(client, topics);
      env = { TOPIC_REQUESTS: topics.requests, TOPIC_REQUESTS_DLQ: topics.dlq, TOPIC_EVENTS: topics.events };
      const partners: PartnerConfigInput[] = [
        { id: 'pa', html: '', captureHosts: [A], delivery: { timeoutMs: 2_000 } },
        { id: 'pb', html: '', captureHosts: [B], delivery: { timeoutMs: 2_000 } },
      ];
      await h.start(dispatcherSettings(topics, named.group), partners, { ...FAST, resolve: [`${A}:443=127.0.0.1:${a.port}`, `${B}:443=127.0.0.1:${b.port}`], topics: { retry: topics.retry, delivered: topics.delivered } }, cert.cert);
    });
    afterEach(async function () {
      this.timeout(30_000);
      await h.close();
      await Promise.all([a.close(), b.close()]);
    });

    const produce = async (records: Array<Record<string, unknown>>): Promise<void> => {
      const producer = await client.producer();
      try {
        await producer.send(records.map((r) => ({ topic: topics.requests, key: String(r.userId), value: JSON.stringify(r) })));
      } finally {
        await producer.close();
      }
    };
    const letters = async (): Promise<RequestDeadLetter[]> => (await readJson<RequestDeadLetter>(client, topics.dlq)).map((l) => l.value);

    it('a 400 dead-letters; after the fix, --partner redrives only that partner, delivered once; the ledger keeps it from a second redrive; a run without --partner takes the rest', async () => {
      await produce([requestRecord('r1', 'pa', `https://${A}/hit`), requestRecord('r2', 'pb', `https://${B}/hit`)]);
      await waitFor('2 dead letters', async () => (await letters()).length === 2, 30_000, 200);
      expect((await letters()).map((l) => [l.reason, l.partner, l.redrives])).to.have.deep.members([
        ['permanent-failure', 'pa', undefined],
        ['permanent-failure', 'pb', undefined],
      ]);
      const requestsBefore = await endOffsets(client, topics.requests);

      // Dry run: lists what it would do, publishes nothing, remembers nothing.
      const dry = await cli(['dlq', 'redrive', '--topic', 'requests', '--partner', 'pa', '--group', ledger, '--dry-run'], env);
      expect(dry.status, dry.stderr).to.equal(0);
      expect(dry.stdout).to.contain('(dry run');
      expect(dry.stdout).to.match(/would redrive:\n\s+\[\d\]@\d+ .* permanent-failure {2}pa {2}e-r1:pa:0 {2}redriven 0x/);
      expect(dry.stdout).to.match(/found 2\n\s+would redrive 1\n\s+skipped 1 \(partner\)/);
      expect(await endOffsets(client, topics.requests)).to.equal(requestsBefore);

      a.behaviour = ok;
      const first = await redriveJson(['--topic', 'requests', '--partner', 'pa', '--since', '-1h', '--group', ledger], env);
      expect([first.found, first.redriven, first.skipped.partner, first.committed]).to.deep.equal([2, 1, 1, [`${ledger}.pa`]]);
      await waitFor('r1 delivered', () => a.delivered().get('r1') === 1, 30_000);

      const again = await redriveJson(['--topic', 'requests', '--partner', 'pa', '--group', ledger], env);
      expect([again.found, again.redriven], 'the ledger of pa starts after what was redriven').to.deep.equal([0, 0]);

      b.behaviour = ok;
      const rest = await redriveJson(['--topic', 'requests', '--group', ledger], env);
      expect([rest.found, rest.redriven, rest.skipped['already-redriven']], 'pa was redriven by its own run').to.deep.equal([2, 1, 1]);
      await waitFor('r2 delivered', () => b.delivered().get('r2') === 1, 30_000);
      expect(await endOffsets(client, topics.requests), 'two records redriven in all').to.equal(requestsBefore + 2);
      expect(a.delivered().get('r1'), 'r1 delivered once').to.equal(1);
      expect((await letters()).length, 'nothing dead-lettered again').to.equal(2);
    });

    it('a record that dead-letters again carries its redrive count (1, then 2) and its attempt history; at --max-redrives it is skipped', async () => {
      await produce([requestRecord('r3', 'pa', `https://${A}/hit`)]);
      await waitFor('a dead letter', async () => (await letters()).length === 1, 30_000, 200);

      const one = await redriveJson(['--topic', 'requests', '--max-redrives', '2', '--group', ledger], env);
      expect(one.redriven).to.equal(1);
      await waitFor('dead-lettered again', async () => (await letters()).length === 2, 30_000, 200);
      let all = await letters();
      expect(all[1]?.redrives).to.equal(1);
      expect(all[1]?.request?.redrive?.count).to.equal(1);
      expect(all[1]?.attempts.map((x) => x.status), 'the first attempt, then the redriven one').to.deep.equal([400, 400]);

      const redriven = (await readAll(client, topics.requests, PARTITIONS)).at(-1);
      expect(redriven?.headers[REDRIVE_COUNT_HEADER]?.toString()).to.equal('1');
      expect((JSON.parse(redriven!.value!.toString()) as RequestRecord).idempotencyKey, 'the same request, same idempotency key').to.equal('e-r3:pa:0');

      const two = await redriveJson(['--topic', 'requests', '--max-redrives', '2', '--group', ledger], env);
      expect([two.found, two.redriven]).to.deep.equal([1, 1]);
      await waitFor('dead-lettered a third time', async () => (await letters()).length === 3, 30_000, 200);
      all = await letters();
      expect(all[2]?.redrives).to.equal(2);
      expect(all[2]?.attempts).to.have.length(3);

      const requestsBefore = await endOffsets(client, topics.requests);
      const max = await redriveJson(['--topic', 'requests', '--max-redrives', '2', '--group', ledger], env);
      expect([max.found, max.redriven, max.skipped['max-redrives']]).to.deep.equal([1, 0, 1]);
      expect(await endOffsets(client, topics.requests), 'nothing published at the maximum').to.equal(requestsBefore);

      // From the start: the two earlier dead letters were made again by later ones: superseded.
      const review = await redriveJson(['--topic', 'requests', '--max-redrives', '2', '--group', ledger, '--from-start', '--dry-run'], env);
      expect([review.found, review.redriven, review.skipped.superseded, review.skipped['max-redrives']]).to.deep.equal([3, 0, 2, 1]);

      const bad = await cli(['dlq', 'redrive', '--topic', 'requests', '--max-redrives', '0'], env);
      expect(bad.status).to.equal(2);
      expect(bad.stderr.trim()).to.match(/^error: --max-redrives: /);
    });
  });

  describe('events DLQ, processor in process', () => {
    it('an executor failure and a dead letter built by eventDeadLetter are redriven to the events topic; the failing one dead-letters again with count 1, then is processed once fixed', async () => {
      const prefix = uniqueTopic('redrive-ev');
      const topics = { events: `${prefix}-events`, cookies: `${prefix}-cookies`, requests: `${prefix}-requests`, requestsDlq: `${prefix}-requests-dlq`, eventsDlq: `${prefix}-events-dlq` };
      const settings = loadSettings({ env: {}, flags: { partitions: PARTITIONS, requestPartitions: PARTITIONS, topics, groups: { processor: `${prefix}-processor` }, runner: { sessionTimeoutMs: 10_000 }, state: { store: 'memory' } } });
      const env = { TOPIC_EVENTS: topics.events, TOPIC_EVENTS_DLQ: topics.eventsDlq, TOPIC_COOKIES: topics.cookies, TOPIC_REQUESTS: topics.requests, TOPIC_REQUESTS_DLQ: topics.requestsDlq };
      const h = new Harness();
      const client = h.client();
      const admin = await client.admin();
      await admin.createTopics([
        { name: topics.events, partitions: PARTITIONS },
        { name: topics.cookies, partitions: PARTITIONS, configs: { 'cleanup.policy': 'compact' } },
        { name: topics.requests, partitions: PARTITIONS },
        { name: topics.requestsDlq, partitions: PARTITIONS },
        { name: topics.eventsDlq, partitions: PARTITIONS },
      ]);
      await admin.close();
      const failing = new Set(['ev-1']);
      const ran: string[] = [];
      const executor: Executor = (event) => {
        ran.push(event.eventId);
        if (failing.has(event.eventId)) return Promise.reject(new Error('page crashed'));
        return Promise.resolve({ requests: [{ partner: 'p1', method: 'GET', url: `https://collect.p1.example/hit?e=${event.eventId}`, headers: {}, body: null, bodyEncoding: 'utf8', transport: 'image' }], jar: { cookies: [], localStorage: {} }, trackers: [] });
      };
      const processor = await startStreams({
        name: 'processor', topology: configuredProcessorTopology(settings, executor), client, groupId: settings.groups.processor, state: { store: 'memory' },
        deadLetters: eventDeadLetters(topics.eventsDlq), runner: settings.runner, logger: silentLogger(), registry: new Registry(),
      });
      try {
        const event = (eventId: string, userId: string) => ({ eventId, userId, timestamp: new Date().toISOString(), type: 'page_view', page: { url: 'https://www.shop.example/' } });
        const producer = await client.producer();
        const valid = JSON.stringify(event('ev-2', 'dave'));
        await producer.send([
          { topic: topics.events, key: 'carol', value: JSON.stringify(event('ev-1', 'carol')) },
          // A dead letter of a valid event, as the contract builds it (as if its executor had failed).
          { topic: topics.eventsDlq, key: 'dave', value: JSON.stringify(eventDeadLetter({ reason: 'executor-failed', error: new Error('browser gone'), attempts: 1, source: { topic: topics.events, partition: 0, offset: 0, timestamp: Date.now() }, value: valid })) },
        ]);
        await producer.close();
        const dlq = async (): Promise<EventDeadLetter[]> => (await readAll(client, topics.eventsDlq, PARTITIONS)).map((r) => JSON.parse(r.value!.toString()) as EventDeadLetter);
        await waitFor('ev-1 dead-lettered', async () => (await dlq()).length === 2, 30_000, 200);
        const requestsOf = async (eventId: string): Promise<number> => (await readAll(client, topics.requests, PARTITIONS)).filter((r) => (JSON.parse(r.value!.toString()) as RequestRecord).eventId === eventId).length;

        const first = await redriveJson(['--topic', 'events', '--group', `${prefix}-ledger`], env);
        expect([first.found, first.redriven]).to.deep.equal([2, 2]);
        await waitFor('ev-2 processed', async () => (await requestsOf('ev-2')) === 1, 30_000, 200);
        await waitFor('ev-1 dead-lettered again', async () => (await dlq()).length === 3, 30_000, 200);
        const again = (await dlq()).at(-1);
        expect([again?.reason, again?.redrives, again?.attempts], 'count 1; two attempts before, two now').to.deep.equal(['executor-failed', 1, 4]);
        const copies = (await readAll(client, topics.events, PARTITIONS)).filter((r) => r.headers[REDRIVE_COUNT_HEADER] !== undefined);
        expect(copies.map((r) => (JSON.parse(r.value!.toString()) as { eventId: string; redrive: { count: number } })).map((e) => [e.eventId, e.redrive.count]).sort()).to.deep.equal([['ev-1', 1], ['ev-2', 1]]);

        failing.clear();
        const second = await redriveJson(['--topic', 'events', '--group', `${prefix}-ledger`], env);
        expect([second.found, second.redriven]).to.deep.equal([1, 1]);
        await waitFor('ev-1 processed', async () => (await requestsOf('ev-1')) === 1, 30_000, 200);
        expect(ran.filter((id) => id === 'ev-2'), 'ev-2 ran once').to.have.length(1);
        expect((await dlq()).length, 'nothing dead-lettered after the fix').to.equal(3);
      } finally {
        await processor.stop(5_000).catch(() => undefined);
        await h.close();
      }
    });
  });
});
