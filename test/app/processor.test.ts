/**
 * The processor role end to end: the application topology on the runner, with a fake executor
 * (no Chromium): events in → requests + jars out, the second event of a user sees the first jar,
 * malformed events go to the DLQ, a restart restores the jars. On the embedded broker (unit) and
 * once on the real broker (platformatic). Plus the CLI's `run` input errors.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { InvalidInputError } from '../../core/errors.ts';
import { loadSettings, type Settings, type SettingsInput } from '../../runtime/config.ts';
import { startProcessor, type ProcessorHandle } from '../../runtime/roles/index.ts';
import { EmbeddedKafka, createEmbeddedClient } from '../../runtime/kafka/embedded/index.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { ConsumedRecord, KafkaClient } from '../../runtime/kafka/types.ts';
import { createTopics } from '../../runtime/topics.ts';
import type { EventDeadLetter, PageViewEvent, PageViewEventInput, RequestRecord, StoredJar } from '../../core/contracts/index.ts';
import type { Executor } from '../../topology/app/processor.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { readAll, waitFor } from '../runner/helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const PARTITIONS = 3;

/** Counts visits in a first-party cookie, as a real tag keeps its visitor id: what the next event must see. */
function fakeExecutor(seen: Array<{ eventId: string; visits: number | null }>): Executor {
  return async (event, jar) => {
    const visits = jar === null ? null : Number(jar.cookies.find((c) => c.name === 'visits')?.value ?? 0);
    seen.push({ eventId: event.eventId, visits });
    if (event.data && (event.data as { fail?: boolean }).fail) throw new Error('page crashed');
    const next = (visits ?? 0) + 1;
    return {
      requests: [{ partner: 'p1', method: 'GET', url: `https://collect.p1.example/hit?v=${next}`, headers: {}, body: null, bodyEncoding: 'utf8', transport: 'image' }],
      jar: {
        cookies: [{ name: 'visits', value: String(next), domain: 'shop.example', path: '/', expires: -1, httpOnly: false, secure: false, sameSite: 'Lax' }],
        localStorage: {},
      },
      trackers: [{ partner: 'p1', status: 'ok', durationMs: 1, error: null }],
    };
  };
}

function event(eventId: string, userId: string, data: Record<string, unknown> = {}): PageViewEventInput {
  return { eventId, userId, timestamp: '2026-11-29T10:00:00.000Z', type: 'page_view', page: { url: 'https://shop.example/' }, data };
}

function settingsFor(prefix: string, over: SettingsInput = {}): Settings {
  const name = (s: string): string => (prefix === '' ? s : `${prefix}-${s}`);
  return loadSettings({
    env: {},
    flags: {
      partitions: PARTITIONS,
      requestPartitions: PARTITIONS,
      topics: { events: name('events'), cookies: name('cookies'), requests: name('requests'), requestsDlq: name('requests-dlq'), eventsDlq: name('events-dlq') },
      groups: { processor: name('processor') },
      runner: { sessionTimeoutMs: 10_000 },
      ...over,
    },
  });
}

const parse = <T>(r: ConsumedRecord): T => JSON.parse(r.value!.toString('utf8')) as T;

