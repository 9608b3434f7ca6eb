/**
 * `erase` through the CLI on the real broker, with the processor role running in this process
 * (fake executor, no Chromium): the preview names what goes (never a value), the erase record
 * goes through the processor, --wait returns once the tombstone is on the cookies topic, the jar
 * is gone from the processor's store, the log cleaner then removes the old value, and the
 * visitor's next event starts with an empty jar. Also the refusals (no --yes without a terminal).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { StoredJar } from '../../core/contracts/index.ts';
import { silentLogger } from '../../core/log.ts';
import { loadSettings, type Settings } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import { partitionForKey } from '../../runtime/kafka/partitioner.ts';
import type { ConsumedRecord, KafkaClient } from '../../runtime/kafka/types.ts';
import { configuredProcessorTopology } from '../../runtime/roles/index.ts';
import { eventDeadLetters, startStreams, type StreamsHandle } from '../../runtime/streams/index.ts';
import { InMemoryStoreProvider } from '../../state/memory.ts';
import { DEFAULT_COOKIE_STORE, type Executor } from '../../topology/app/processor.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { readAll, waitFor } from '../runner/helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const PARTITIONS = 3;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, KAFKA_BROKERS: realBroker().brokers.join(','), LOG_LEVEL: 'info', ...env },
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

/** The CLI on a pseudo-terminal (util-linux `script`): answers `answer` once the question shows. */
function ttyCli(args: string[], env: NodeJS.ProcessEnv, answer: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const command = ['exec', process.execPath, '--import', 'tsx', 'runtime/cli/main.ts', ...args].join(' '); // exec: see lag.test.ts
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      cwd: root,
      env: { ...process.env, KAFKA_BROKERS: realBroker().brokers.join(','), LOG_LEVEL: 'warn', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    let answered = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString('utf8');
      if (!answered && output.includes('type "yes"')) {
        answered = true;
        child.stdin.write(`${answer}\n`);
      }
    });
    child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      // Carriage returns and readline's cursor codes are the terminal's, not the command's output.
      // eslint-disable-next-line no-control-regex -- matching the ESC of terminal codes is the point
      resolve({ status, output: output.replace(/\r/g, '').replace(/\x1b\[[0-9;]*[A-Za-z]/g, '') });
    });
  });
}

/** A tag that gives a first visit an id cookie named after the event, keeps it after, and writes localStorage. */
function idExecutor(seen: Array<{ eventId: string; jar: StoredJar | null }>): Executor {
  return (event, jar) => {
    seen.push({ eventId: event.eventId, jar });
    const id = jar?.cookies.find((c) => c.name === '_pid')?.value ?? `secret-${event.eventId}`;
    return Promise.resolve({
      requests: [{ partner: 'p1', method: 'GET', url: `https://collect.p1.example/hit?id=${id}`, headers: {}, body: null, bodyEncoding: 'utf8', transport: 'image' }],
      jar: {
        cookies: [
          { name: '_pid', value: id, domain: '.shop.example', path: '/', expires: -1, httpOnly: false, secure: true, sameSite: 'Lax' },
          { name: 'sess', value: `s-${event.eventId}`, domain: 'collect.p1.example', path: '/', expires: -1, httpOnly: true, secure: true, sameSite: 'None' },
        ],
        localStorage: { 'https://www.shop.example': { p1_id: id, p1_seen: 'yes' } },
      },
      trackers: [{ partner: 'p1', status: 'ok', durationMs: 1, error: null }],
    });
  };
}

function pageView(eventId: string, userId: string): string {
  return JSON.stringify({ eventId, userId, timestamp: new Date().toISOString(), type: 'page_view', page: { url: 'https://www.shop.example/' } });
}

