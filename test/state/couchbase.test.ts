/**
 * The Couchbase jar cache against a real CouchbaseMock (Maven Central) with the couchbase 4.7.1
 * SDK: how the SDK reaches the mock (and what does not work), the processor writing jars through
 * to it (with TTL) and deleting them on erase, the read API (library and HTTP), an outage that the
 * processor does not notice, and the queue bound. The processor runs in-process on the embedded
 * broker with a fake executor (no Chromium), as in test/app/processor.test.ts.
 */
import { expect } from 'chai';
import { connect, type Cluster, type Collection } from 'couchbase';
import { Registry } from 'prom-client';
import { Writable } from 'node:stream';
import { JarCacheUnavailableError } from '../../core/errors.ts';
import { createRootLogger } from '../../core/log.ts';
import type { PageViewEventInput, StoredJar } from '../../core/contracts/index.ts';
import { loadSettings, type Settings, type SettingsInput } from '../../runtime/config.ts';
import { EmbeddedKafka, createEmbeddedClient } from '../../runtime/kafka/embedded/index.ts';
import type { KafkaClient, KafkaProducer } from '../../runtime/kafka/types.ts';
import { createProcessorRole, startProcessor, type ProcessorHandle, type Role } from '../../runtime/roles/index.ts';
import { startRoles } from '../../runtime/roles/compose.ts';
import { jarReadRoute } from '../../runtime/roles/jar-cache.ts';
import { startHttpServer } from '../../runtime/http/server.ts';
import { createTopics } from '../../runtime/topics.ts';
import { openJarCache, readJar, jarDocumentKey, type JarCache } from '../../state/couchbase.ts';
import type { Executor } from '../../topology/app/processor.ts';
import { startCouchbaseMock, type CouchbaseMock } from '../helpers/couchbase.ts';
import { waitFor } from '../runner/helpers.ts';

/** A tag that counts visits in a first-party cookie (its value is what the cache must carry). */
const countingExecutor: Executor = async (_event, jar) => {
  const visits = Number(jar?.cookies.find((c) => c.name === 'visits')?.value ?? 0) + 1;
  return {
    requests: [{ partner: 'p1', method: 'GET', url: `https://collect.p1.example/hit?v=${visits}`, headers: {}, body: null, bodyEncoding: 'utf8', transport: 'image' }],
    jar: { cookies: [{ name: 'visits', value: String(visits), domain: 'shop.example', path: '/', expires: -1, httpOnly: false, secure: false, sameSite: 'Lax' }], localStorage: {} },
    trackers: [{ partner: 'p1', status: 'ok', durationMs: 1, error: null }],
  };
};

const event = (eventId: string, userId: string): PageViewEventInput => ({ eventId, userId, timestamp: '2026-11-29T10:00:00.000Z', type: 'page_view', page: { url: 'https://shop.example/' } });

const visits = (jar: StoredJar | null): string | undefined => jar?.cookies.find((c) => c.name === 'visits')?.value;

async function sdkCollection(mock: CouchbaseMock): Promise<{ cluster: Cluster; collection: Collection }> {
  const cluster = await connect(mock.connectionString, { username: mock.username, password: mock.password, timeouts: { kvTimeout: 2000, bootstrapTimeout: 10_000 } });
  return { cluster, collection: cluster.bucket(mock.bucket).defaultCollection() };
}

/** Sums a counter's samples matching `labels` (prom-client's own view of the registry). */
async function counterValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}