function scenarios(kind: 'embedded' | 'platformatic'): void {
  let clients: KafkaClient[] = [];
  let processors: ProcessorHandle[] = [];
  let stateDirs: string[] = [];
  let newClient: () => KafkaClient;
  let prefix: () => string;

  beforeEach(() => {
    clients = [];
    processors = [];
    stateDirs = [];
    if (kind === 'embedded') {
      const broker = new EmbeddedKafka();
      let n = 0;
      newClient = () => {
        const c = createEmbeddedClient(broker);
        clients.push(c);
        return c;
      };
      prefix = () => `app${(n += 1)}`;
    } else {
      const { brokers } = realBroker();
      newClient = () => {
        const c = createKafkaClient('platformatic', { brokers, clientId: 'app-test' });
        clients.push(c);
        return c;
      };
      prefix = () => uniqueTopic('app');
    }
  });

  afterEach(async function () {
    this.timeout(30_000);
    await Promise.allSettled(processors.map((p) => p.stop(2000)));
    await Promise.allSettled(clients.map((c) => c.close()));
    for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
  });

  const start = async (settings: Settings, executor: Executor): Promise<ProcessorHandle> => {
    const p = await startProcessor({ settings, client: newClient(), executor, registry: new Registry(), now: () => Date.parse('2026-11-29T10:00:01.000Z') });
    processors.push(p);
    return p;
  };

  /** Topics created, a processor on memory stores with the counting fake executor, a producer. */
  const memoryProcessor = async () => {
    const settings = settingsFor(prefix(), { state: { store: 'memory' } });
    const client = newClient();
    const admin = await client.admin();
    await createTopics(admin, settings);
    await admin.close();
    const producer = await client.producer();
    const seen: Array<{ eventId: string; visits: number | null }> = [];
    const processor = await start(settings, fakeExecutor(seen));
    return { settings, client, producer, processor, seen, topics: settings.topics };
  };

  it(`${kind}: events in → one request record per captured request and the new jar; the second event of a user sees the first jar; bad events → DLQ`, async function () {
    this.timeout(60_000);
    const { client, producer, processor, seen, topics } = await memoryProcessor();
    await producer.send([
      { topic: topics.events, key: 'alice', value: JSON.stringify(event('e1', 'alice')) },
      { topic: topics.events, key: 'bob', value: JSON.stringify(event('e2', 'bob')) },
      { topic: topics.events, key: 'alice', value: JSON.stringify(event('e3', 'alice')) },
      { topic: topics.events, key: 'carol', value: '{not json' },
      { topic: topics.events, key: 'dave', value: JSON.stringify({ hello: 'world' }) },
      { topic: topics.events, key: 'erin', value: JSON.stringify(event('e4', 'erin', { fail: true })) },
    ]);
    await waitFor('6 events processed', () => processor.status().processed >= 6, 30_000);

    expect(seen.filter((s) => s.eventId === 'e1')).to.deep.equal([{ eventId: 'e1', visits: null }]);
    expect(seen.filter((s) => s.eventId === 'e3'), 'the second event of alice sees the jar of the first').to.deep.equal([{ eventId: 'e3', visits: 1 }]);
    expect(seen.filter((s) => s.eventId === 'e4'), 'an executor failure is retried once').to.have.length(2);

    const requests = (await readAll(client, topics.requests, PARTITIONS)).map((r) => parse<RequestRecord>(r));
    expect(requests.map((r) => r.idempotencyKey).sort()).to.deep.equal(['e1:p1:0', 'e2:p1:0', 'e3:p1:0']);
    expect(requests.find((r) => r.eventId === 'e3')).to.include({ userId: 'alice', url: 'https://collect.p1.example/hit?v=2' });

    const jars = await readAll(client, topics.cookies, PARTITIONS);
    const aliceJars = jars.filter((r) => r.key?.toString() === 'alice').map((r) => parse<StoredJar>(r));
    expect(aliceJars.map((j) => [j.version, j.cookies[0]?.value])).to.deep.equal([[1, '1'], [2, '2']]);
    expect(aliceJars[0]?.updatedAt).to.equal('2026-11-29T10:00:01.000Z');
    // Jars are in the partition of the store that holds them: the partition of the user's events.
    const events = await readAll(client, topics.events, PARTITIONS);
    const eventPartition = new Map(events.map((r) => [r.key?.toString(), r.partition]));
    for (const jar of jars) expect(jar.partition, `jar of ${jar.key?.toString()}`).to.equal(eventPartition.get(jar.key?.toString()));

    const dlq = await readAll(client, topics.eventsDlq, PARTITIONS);
    const letters = dlq.map((r) => ({ key: r.key?.toString(), value: parse<EventDeadLetter & { event?: PageViewEvent }>(r) }));
    const byKey = new Map(letters.map((l) => [l.key, l.value]));
    expect(byKey.get('carol')).to.include({ reason: 'invalid-event', code: 'ERR_INVALID_INPUT', value: Buffer.from('{not json').toString('base64') });
    expect(byKey.get('dave')).to.include({ reason: 'invalid-event', code: 'ERR_INVALID_INPUT' });
    expect(byKey.get('dave')?.error).to.match(/eventId/);
    expect(byKey.get('erin')).to.include({ reason: 'executor-failed', attempts: 2 });
    expect(letters).to.have.length(3);
    await producer.close();
  });

  it(`${kind}: control records in the visitor's order: erase empties the jar (tombstone on the changelog, also after a restart and restore); jar-merge cookies reach the next page view`, async function () {
    this.timeout(60_000);
    const dir = mkdtempSync(join(tmpdir(), 'app-control-'));
    stateDirs.push(dir);
    const settings = settingsFor(prefix(), { state: { store: 'lmdb', dir, noSync: true } });
    const client = newClient();
    const admin = await client.admin();
    await createTopics(admin, settings);
    await admin.close();
    const producer = await client.producer();
    const { topics } = settings;
    const seen: Array<{ eventId: string; visits: number | null }> = [];
    const cookiesSeen = new Map<string, string[]>();
    const base = fakeExecutor(seen);
    const executor: Executor = (ev, jar, signal) => {
      cookiesSeen.set(ev.eventId, (jar?.cookies ?? []).map((c) => `${c.name}=${c.value}`).sort());
      // As a browser: the cookies it was given stay in its jar unless the tag replaces them.
      return base(ev, jar, signal).then((result) => {
        const names = new Set(result.jar.cookies.map((c) => c.name));
        return { ...result, jar: { ...result.jar, cookies: [...(jar?.cookies ?? []).filter((c) => !names.has(c.name)), ...result.jar.cookies] } };
      });
    };
    const first = await start(settings, executor);
    const partnerCookie = { name: 'pid', value: 'partner-42', domain: 'collect.p1.example', path: '/', expires: -1, httpOnly: true, secure: true, sameSite: 'None' as const };
    await producer.send([
      { topic: topics.events, key: 'alice', value: JSON.stringify(event('c1', 'alice')) },
      { topic: topics.events, key: 'alice', value: JSON.stringify({ type: 'jar-merge', cookies: [partnerCookie], partner: 'p1' }) },
      { topic: topics.events, key: 'alice', value: JSON.stringify(event('c2', 'alice')) },
      { topic: topics.events, key: 'bob', value: JSON.stringify(event('c3', 'bob')) },
      { topic: topics.events, key: 'bob', value: JSON.stringify({ type: 'erase' }) },
    ]);
    await waitFor('5 records processed', () => first.status().processed >= 5, 30_000);
    expect(cookiesSeen.get('c2'), 'the merged partner cookie is in the next page view of alice').to.deep.equal(['pid=partner-42', 'visits=1']);
    expect(seen.find((s) => s.eventId === 'c2')?.visits).to.equal(1);
    const jars = await readAll(client, topics.cookies, PARTITIONS);
    const bobJars = jars.filter((r) => r.key?.toString() === 'bob');
    expect(bobJars.map((r) => (r.value === null ? null : parse<StoredJar>(r).version)), 'a jar, then the tombstone').to.deep.equal([1, null]);
    const aliceVersions = jars.filter((r) => r.key?.toString() === 'alice').map((r) => parse<StoredJar>(r).version);
    expect(aliceVersions, 'page view, merge, page view: one jar version each').to.deep.equal([1, 2, 3]);
    await first.stop(5000);

    // A restart restores the stores: bob's next event starts with an empty jar, alice keeps hers.
    const second = await start(settings, executor);
    await producer.send([
      { topic: topics.events, key: 'bob', value: JSON.stringify(event('c4', 'bob')) },
      { topic: topics.events, key: 'alice', value: JSON.stringify(event('c5', 'alice')) },
    ]);
    await waitFor('2 processed', () => second.status().processed >= 2, 30_000);
    expect(seen.find((s) => s.eventId === 'c4')?.visits, 'erased: a first visit again').to.equal(null);
    expect(cookiesSeen.get('c4')).to.deep.equal([]);
    expect(cookiesSeen.get('c5')).to.deep.equal(['pid=partner-42', 'visits=2']);
    await producer.close();
  });

  it(`${kind}: a malformed event is dead-lettered as invalid at once, never run nor retried`, async function () {
    this.timeout(60_000);
    const { client, producer, processor, seen, topics } = await memoryProcessor();
    const bad = { ...event('m1', 'mallory'), page: { url: 'javascript:alert(1)' } };
    await producer.send([
      { topic: topics.events, key: 'mallory', value: JSON.stringify(bad) },
      { topic: topics.events, key: 'mallory', value: JSON.stringify({ type: 'jar-merge', cookies: [] }) },
      { topic: topics.events, key: 'trent', value: JSON.stringify(event('m2', 'someone-else')) },
      { topic: topics.events, key: 'mallory', value: JSON.stringify(event('m3', 'mallory')) },
    ]);
    await waitFor('4 processed', () => processor.status().processed >= 4, 30_000);
    expect(seen.map((s) => s.eventId), 'only the valid event ran, once').to.deep.equal(['m3']);
    const letters = (await readAll(client, topics.eventsDlq, PARTITIONS)).map((r) => parse<EventDeadLetter>(r));
    expect(letters.map((l) => [l.reason, l.code, l.attempts])).to.deep.equal([
      ['invalid-event', 'ERR_INVALID_INPUT', 0],
      ['invalid-event', 'ERR_INVALID_INPUT', 0],
      ['invalid-event', 'ERR_INVALID_INPUT', 0],
    ]);
    expect(letters.map((l) => l.error).sort()).to.satisfy((errors: string[]) =>
      errors.some((e) => e.startsWith('event.page.url:')) && errors.some((e) => e.startsWith('event.cookies:')) && errors.some((e) => e.startsWith('event.userId:')),
    );
    for (const l of letters) expect(l.source.topic).to.equal(topics.events);
    await producer.close();
  });

  it(`${kind}: one tag cannot stop the processor: a hog's 4 MB jar is cut to the budget, a 2 MB request body is dead-lettered, everyone else goes on`, async function () {
    this.timeout(60_000);
    const settings = settingsFor(prefix(), { state: { store: 'memory' } });
    const client = newClient();
    const admin = await client.admin();
    await createTopics(admin, settings);
    await admin.close();
    const producer = await client.producer();
    const seen: Array<{ eventId: string; visits: number | null }> = [];
    const base = fakeExecutor(seen);
    const big = 'x'.repeat(1024 * 1024);
    const executor: Executor = async (ev, jar, signal) => {
      const result = await base(ev, jar, signal);
      if (ev.userId === 'hog') {
        // The hog tag of the defect: 4 x 1 MB of localStorage and 60 cookies of 3 KB.
        result.jar.localStorage['https://shop.example'] = { k0: big, k1: big, k2: big, k3: big, id: 'hog-id' };
        for (let j = 0; j < 60; j += 1) result.jar.cookies.push({ name: `c${j}`, value: 'z'.repeat(3000), domain: 'shop.example', path: '/', expires: -1, httpOnly: false, secure: false, sameSite: 'Lax' });
      }
      if (ev.userId === 'poster') {
        result.requests.push({ partner: 'p2', method: 'POST', url: 'https://collect.p2.example/batch', headers: {}, body: 'b'.repeat(2 * 1024 * 1024), bodyEncoding: 'utf8', transport: 'fetch' });
      }
      return result;
    };
    const processor = await start(settings, executor);
    const { topics } = settings;
    await producer.send([
      { topic: topics.events, key: 'hog', value: JSON.stringify(event('h1', 'hog')) },
      { topic: topics.events, key: 'poster', value: JSON.stringify(event('p1', 'poster')) },
      { topic: topics.events, key: 'alice', value: JSON.stringify(event('a1', 'alice')) },
      { topic: topics.events, key: 'hog', value: JSON.stringify(event('h2', 'hog')) },
    ]);
    await waitFor('4 events processed', () => processor.status().processed >= 4, 30_000);
    expect(processor.status().state, 'still running').to.equal('running');
    const jars = await readAll(client, topics.cookies, PARTITIONS);
    const hogJars = jars.filter((r) => r.key?.toString() === 'hog');
    expect(hogJars).to.have.length(2);
    for (const r of hogJars) expect(r.value!.length, 'a stored jar within limits.jar.jarBytes').to.be.at.most(settings.limits.jar.jarBytes + 100);
    const lastHog = parse<StoredJar>(hogJars[1]!);
    expect(lastHog.localStorage['https://shop.example']?.id, 'the small id survives').to.equal('hog-id');
    expect(lastHog.cookies.find((c) => c.name === 'visits')?.value, 'the visit counter survives').to.equal('2');
    expect(seen.find((s) => s.eventId === 'h2')?.visits).to.equal(1);
    const requests = (await readAll(client, topics.requests, PARTITIONS)).map((r) => parse<RequestRecord>(r));
    expect(requests.map((r) => r.idempotencyKey).sort(), 'every request but the oversize one').to.deep.equal(['a1:p1:0', 'h1:p1:0', 'h2:p1:0', 'p1:p1:0']);
    const letters = (await readAll(client, topics.eventsDlq, PARTITIONS)).map((r) => parse<EventDeadLetter>(r));
    expect(letters.map((l) => [l.reason, l.code])).to.deep.equal([['output-too-large', 'ERR_KAFKA_RECORD_TOO_LARGE']]);
    expect(letters[0]?.error).to.contain(`${2 * 1024 * 1024} bytes`);
    await producer.close();
  });

  it(`${kind}: a jar budget that cannot fit in a record of the cookie topic is refused at start, naming the setting`, async function () {
    this.timeout(30_000);
    const settings = settingsFor(prefix(), { state: { store: 'memory' } });
    const client = newClient();
    const admin = await client.admin();
    const { topics } = settings;
    await admin.createTopics([
      { name: topics.events, partitions: PARTITIONS },
      { name: topics.cookies, partitions: PARTITIONS, configs: { 'cleanup.policy': 'compact', 'max.message.bytes': '100000' } },
      { name: topics.requests, partitions: PARTITIONS },
      { name: topics.eventsDlq, partitions: PARTITIONS },
    ]);
    await admin.close();
    const error = await start(settings, fakeExecutor([])).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(InvalidInputError);
    expect((error as InvalidInputError).context.field).to.equal('limits.jar.jarBytes (LIMIT_JAR_BYTES)');
    expect((error as Error).message).to.contain('max.message.bytes 100000');
  });

  it(`${kind}: lmdb stores: a restarted processor restores the jars (only the changelog after its checkpoint) and goes on from them`, async function () {
    this.timeout(60_000);
    const dir = mkdtempSync(join(tmpdir(), 'app-state-'));
    stateDirs.push(dir);
    const settings = settingsFor(prefix(), { state: { store: 'lmdb', dir, noSync: true } });
    const client = newClient();
    const admin = await client.admin();
    await createTopics(admin, settings);
    const producer = await client.producer();
    const { topics } = settings;
    const seen: Array<{ eventId: string; visits: number | null }> = [];
    const first = await start(settings, fakeExecutor(seen));
    await producer.send([1, 2, 3].map((i) => ({ topic: topics.events, key: 'alice', value: JSON.stringify(event(`a${i}`, 'alice')) })));
    await waitFor('3 processed', () => first.status().processed >= 3, 30_000);
    await first.stop(5000);
    const committed = (await admin.listCommittedOffsets(settings.groups.processor, topics.events)).reduce((n, o) => n + Math.max(0, o.offset), 0);
    expect(committed, 'the runner committed its watermarks').to.equal(3);

    const second = await start(settings, fakeExecutor(seen));
    await producer.send([{ topic: topics.events, key: 'alice', value: JSON.stringify(event('a4', 'alice')) }]);
    await waitFor('1 processed', () => second.status().processed >= 1, 30_000);
    expect(seen.map((s) => s.visits)).to.deep.equal([null, 1, 2, 3]);
    // Everything was checkpointed at the first one's commits: nothing left to re-read.
    const restored = second.runner.restoreProgress();
    expect(restored.every((p) => p.done && p.position === p.endOffset), JSON.stringify(restored)).to.equal(true);
    const alicePartition = restored.find((p) => p.endOffset === 3);
    expect(alicePartition, JSON.stringify(restored)).to.not.equal(undefined);
    await admin.close();
    await producer.close();
  });
}

