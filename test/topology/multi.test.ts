/**
 * Topologies with several sources and several stores: the shapes of the dispatcher (two request
 * topics and an idempotency store) and of the processor (several toTable() of one table).
 */
import { expect } from 'chai';
import { TopologyTestDriver, topology, type Topology } from '../../topology/index.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Req {
  id: string;
  attempt: number;
}

/** Dispatcher-like: requests and retries merged, deduplicated through an idempotency table. */
function dispatcherLike(send: (r: Req, key: string | null) => Promise<boolean>): Topology {
  const b = topology();
  const seen = b.table<string[]>('dispatcher.idempotency', 'idempotency', { sourceName: 'idempotency-source', name: 'idempotency-table' });
  const retries = b.stream<Req>('tracking.requests.retry', { name: 'retry-source' });
  const [fresh] = b
    .stream<Req>('tracking.requests', { name: 'requests-source' })
    .merge(retries, { name: 'all-requests' })
    .leftJoin(seen, (r, sent) => ({ r, sent: sent ?? [] }), { name: 'seen' })
    .branch([(x) => !x.sent.includes(x.r.id)], { name: 'dedupe', childNames: ['not-sent-yet'] });
  const [ok, failed] = (fresh as NonNullable<typeof fresh>)
    .process('send', async (x, ctx) => ({ ...x, ok: await send(x.r, ctx.key) }), { concurrency: 8 })
    .branch([(x) => x.ok, () => true], { name: 'outcome' });
  ok?.mapValues((x) => [...x.sent, x.r.id], { name: 'sent-ids' }).toTable(seen, { name: 'remember', sinkName: 'idempotency-sink' });
  failed?.mapValues((x) => ({ ...x.r, attempt: x.r.attempt + 1 }), { name: 'next-attempt' }).to('tracking.requests.retry', { name: 'retry-sink', loop: true });
  return b.build();
}