describe('Couchbase jar cache settings and wiring', () => {
  it('is off by default and refuses half a configuration, naming the field', () => {
    const defaults = loadSettings({ env: {} }).couchbase;
    expect(defaults.connectionString, 'no connection string: no cache').to.equal(undefined);
    expect(defaults).to.include({ httpReads: false, ttlSeconds: 604_800, queueBound: 10_000 });
    expect(() => loadSettings({ env: { COUCHBASE_HTTP_READS: 'true' } })).to.throw(/couchbase\.httpReads \(COUCHBASE_HTTP_READS\): needs couchbase\.connectionString/);
    expect(() => loadSettings({ env: { COUCHBASE_CONNECTION_STRING: 'couchbase://cb', COUCHBASE_USERNAME: 'u' } })).to.throw(/couchbase\.password \(COUCHBASE_PASSWORD\): username and password go together/);
    expect(() => loadSettings({ env: { COUCHBASE_CONNECTION_STRING: 'http://cb:8091' } })).to.throw(/couchbase\.connectionString .*couchbase:\/\//);
    expect(() => loadSettings({ env: { COUCHBASE_CONNECTION_STRING: 'couchbase://cb', COUCHBASE_QUEUE_BOUND: '0' } })).to.throw(/couchbase\.queueBound \(COUCHBASE_QUEUE_BOUND\)/);
  });

  it('serves GET /jars/:userId on the process endpoint only with couchbase.httpReads', async () => {
    const base = { connectionString: 'couchbase://127.0.0.1:1' };
    const role = (httpReads: boolean) =>
      createProcessorRole({ settings: loadSettings({ env: {}, flags: { couchbase: { ...base, httpReads } } }), client: createEmbeddedClient(new EmbeddedKafka()), partners: [] });
    expect(role(false).routes, 'off unless asked for: the route returns cookie values').to.equal(undefined);
    const on = role(true);
    expect(on.routes?.map((r) => r.prefix)).to.deep.equal(['/jars/']);
    // The composition serves a role's routes beside /health, /ready and /metrics (not started: the cache is not open yet).
    let stopped!: () => void;
    const closed = new Promise<void>((resolve) => (stopped = resolve));
    const stub: Role = { name: 'processor', closed, routes: on.routes, start: async () => undefined, stop: async () => stopped(), readiness: () => ({ ready: true, reasons: [] }) };
    const running = await startRoles([stub], { metrics: { host: '127.0.0.1', port: 0 }, port: 0, signals: [], registry: new Registry(), logger: createRootLogger({ level: 'silent' }) });
    try {
      const res = await fetch(`http://127.0.0.1:${running.address?.port}/jars/alice`);
      expect(res.status).to.equal(503);
      expect(await res.json()).to.deep.equal({ error: { code: 'ERR_JAR_CACHE_UNAVAILABLE', reason: 'the processor has not started its cache yet' } });
      expect((await fetch(`http://127.0.0.1:${running.address?.port}/jarsx`)).status, 'only under the prefix').to.equal(404);
    } finally {
      await running.stop().catch(() => undefined);
    }
  });
});

describe('Couchbase jar cache on CouchbaseMock (couchbase SDK 4.7.1)', function () {
  this.timeout(60_000);

  describe('how the SDK reaches the mock', () => {
    it('bootstraps on the key-value port of a mock started with --cccp: upsert with expiry, get, remove', async () => {
      const mock = await startCouchbaseMock();
      try {
        const { cluster, collection } = await sdkCollection(mock);
        await collection.upsert('probe', { ok: true }, { expiry: 60 });
        expect((await collection.get('probe')).content).to.deep.equal({ ok: true });
        await collection.remove('probe');
        await cluster.close();
      } finally {
        await mock.stop();
      }
    });

    it('cannot bootstrap without --cccp: connect fails with protocol_error (1004)', async () => {
      const mock = await startCouchbaseMock({ cccp: false });
      try {
        const error = await connect(mock.connectionString, { username: mock.username, password: mock.password, timeouts: { bootstrapTimeout: 5000 } }).then(
          (cluster) => cluster.close().then(() => undefined),
          (e: unknown) => e as Error,
        );
        expect(error, 'the SDK bootstrapped without carrier publication: update docs/couchbase.md').to.be.instanceOf(Error);
        expect(error?.message).to.equal('protocol_error (1004)');
      } finally {
        await mock.stop();
      }
    });

    it('cannot bootstrap on the REST port: the connection times out', async () => {
      const mock = await startCouchbaseMock();
      try {
        const error = await connect(`couchbase://127.0.0.1:${mock.restPort}`, { username: mock.username, password: mock.password, timeouts: { bootstrapTimeout: 2000, connectTimeout: 2000 } }).then(
          (cluster) => cluster.close().then(() => undefined),
          (e: unknown) => e as Error,
        );
        expect(error?.constructor.name).to.equal('UnambiguousTimeoutError');
      } finally {
        await mock.stop();
      }
    });
  });

  describe('the processor writes jars through', () => {
    let mock: CouchbaseMock;
    let sdk: { cluster: Cluster; collection: Collection };
    let clients: KafkaClient[];
    let processors: ProcessorHandle[];
    let n = 0;

    before(async () => {
      mock = await startCouchbaseMock();
      sdk = await sdkCollection(mock);
    });
    after(async () => {
      await sdk?.cluster.close();
      await mock?.stop();
    });
    beforeEach(() => {
      clients = [];
      processors = [];
    });
    afterEach(async () => {
      await Promise.allSettled(processors.map((p) => p.stop(2000)));
      await Promise.allSettled(clients.map((c) => c.close()));
    });

    const couchbaseOf = (m: CouchbaseMock, over: SettingsInput['couchbase'] = {}): SettingsInput['couchbase'] => ({
      connectionString: m.connectionString,
      bucket: m.bucket,
      username: m.username,
      password: m.password,
      ...over,
    });

    const processor = async (couchbase: SettingsInput['couchbase'], registry = new Registry(), logger = createRootLogger({ level: 'silent' })) => {
      const prefix = `cb${(n += 1)}`;
      const settings: Settings = loadSettings({
        env: {},
        flags: {
          partitions: 2,
          requestPartitions: 2,
          topics: { events: `${prefix}-events`, cookies: `${prefix}-cookies`, requests: `${prefix}-requests`, requestsDlq: `${prefix}-rdlq`, eventsDlq: `${prefix}-edlq` },
          groups: { processor: `${prefix}-processor` },
          state: { store: 'memory' },
          couchbase,
        },
      });
      const client = createEmbeddedClient(new EmbeddedKafka());
      clients.push(client);
      const admin = await client.admin();
      await createTopics(admin, settings);
      await admin.close();
      const handle = await startProcessor({ settings, client, executor: countingExecutor, registry, logger });
      processors.push(handle);
      const producer: KafkaProducer = await client.producer();
      const send = (key: string, value: unknown) => producer.send([{ topic: settings.topics.events, key, value: JSON.stringify(value) }]);
      return { handle, send, registry, settings };
    };

    it('a new jar is in Couchbase after the processor handled the event, with the TTL as document expiry; erase deletes it', async () => {
      const user = `alice-${Date.now()}`;
      const { handle, send } = await processor(couchbaseOf(mock, { ttlSeconds: 3600 }));
      expect(handle.jarCache, 'a connection string turns the cache on').to.not.equal(undefined);

      await send(user, event('e1', user));
      await waitFor('the first jar in Couchbase', async () => visits(await readJar(sdk.collection, user)) === '1');
      await send(user, event('e2', user));
      await waitFor('the second jar in Couchbase', async () => visits(await readJar(sdk.collection, user)) === '2');
      const cached = await readJar(sdk.collection, user);
      expect(cached).to.include({ version: 2 });
      expect((await sdk.collection.get(jarDocumentKey(user))).content, 'the document is the tracking.cookies value').to.deep.equal(cached);

      // Erase: gone at once (long before its TTL, the mock's clock has not moved).
      await send(user, { type: 'erase' });
      await waitFor('the erased jar gone from Couchbase', async () => (await readJar(sdk.collection, user)) === null, 5000);

      // The mock's clock moves; the document expires ttlSeconds after its last write.
      const other = `bob-${Date.now()}`;
      await send(other, event('e3', other));
      await waitFor('bob in Couchbase', async () => (await readJar(sdk.collection, other)) !== null);
      // A margin of 10 s each side: the mock's clock also runs with wall time (the write, the
      // poll that saw it and each command take some) and counts expiry in whole seconds; with
      // 1 s (3599 then +2) a loaded CI machine saw the document gone "one second before the TTL".
      await mock.timeTravel(3590);
      expect(await readJar(sdk.collection, other), '10 s before the TTL').to.not.equal(null);
      await mock.timeTravel(20);
      expect(await readJar(sdk.collection, other), '10 s after the TTL').to.equal(null);
    });

    it('Couchbase stopped: every event is still processed, the failures are counted and logged once per error kind', async () => {
      const outage = await startCouchbaseMock();
      const lines: Array<Record<string, unknown>> = [];
      const sink = new Writable({
        write(chunk: Buffer, _encoding: BufferEncoding, done: () => void) {
          for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
          done();
        },
      });
      const logger = createRootLogger({ level: 'info', destination: sink });
      const { handle, send, registry } = await processor(couchbaseOf(outage, { timeoutMs: 300 }), new Registry(), logger);
      const user = `carol-${Date.now()}`;
      await send(user, event('c1', user));
      await waitFor('the cache write before the outage', async () => (await counterValue(registry, 'tagstream_jar_cache_writes_total', { op: 'upsert', result: 'ok' })) === 1);

      await outage.kill();
      for (let i = 0; i < 5; i++) await send(`${user}-${i}`, event(`c2-${i}`, `${user}-${i}`));
      await waitFor('6 events processed during the outage', () => handle.status().processed >= 6, 30_000);
      await waitFor('failed cache writes counted', async () => (await counterValue(registry, 'tagstream_jar_cache_failures_total', { op: 'upsert' })) >= 2, 30_000);
      expect(await counterValue(registry, 'tagstream_jar_cache_writes_total', { op: 'upsert', result: 'error' })).to.be.at.least(2);

      const warned = lines.filter((l) => l.msg === 'jar cache write failed: counted and retried, the event is not affected');
      expect(warned.map((l) => `${String(l.op)}:${String(l.error)}`), 'one line per error kind, not one per failure').to.deep.equal([...new Set(warned.map((l) => `${String(l.op)}:${String(l.error)}`))]);
      expect(warned.length).to.be.at.least(1);
      expect(JSON.stringify(lines), 'no cookie value in the logs').to.not.include('"visits"');
    });

    it('the read API: readJar for services with their own connection, JarCache.read, and GET /jars/:userId', async () => {
      const registry = new Registry();
      const cache: JarCache = openJarCache({ ...loadSettings({ env: {}, flags: { couchbase: couchbaseOf(mock) } }).couchbase, connectionString: mock.connectionString }, { registry });
      try {
        const user = `dave-${Date.now()}`;
        const jar: StoredJar = { cookies: [{ name: 'visits', value: '7', domain: 'shop.example', path: '/', expires: -1, httpOnly: false, secure: false, sameSite: 'Lax' }], localStorage: {}, version: 7, updatedAt: '2026-11-29T10:00:00.000Z' };
        cache.write(user, jar);
        await waitFor('the write', async () => (await readJar(sdk.collection, user)) !== null);
        expect(await cache.read(user)).to.deep.equal(jar);
        expect(await cache.read(`nobody-${Date.now()}`)).to.equal(null);
        expect(await counterValue(registry, 'tagstream_jar_cache_reads_total', { result: 'hit' })).to.equal(1);
        expect(await counterValue(registry, 'tagstream_jar_cache_reads_total', { result: 'miss' })).to.equal(1);

        let current: JarCache | undefined;
        const server = await startHttpServer(new Registry(), { host: '127.0.0.1', port: 0, routes: [jarReadRoute(() => current)] });
        try {
          const get = async (path: string) => {
            const res = await fetch(`http://127.0.0.1:${server.address.port}${path}`);
            return { status: res.status, body: (await res.json()) as Record<string, unknown> };
          };
          expect((await get(`/jars/${user}`)).status, 'before the processor opened its cache').to.equal(503);
          current = cache;
          expect(await get(`/jars/${encodeURIComponent(user)}`)).to.deep.equal({ status: 200, body: { userId: user, jar } });
          expect(await get('/jars/nobody')).to.deep.equal({ status: 404, body: { userId: 'nobody', jar: null } });
          expect((await get('/jars/%E0%A4%A')).status).to.equal(400);
        } finally {
          await server.close();
        }
      } finally {
        await cache.close();
      }
    });
  });

  it('the queue bound holds while Couchbase is unreachable: the oldest upserts are dropped and counted, erasures kept', async () => {
    const registry = new Registry();
    // Nothing listens there: the cache keeps trying to connect in the background.
    const unreachable = { ...loadSettings({ env: {}, flags: { couchbase: { connectionString: 'couchbase://127.0.0.1:1', queueBound: 5, timeoutMs: 200 } } }).couchbase, connectionString: 'couchbase://127.0.0.1:1' };
    const cache = openJarCache(unreachable, { registry, logger: createRootLogger({ level: 'silent' }) });
    try {
      cache.write('erased', null);
      for (let i = 0; i < 20; i++) cache.write(`u${i}`, '{"cookies":[],"localStorage":{},"version":1,"updatedAt":"2026-11-29T10:00:00.000Z"}');
      expect(cache.status()).to.deep.equal({ connected: false, queued: 5, inFlight: 0 });
      expect(await counterValue(registry, 'tagstream_jar_cache_dropped_total', { op: 'upsert', reason: 'queue-full' })).to.equal(16);
      expect(await counterValue(registry, 'tagstream_jar_cache_dropped_total', { op: 'remove' }), 'the erasure is never the one dropped').to.equal(0);
      const error = await cache.read('u19').then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(JarCacheUnavailableError).and.include({ code: 'ERR_JAR_CACHE_UNAVAILABLE' });
    } finally {
      await cache.close(100);
    }
    expect(await counterValue(registry, 'tagstream_jar_cache_dropped_total', { reason: 'closed' }), 'what was still queued at close is counted').to.equal(5);
  });
});
