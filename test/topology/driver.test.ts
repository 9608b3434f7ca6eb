import { expect } from 'chai';
import { Subject, toArray, lastValueFrom } from 'rxjs';
import { TagstreamError } from '../../core/errors.ts';
import { TopologyEngine, TopologyTestDriver, topology, type InputRecord } from '../../topology/index.ts';
import { processorTopology as applicationTopology } from '../../topology/app/processor.ts';
import { InMemoryStoreProvider } from '../../state/memory.ts';
import {
  parseEvent,
  type EventDeadLetter,
  type ExecuteResult as ExecutionResult,
  type PageViewEvent,
  type RequestRecord,
  type StoredJar,
} from '../../core/contracts/index.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function event(userId: string, n: number): PageViewEvent {
  // A valid event of the contract (the processor topology validates each record), defaults filled.
  return parseEvent({ eventId: `${userId}-e${n}`, userId, timestamp: '2026-11-29T10:00:00.000Z', type: 'page_view', page: { url: 'https://shop.example/' }, n });
}

describe('topology engine and test driver', () => {
  it('runs mapValues, filter, flatMapValues and branch depth-first', async () => {
    const b = topology();
    const [small, big] = b
      .stream<number>('numbers')
      .filter((n) => n >= 0)
      .mapValues((n) => n * 10)
      .branch([(n) => n < 50, () => true]);
    small?.flatMapValues((n) => [n, n + 1]).to('small');
    big?.to('big');
    const driver = new TopologyTestDriver(b.build());
    await driver.pipeInput('numbers', 'k', 1);
    await driver.pipeInput('numbers', 'k', -1);
    await driver.pipeInput('numbers', 'k', 7);
    expect(driver.outputs('small').map((o) => o.value)).to.deep.equal([10, 11]);
    expect(driver.outputs('big').map((o) => o.value)).to.deep.equal([70]);
    expect(driver.outputs().every((o) => o.key === 'k')).to.equal(true);
    await driver.close();
  });

  it('left join gives null without a table value, the value after one was piped, null after a tombstone', async () => {
    const b = topology();
    const jars = b.table<{ v: number }>('jars', 'jar-store');
    b.stream<string>('events')
      .leftJoin(jars, (e, jar) => ({ e, jar }))
      .to('joined');
    const driver = new TopologyTestDriver(b.build());
    await driver.pipeInput('events', 'u1', 'first');
    await driver.pipeInput('jars', 'u1', { v: 1 });
    await driver.pipeInput('events', 'u1', 'second');
    await driver.pipeInput('events', 'u2', 'other user');
    await driver.pipeInput('jars', 'u1', null);
    await driver.pipeInput('events', 'u1', 'third');
    expect(driver.outputs('joined').map((o) => o.value)).to.deep.equal([
      { e: 'first', jar: null },
      { e: 'second', jar: { v: 1 } },
      { e: 'other user', jar: null },
      { e: 'third', jar: null },
    ]);
    await driver.close();
  });

  it('process(): same-key records never run concurrently and run in offset order; concurrency is bounded', async () => {
    const running = new Set<string>();
    const seen = new Map<string, number[]>();
    let active = 0;
    let maxActive = 0;
    const b = topology();
    b.stream<number>('in')
      .process(
        'slow',
        async (n, ctx) => {
          const key = ctx.key as string;
          expect(running.has(key), `key ${key} ran concurrently`).to.equal(false);
          running.add(key);
          active += 1;
          maxActive = Math.max(maxActive, active);
          await sleep(1 + ((n * 7) % 5));
          seen.set(key, [...(seen.get(key) ?? []), ctx.offset]);
          running.delete(key);
          active -= 1;
          return n;
        },
        { concurrency: 3 },
      )
      .to('out');
    const driver = new TopologyTestDriver(b.build());
    const records = Array.from({ length: 60 }, (_, i) => ({ key: `user-${i % 6}`, value: i }));
    await driver.pipeInputs('in', records);
    expect(maxActive).to.equal(3);
    expect(driver.stats().process.slow?.maxActive).to.equal(3);
    for (const [, offsets] of seen) {
      expect(offsets).to.have.length(10);
      expect(offsets).to.deep.equal([...offsets].sort((a, b) => a - b));
    }
    expect(driver.stats()).to.include({ pending: 0, activeKeys: 0 });
    // Outputs of one key come out in input order.
    const forUser0 = driver.outputs('out').filter((o) => o.key === 'user-0').map((o) => o.value);
    expect(forUser0).to.deep.equal([0, 6, 12, 18, 24, 30, 36, 42, 48, 54]);
    await driver.close();
  });

  it('process() with perKeyOrder false lets one key run concurrently (no lanes needed)', async () => {
    let active = 0;
    let maxActive = 0;
    const b = topology();
    b.stream<number>('in')
      .process(
        'free',
        async (n) => {
          active += 1;
          maxActive = Math.max(maxActive, active);
          await sleep(5);
          active -= 1;
          return n;
        },
        { concurrency: 4, perKeyOrder: false },
      )
      .to('out');
    const built = b.build();
    expect(built.perKeyOrdered).to.equal(false);
    const driver = new TopologyTestDriver(built);
    await driver.pipeInputs('in', Array.from({ length: 8 }, (_, i) => ({ key: 'same', value: i })));
    expect(maxActive).to.equal(4);
    await driver.close();
  });

  it('process() timeout fails the record with ERR_TOPOLOGY_PROCESS_TIMEOUT and aborts its signal', async () => {
    let aborted = false;
    const b = topology();
    b.stream('in')
      .process(
        'stuck',
        (_v: unknown, ctx) =>
          new Promise((resolve) => {
            ctx.signal.addEventListener('abort', () => {
              aborted = true;
              resolve(null);
            });
          }),
        { timeoutMs: 20 },
      )
      .to('out');
    const driver = new TopologyTestDriver(b.build());
    const err = await driver.pipeInput('in', 'k', 1).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(TagstreamError);
    expect((err as TagstreamError).code).to.equal('ERR_TOPOLOGY_PROCESS_TIMEOUT');
    expect(aborted).to.equal(true);
    expect(driver.outputs()).to.deep.equal([]);
    await driver.close();
  });

  it('a throwing user function fails the record with the node name; run() reports it and goes on', async () => {
    const b = topology();
    b.stream<number>('in')
      .mapValues(
        (n) => {
          if (n === 2) throw new Error('boom');
          return n;
        },
        { name: 'fragile' },
      )
      .to('out');
    const engine = new TopologyEngine(b.build(), { stores: new InMemoryStoreProvider() });
    const input = new Subject<InputRecord>();
    const done = lastValueFrom(engine.run(input).pipe(toArray()));
    for (let i = 1; i <= 3; i += 1) input.next({ topic: 'in', partition: 0, offset: i, key: 'k', value: i, timestamp: 0 });
    input.complete();
    const results = await done;
    expect(results.map((r) => r.outputs.map((o) => o.value))).to.deep.equal([[1], [], [3]]);
    const failed = results.find((r) => r.error !== undefined);
    expect(failed?.error?.code).to.equal('ERR_TOPOLOGY_NODE_FAILED');
    expect(failed?.error?.context).to.include({ node: 'fragile', offset: 2 });
    const unknown = await engine.submit({ topic: 'nope', partition: 0, offset: 0, key: null, value: 1, timestamp: 0 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((unknown as TagstreamError).code).to.equal('ERR_TOPOLOGY_UNKNOWN_TOPIC');
  });

  it('decodes consumed records and encodes outputs with the nodes’ serdes', async () => {
    const b = topology();
    const t = b.table<{ n: number }>('table', 'store');
    b.stream<{ n: number }>('in')
      .leftJoin(t, (v, tv) => ({ n: v.n + (tv?.n ?? 0) }))
      .toTable(t);
    const engine = new TopologyEngine(b.build(), { stores: new InMemoryStoreProvider() });
    const input = engine.decode({
      topic: 'in',
      partition: 3,
      offset: 9,
      key: Buffer.from('u'),
      value: Buffer.from('{"n":2}'),
      headers: {},
      timestamp: 5,
    });
    expect(input).to.deep.equal({ topic: 'in', partition: 3, offset: 9, key: 'u', value: { n: 2 }, timestamp: 5 });
    const [out] = await engine.submit(input);
    expect(out).to.deep.include({ topic: 'table', key: 'u', value: { n: 2 }, partition: 3 });
    const record = engine.encode(out as NonNullable<typeof out>);
    expect(record).to.deep.equal({ topic: 'table', key: 'u', value: Buffer.from('{"n":2}'), partition: 3 });
    const produced = await engine.handle({ topic: 'in', partition: 3, offset: 10, key: Buffer.from('u'), value: Buffer.from('{"n":1}'), headers: {}, timestamp: 6 });
    expect(produced).to.deep.equal([{ topic: 'table', key: 'u', value: Buffer.from('{"n":3}'), partition: 3 }]);
    expect(() => engine.decode({ topic: 'in', partition: 0, offset: 0, key: null, value: Buffer.from('{'), headers: {}, timestamp: 0 })).to.throw(
      TagstreamError,
      /not valid JSON/,
    );
  });
});

describe('application topology (fake executor)', () => {
  function fakeExecutor(log: { userId: string; jarVersion: number | null; start: number; end: number }[], delayMs = 5) {
    return async (ev: PageViewEvent, jar: StoredJar | null): Promise<ExecutionResult> => {
      const start = Date.now();
      await sleep(delayMs);
      log.push({ userId: ev.userId, jarVersion: jar?.version ?? null, start, end: Date.now() });
      const visits = Number(jar?.localStorage['https://shop.example']?.visits ?? '0') + 1;
      return {
        requests: [
          { partner: 'partner-a', method: 'GET', url: `https://collect.a.example/p?e=${ev.eventId}`, headers: {}, body: null, bodyEncoding: 'utf8', transport: 'image' },
          { partner: 'partner-a', method: 'POST', url: 'https://collect.a.example/b', headers: {}, body: '{}', bodyEncoding: 'utf8', transport: 'beacon' },
          { partner: 'partner-b', method: 'GET', url: 'https://b.example/x', headers: {}, body: null, bodyEncoding: 'utf8', transport: 'fetch' },
        ],
        jar: { cookies: [], localStorage: { 'https://shop.example': { visits: String(visits) } } },
        trackers: [{ partner: 'partner-a', status: 'ok', durationMs: 1, error: null }],
      };
    };
  }

  it('joins each event with the jar written by the previous event of the user, even when piped together', async () => {
    const log: { userId: string; jarVersion: number | null; start: number; end: number }[] = [];
    const app = applicationTopology({ executor: fakeExecutor(log), concurrency: 4, now: () => Date.UTC(2026, 10, 29) });
    const driver = new TopologyTestDriver(app);
    const records = ['alice', 'bob', 'alice', 'carol', 'alice', 'bob'].map((u, i) => ({ key: u, value: event(u, i) }));
    await driver.pipeInputs('tracking.events', records);

    const aliceVersions = log.filter((l) => l.userId === 'alice').map((l) => l.jarVersion);
    expect(aliceVersions).to.deep.equal([null, 1, 2]);
    expect(log.filter((l) => l.userId === 'bob').map((l) => l.jarVersion)).to.deep.equal([null, 1]);

    const jar = driver.store<StoredJar>('cookie-jars').get('alice');
    expect(jar).to.deep.equal({
      cookies: [],
      localStorage: { 'https://shop.example': { visits: '3' } },
      version: 3,
      updatedAt: '2026-11-29T00:00:00.000Z',
    });

    const requests = driver.outputs('tracking.requests');
    expect(requests).to.have.length(18);
    const first = requests.filter((r) => (r.value as RequestRecord).eventId === 'alice-e0').map((r) => r.value as RequestRecord);
    expect(first.map((r) => r.idempotencyKey)).to.deep.equal(['alice-e0:partner-a:0', 'alice-e0:partner-a:1', 'alice-e0:partner-b:0']);
    expect(first.every((r) => r.userId === 'alice')).to.equal(true);

    const changelog = driver.outputs('tracking.cookies');
    expect(changelog).to.have.length(6);
    expect(changelog.every((c) => c.partition === 0)).to.equal(true);
    expect(changelog.filter((c) => c.key === 'alice').map((c) => (c.value as StoredJar).version)).to.deep.equal([1, 2, 3]);
    expect(driver.outputs('tracking.events.dlq')).to.deep.equal([]);
    await driver.close();
  });

  it('starts from a jar restored into the store (cold start)', async () => {
    const log: { userId: string; jarVersion: number | null; start: number; end: number }[] = [];
    const driver = new TopologyTestDriver(applicationTopology({ executor: fakeExecutor(log, 0) }));
    await driver.pipeInput('tracking.cookies', 'dora', { cookies: [], localStorage: {}, version: 41, updatedAt: 'x' });
    await driver.pipeInput('tracking.events', 'dora', event('dora', 1));
    expect(log.map((l) => l.jarVersion)).to.deep.equal([41]);
    expect(driver.store<StoredJar>('cookie-jars').get('dora')?.version).to.equal(42);
    await driver.close();
  });

  it('bounds each executor attempt with executorTimeoutMs, aborting it, then retries', async () => {
    const signals: AbortSignal[] = [];
    const app = applicationTopology({
      executor: (_ev, _jar, signal) => {
        signals.push(signal);
        if (signals.length === 1) return new Promise<never>(() => undefined); // hangs
        return Promise.resolve({ requests: [], jar: { cookies: [], localStorage: {} }, trackers: [] });
      },
      executorTimeoutMs: 20,
      retries: 1,
    });
    const driver = new TopologyTestDriver(app);
    await driver.pipeInput('tracking.events', 'fred', event('fred', 1));
    expect(signals).to.have.length(2);
    expect(signals[0]?.aborted).to.equal(true);
    expect(signals[1]?.aborted).to.equal(false);
    expect(driver.store<StoredJar>('cookie-jars').get('fred')?.version).to.equal(1);
    expect(driver.outputs('tracking.events.dlq')).to.deep.equal([]);
    await driver.close();
  });

  it('sends an event to the events DLQ after the retries, leaving the jar alone', async () => {
    let calls = 0;
    const app = applicationTopology({
      executor: async () => {
        calls += 1;
        throw new Error('chromium crashed');
      },
      retries: 2,
    });
    const driver = new TopologyTestDriver(app);
    await driver.pipeInput('tracking.events', 'erin', event('erin', 1));
    expect(calls).to.equal(3);
    const [dead] = driver.outputs('tracking.events.dlq');
    expect(dead?.key).to.equal('erin');
    expect(dead?.value as EventDeadLetter).to.deep.include({ reason: 'executor-failed', error: 'chromium crashed', attempts: 3 });
    expect(driver.outputs('tracking.requests')).to.deep.equal([]);
    expect(driver.outputs('tracking.cookies')).to.deep.equal([]);
    expect(driver.store('cookie-jars').get('erin')).to.equal(undefined);
    await driver.close();
  });
});