describe('erase (CLI, real broker, processor in process)', function () {
  this.timeout(180_000);
  let client: KafkaClient;
  let settings: Settings;
  let env: NodeJS.ProcessEnv;
  let processor: StreamsHandle;
  let stores: InMemoryStoreProvider;
  const seen: Array<{ eventId: string; jar: StoredJar | null }> = [];

  before(async () => {
    const prefix = uniqueTopic('erase');
    const topics = { events: `${prefix}-events`, cookies: `${prefix}-cookies`, requests: `${prefix}-requests`, requestsDlq: `${prefix}-requests-dlq`, eventsDlq: `${prefix}-events-dlq` };
    settings = loadSettings({ env: {}, flags: { partitions: PARTITIONS, requestPartitions: PARTITIONS, topics, groups: { processor: `${prefix}-processor` }, runner: { sessionTimeoutMs: 10_000 } } });
    env = { TOPIC_EVENTS: topics.events, TOPIC_COOKIES: topics.cookies, TOPIC_REQUESTS: topics.requests, TOPIC_EVENTS_DLQ: topics.eventsDlq, TOPIC_REQUESTS_DLQ: topics.requestsDlq, TOPIC_PARTITIONS: String(PARTITIONS) };
    client = createKafkaClient('platformatic', { brokers: realBroker().brokers, clientId: 'erase-test' });
    const admin = await client.admin();
    // The cookies topic as `topics create` makes it, with a log cleaner that runs within seconds:
    // small segments, any dirty ratio, tombstones kept briefly.
    await admin.createTopics([
      { name: topics.events, partitions: PARTITIONS },
      { name: topics.cookies, partitions: PARTITIONS, configs: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0', 'segment.ms': '200', 'min.cleanable.dirty.ratio': '0.01', 'delete.retention.ms': '100' } },
      { name: topics.requests, partitions: PARTITIONS },
      { name: topics.requestsDlq, partitions: PARTITIONS },
      { name: topics.eventsDlq, partitions: PARTITIONS },
    ]);
    await admin.close();
    stores = new InMemoryStoreProvider();
    processor = await startStreams({
      name: 'processor',
      topology: configuredProcessorTopology(settings, idExecutor(seen)),
      client,
      groupId: settings.groups.processor,
      state: { store: 'custom', provider: stores },
      deadLetters: eventDeadLetters(topics.eventsDlq),
      runner: settings.runner,
      logger: silentLogger(),
      registry: new Registry(),
    });
  });
  after(async function () {
    this.timeout(30_000);
    await processor.stop(5_000).catch(() => undefined);
    await client.close();
  });

  const jarInStore = (userId: string): unknown => stores.store(DEFAULT_COOKIE_STORE, partitionForKey(userId, PARTITIONS)).get(userId);
  const cookieRecords = async (userId: string): Promise<ConsumedRecord[]> => (await readAll(client, settings.topics.cookies, PARTITIONS)).filter((r) => r.key?.toString() === userId);

  it('erase --yes --wait: preview without values, tombstone on the changelog, jar gone from the store and, after compaction, from the topic; the next event starts empty', async () => {
    const producer = await client.producer();
    await producer.send([{ topic: settings.topics.events, key: 'alice', value: pageView('e1', 'alice') }, { topic: settings.topics.events, key: 'bob', value: pageView('b1', 'bob') }]);
    await waitFor('2 events processed', () => processor.status().processed >= 2, 30_000);
    expect(jarInStore('alice'), 'the jar is in the store before').to.not.equal(undefined);

    const run = await cli(['erase', '--user', 'alice', '--yes', '--wait', '--timeout', '60s'], env);
    expect(run.status, run.stderr).to.equal(0);
    expect(run.stdout).to.contain('visitor alice');
    expect(run.stdout).to.match(/cookies \(2\):\n\s+_pid\s+\.shop\.example\n\s+sess\s+collect\.p1\.example/);
    expect(run.stdout).to.match(/localStorage \(1 origins\):\n\s+https:\/\/www\.shop\.example\s+2 keys/);
    expect(run.stdout).to.match(/applied: tombstone at .*-cookies\[\d\]@\d+/);
    expect(run.stdout + run.stderr, 'never a cookie or storage value').to.not.match(/secret-e1|s-e1/);
    const logs = run.stderr.trim().split('\n').map((l) => JSON.parse(l) as { component?: string; msg?: string });
    expect(logs.some((l) => l.component === 'erase' && l.msg === 'erase record written'), 'JSON logs on stderr').to.equal(true);

    expect(jarInStore('alice'), 'the jar is gone from the processor store').to.equal(undefined);
    expect(jarInStore('bob'), 'another visitor keeps theirs').to.not.equal(undefined);
    const after = await cookieRecords('alice');
    expect(after.at(-1)?.value, 'the last changelog record of alice is a tombstone').to.equal(null);

    // The next event of alice runs with no jar: a first visit again, a new id.
    await producer.send([{ topic: settings.topics.events, key: 'alice', value: pageView('e2', 'alice') }]);
    await waitFor('e2 ran', () => seen.some((s) => s.eventId === 'e2'), 30_000);
    expect(seen.find((s) => s.eventId === 'e2')?.jar).to.equal(null);
    expect(seen.find((s) => s.eventId === 'e1')?.jar).to.equal(null);

    // A later write rolls the segment holding the tombstone (segment.ms), so the cleaner can drop
    // the old value; a page view of a visitor on the same partition each round makes sure of it.
    const filler = Array.from({ length: 100 }, (_, i) => `filler-${i}`).find((u) => partitionForKey(u, PARTITIONS) === partitionForKey('alice', PARTITIONS)) as string;
    let round = 0;
    await waitFor('log cleaner removed the erased value', async () => {
      const values = (await cookieRecords('alice')).map((r) => r.value?.toString('utf8') ?? 'null');
      if (values.every((v) => !v.includes('secret-e1'))) return true;
      round += 1;
      await producer.send([{ topic: settings.topics.events, key: filler, value: pageView(`f${round}`, filler) }]);
      return false;
    }, 90_000, 500);
    const remaining = (await cookieRecords('alice')).filter((r) => r.value !== null).map((r) => JSON.parse(r.value!.toString('utf8')) as StoredJar);
    expect(remaining.map((j) => j.cookies.find((c) => c.name === '_pid')?.value), 'only the jar of the new first visit').to.deep.equal(['secret-e2']);
    await producer.close();
  });

  it('a visitor without a jar: the preview says so and the processor still answers with a tombstone; no processor behind the topic: --wait ends at --timeout with exit 1', async () => {
    const nobody = await cli(['erase', '--user', 'nobody-here', '--yes', '--wait'], env);
    expect(nobody.status, nobody.stderr).to.equal(0);
    expect(nobody.stdout).to.contain('no jar on the changelog');
    expect(nobody.stdout).to.match(/applied: tombstone at /);

    // An events topic nobody consumes: the record is written, the tombstone never comes.
    const idle = `${settings.topics.events}-idle`;
    const admin = await client.admin();
    await admin.createTopics([{ name: idle, partitions: PARTITIONS }]);
    await admin.close();
    const late = await cli(['erase', '--user', 'bob', '--yes', '--wait', '--timeout', '2s'], { ...env, TOPIC_EVENTS: idle });
    expect(late.status).to.equal(1);
    expect(late.stdout).to.match(/erase record written: .*-idle\[\d\]@0/);
    expect(late.stderr.trim().split('\n').at(-1)).to.match(/^error: --timeout: the processor did not apply the erasure within 2s/);
    expect(jarInStore('bob'), 'nothing happened to bob').to.not.equal(undefined);
  });

  it('on a terminal it asks: anything but "yes" writes nothing (exit 1), "yes" writes the record', async () => {
    const eventsEnd = async (): Promise<number> => {
      const admin = await client.admin();
      try {
        return (await admin.listEndOffsets(settings.topics.events)).reduce((n, e) => n + e.offset, 0);
      } finally {
        await admin.close();
      }
    };
    const before = await eventsEnd();
    const declined = await ttyCli(['erase', '--user', 'bob'], env, 'no');
    expect(declined.status, declined.output).to.equal(1);
    expect(declined.output).to.match(/visitor bob[\s\S]*erase visitor bob\? type "yes" to go on: no\n[\s\S]*error: not confirmed: nothing was written/);
    expect(await eventsEnd(), 'nothing written').to.equal(before);
    const accepted = await ttyCli(['erase', '--user', 'bob', '--wait'], env, 'yes');
    expect(accepted.status, accepted.output).to.equal(0);
    expect(accepted.output).to.match(/applied: tombstone at /);
    expect(await eventsEnd()).to.equal(before + 1);
    expect(jarInStore('bob')).to.equal(undefined);
  });

  it('without --yes and without a terminal: exit 2 naming --yes, nothing written; bad flags name themselves', async () => {
    const ends = async (): Promise<number[]> => {
      const admin = await client.admin();
      try {
        return (await admin.listEndOffsets(settings.topics.events)).map((e) => e.offset);
      } finally {
        await admin.close();
      }
    };
    const before = await ends();
    const noYes = await cli(['erase', '--user', 'bob'], env);
    expect(noYes.status).to.equal(2);
    expect(noYes.stderr.trim()).to.match(/^error: --yes: /);
    expect(await ends(), 'no erase record written').to.deep.equal(before);
    const noUser = await cli(['erase', '--yes'], env);
    expect(noUser.status).to.equal(2);
    expect(noUser.stderr.trim()).to.match(/^error: --user: /);
    const badTimeout = await cli(['erase', '--user', 'bob', '--yes', '--wait', '--timeout', 'forever'], env);
    expect(badTimeout.status).to.equal(2);
    expect(badTimeout.stderr.trim()).to.match(/^error: --timeout: /);
  });
});