describe('topology: several sources and stores', () => {
  it('two stream sources feeding one graph: topics, co-partitioning, changelogs, one sub-topology', () => {
    const app = dispatcherLike(async () => true);
    expect(app.streamTopics).to.deep.equal(['tracking.requests.retry', 'tracking.requests']);
    expect(app.sourceTopics).to.have.members(['dispatcher.idempotency', 'tracking.requests.retry', 'tracking.requests']);
    expect(app.sinkTopics).to.have.members(['dispatcher.idempotency', 'tracking.requests.retry']);
    expect(app.copartitionGroups).to.have.length(1);
    expect(app.copartitionGroups[0]).to.have.members(['tracking.requests', 'tracking.requests.retry', 'dispatcher.idempotency']);
    expect(app.changelogTopics).to.deep.equal({ idempotency: 'dispatcher.idempotency' });
    expect(app.compactedTopics).to.deep.equal(['dispatcher.idempotency']);
    expect(app.storeUsage.map(({ serde: _serde, ...u }) => u)).to.deep.equal([
      {
        name: 'idempotency',
        changelogTopic: 'dispatcher.idempotency',
        sourceNode: 'idempotency-source',
        tableNode: 'idempotency-table',
        readsFrom: ['seen'],
        writtenBy: ['remember'],
      },
    ]);
    expect(app.perKeyOrdered).to.equal(true);
    const json = app.describe().toJSON();
    expect(json.subtopologies).to.have.length(1);
    expect(json.compactedTopics).to.deep.equal(['dispatcher.idempotency']);
    const text = app.describe().toString();
    expect(text).to.contain('Processor: all-requests (stores: [])\n      --> seen\n      <-- requests-source, retry-source\n');
  });

  it('runs records of one key from both topics one after another, and a retry sees what the first attempt wrote', async () => {
    const running = new Set<string>();
    const calls: string[] = [];
    let overlap = false;
    const app = dispatcherLike(async (r, key) => {
      if (running.has(key as string)) overlap = true;
      running.add(key as string);
      await sleep(3);
      running.delete(key as string);
      calls.push(`${key}:${r.id}:${r.attempt}`);
      return r.attempt > 0 || r.id !== 'fails-once';
    });
    const driver = new TopologyTestDriver(app);
    await Promise.all([
      driver.pipeInput('tracking.requests', 'u1', { id: 'a', attempt: 0 }),
      driver.pipeInput('tracking.requests.retry', 'u1', { id: 'b', attempt: 1 }),
      driver.pipeInput('tracking.requests', 'u1', { id: 'a', attempt: 0 }), // redelivered: deduplicated
      driver.pipeInput('tracking.requests', 'u2', { id: 'fails-once', attempt: 0 }),
    ]);
    expect(overlap).to.equal(false);
    expect(calls.filter((c) => c.startsWith('u1:'))).to.deep.equal(['u1:a:0', 'u1:b:1']);
    const [retry] = driver.outputs('tracking.requests.retry');
    expect(retry).to.deep.include({ key: 'u2', value: { id: 'fails-once', attempt: 1 } });
    await driver.pipeInput('tracking.requests.retry', 'u2', retry?.value);
    expect(driver.store('idempotency').get('u2')).to.deep.equal(['fails-once']);
    expect(driver.outputs('dispatcher.idempotency').map((o) => [o.key, o.value, o.sink])).to.deep.equal([
      ['u1', ['a'], 'idempotency-sink'],
      ['u1', ['a', 'b'], 'idempotency-sink'],
      ['u2', ['fails-once'], 'idempotency-sink'],
    ]);
    await driver.close();
  });

  it('two independent graphs with a store each: two sub-topologies, two co-partition groups', async () => {
    const b = topology();
    const a = b.table<number>('a-changelog', 'a-store');
    const z = b.table<number>('z-changelog', 'z-store');
    b.stream<number>('a-in')
      .leftJoin(a, (v, t) => v + (t ?? 0))
      .toTable(a);
    b.stream<number>('z-in')
      .leftJoin(z, (v, t) => v * (t ?? 1))
      .toTable(z);
    b.stream<number>('free').to('free-out'); // no store, no per-key step: no co-partitioning needed
    const app = b.build();
    expect(app.copartitionGroups).to.deep.equal([
      ['a-in', 'a-changelog'],
      ['z-in', 'z-changelog'],
    ]);
    expect(app.compactedTopics).to.deep.equal(['a-changelog', 'z-changelog']);
    expect(app.describe().toJSON().subtopologies).to.have.length(3);
    const driver = new TopologyTestDriver(app);
    await driver.pipeInput('a-in', 'k', 2);
    await driver.pipeInput('a-in', 'k', 3);
    await driver.pipeInput('z-in', 'k', 5);
    expect(driver.store('a-store').get('k')).to.equal(5);
    expect(driver.store('z-store').get('k')).to.equal(5);
    await driver.close();
  });

  it('two streams merged into one per-key-ordered process() are one co-partition group, even without a store', () => {
    const b = topology();
    const other = b.stream('second');
    b.stream('first')
      .merge(other)
      .process('ordered', async (v: unknown) => v)
      .to('out');
    expect(b.build().copartitionGroups).to.deep.equal([['second', 'first']]);
    const free = topology();
    const o = free.stream('second');
    free
      .stream('first')
      .merge(o)
      .process('unordered', async (v: unknown) => v, { perKeyOrder: false })
      .to('out');
    expect(free.build().copartitionGroups).to.deep.equal([]);
  });

  it('two toTable() of one table from two branches (jar updates and erasures)', async () => {
    const b = topology();
    const jars = b.table<{ visits: number }>('tracking.cookies', 'cookie-jars');
    const [views, erasures] = b
      .stream<{ type: string }>('tracking.events')
      .leftJoin(jars, (e, jar) => ({ e, jar }), { name: 'join-jar' })
      .branch([(x) => x.e.type === 'page_view', (x) => x.e.type === 'erase'], { name: 'route', childNames: ['views', 'erasures'] });
    views?.mapValues((x) => ({ visits: (x.jar?.visits ?? 0) + 1 })).toTable(jars, { name: 'write-jar', sinkName: 'jar-sink' });
    erasures?.mapValues(() => null).toTable(jars, { name: 'erase-jar', sinkName: 'erase-sink' });
    const app = b.build();
    expect(app.sinkTopics).to.deep.equal(['tracking.cookies']);
    expect(app.storeUsage[0]).to.deep.include({ readsFrom: ['join-jar'], writtenBy: ['write-jar', 'erase-jar'] });
    expect(app.copartitionGroups).to.deep.equal([['tracking.events', 'tracking.cookies']]);
    expect(app.describe().toJSON().subtopologies).to.have.length(1);

    const driver = new TopologyTestDriver(app, { partitionOf: () => 2 });
    await driver.pipeInputs('tracking.events', [
      { key: 'u', value: { type: 'page_view' } },
      { key: 'u', value: { type: 'page_view' } },
      { key: 'u', value: { type: 'erase' } },
      { key: 'u', value: { type: 'page_view' } },
    ]);
    expect(driver.outputs('tracking.cookies').map((o) => [o.sink, o.value, o.partition])).to.deep.equal([
      ['jar-sink', { visits: 1 }, 2],
      ['jar-sink', { visits: 2 }, 2],
      ['erase-sink', null, 2],
      ['jar-sink', { visits: 1 }, 2],
    ]);
    expect(driver.store('cookie-jars', 2).get('u')).to.deep.equal({ visits: 1 });
    await driver.close();
  });

  it('leftJoin and toTable on a table whose changelog is no stream topic: output to the changelog, in the input partition', async () => {
    const b = topology();
    const t = b.table<number>('counts-changelog', 'counts');
    b.stream<number>('events')
      .leftJoin(t, (v, count) => (count ?? 0) + v)
      .toTable(t);
    const app = b.build();
    expect(app.streamTopics).to.deep.equal(['events']);
    expect(app.sourceTopics).to.deep.equal(['counts-changelog', 'events']);
    expect(app.changelogTopics).to.deep.equal({ counts: 'counts-changelog' });
    expect(app.compactedTopics).to.deep.equal(['counts-changelog']);
    expect(app.copartitionGroups).to.deep.equal([['events', 'counts-changelog']]);

    const driver = new TopologyTestDriver(app);
    // Restoring: a changelog record fills the store of its partition and produces nothing.
    expect(await driver.pipeInput('counts-changelog', 'k', 10, { partition: 3 })).to.deep.equal([]);
    const [out] = await driver.pipeInput('events', 'k', 1, { partition: 3 });
    expect(out).to.deep.include({ topic: 'counts-changelog', key: 'k', value: 11, partition: 3 });
    await driver.pipeInput('events', 'k', 1, { partition: 0 });
    expect(driver.store('counts', 3).get('k')).to.equal(11);
    expect(driver.store('counts', 0).get('k')).to.equal(1);
    await driver.close();
  });
});