describe('processor role (runtime/roles/processor.ts)', () => {
  describe('embedded broker, fake executor', () => scenarios('embedded'));
  describe('real broker (platformatic), fake executor', () => scenarios('platformatic'));

  describe('CLI: run', function () {
    this.timeout(30_000);
    const run = (args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } => {
      const result = spawnSync(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', 'run', ...args], {
        cwd: root,
        env: { ...process.env, KAFKA_BROKERS: '', PARTNERS_FILE: '', ...env },
        encoding: 'utf8',
        timeout: 20_000,
      });
      return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    };

    it('without --partners: exit 2 with a one-line reason, before any broker or browser starts', () => {
      const { status, stdout, stderr } = run([]);
      expect(status).to.equal(2);
      expect(stdout).to.equal('');
      expect(stderr.trim().split('\n')).to.have.length(1);
      expect(stderr).to.match(/^error: --partners: the processor needs the partner configurations/);
    });

    it('an unreadable or invalid partners file: exit 2 naming the field', () => {
      const missing = run(['processor', '--partners', '/nonexistent/partners.json']);
      expect(missing.status).to.equal(2);
      expect(missing.stderr).to.match(/--partners: cannot read \/nonexistent\/partners.json \(ENOENT\)/);
      const invalid = run(['--partners', join(root, 'package.json')]);
      expect(invalid.status).to.equal(2);
      expect(invalid.stderr).to.match(/^error: partners/);
    });

    it('an unknown role: exit 2 with a one-line reason naming the roles there are', () => {
      const { status, stderr } = run(['dispatch', '--partners', join(root, 'examples/partners.example.json')]);
      expect(status).to.equal(2);
      expect(stderr.trim().split('\n')).to.have.length(1);
      expect(stderr).to.contain('roles: unknown role "dispatch" (expected collector, processor, dispatcher, all)');
    });
  });
});
