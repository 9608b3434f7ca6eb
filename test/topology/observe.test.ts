/** Node observation: each node's outputs as RxJS streams (engine.observe / events$ / outputs$). */
import { expect } from 'chai';
import { config, toArray, lastValueFrom, take } from 'rxjs';
import { TagstreamError } from '../../core/errors.ts';
import { InMemoryStoreProvider } from '../../state/memory.ts';
import { TopologyEngine, TopologyTestDriver, topology, type NodeEvent, type OutputRecord, type Topology } from '../../topology/index.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** in → slow (async, random delays) → even? → out; with a table written on the side. */
function sample(): Topology {
  const b = topology();
  const counts = b.table<number>('counts', 'count-store', { name: 'count-table', sourceName: 'counts-source' });
  const [even, odd] = b
    .stream<number>('in', { name: 'in-source' })
    .process(
      'slow',
      async (n) => {
        await sleep((n * 7) % 4);
        return n * 10;
      },
      { concurrency: 4 },
    )
    .branch([(n) => n % 20 === 0, () => true], { name: 'parity', childNames: ['even', 'odd'] });
  even?.to('even-out', { name: 'even-sink' });
  odd?.mapValues((n) => n + 1, { name: 'plus-one' }).toTable(counts, { name: 'write-count', sinkName: 'counts-sink' });
  return b.build();
}

describe('topology: node observation (RxJS)', () => {
  it('a subscriber sees every record of a node, with its context, in order per key', async () => {
    const driver = new TopologyTestDriver(sample());
    const seen: NodeEvent[] = [];
    const subscription = driver.observe('slow').subscribe((e) => seen.push(e));
    const records = Array.from({ length: 40 }, (_, i) => ({ key: `user-${i % 4}`, value: i, partition: i % 2, timestamp: 1000 + i }));
    await driver.pipeInputs('in', records);
    subscription.unsubscribe();
    expect(seen).to.have.length(40);
    expect(seen[0]).to.have.all.keys('node', 'topic', 'key', 'value', 'partition', 'offset', 'timestamp');
    for (const e of seen) {
      const n = e.value as number;
      expect(e).to.deep.equal({ node: 'slow', topic: 'in', key: `user-${(n / 10) % 4}`, value: n, partition: (n / 10) % 2, offset: Math.floor(n / 20), timestamp: 1000 + n / 10 });
    }
    for (let k = 0; k < 4; k += 1) {
      const values = seen.filter((e) => e.key === `user-${k}`).map((e) => e.value as number);
      expect(values).to.deep.equal([...values].sort((a, b) => a - b));
      expect(values).to.have.length(10);
    }
    await driver.close();
  });

  it('a filtering node emits only what it forwards; a branch once per routed record; events$ shows every node depth-first', async () => {
    const driver = new TopologyTestDriver(sample());
    const all: string[] = [];
    const parity: unknown[] = [];
    driver.events$.subscribe((e) => all.push(`${e.node}=${String(e.value)}`));
    driver.observe('parity').subscribe((e) => parity.push(e.value));
    await driver.pipeInput('in', 'k', 1);
    await driver.pipeInput('in', 'k', 2);
    await driver.pipeInput('counts', 'k', 5);
    expect(all).to.deep.equal([
      'in-source=1',
      'slow=10',
      'parity=10',
      'odd=10',
      'plus-one=11',
      'write-count=11',
      'counts-sink=11',
      'in-source=2',
      'slow=20',
      'parity=20',
      'even=20',
      'even-sink=20',
      'counts-source=5',
      'count-table=5',
    ]);
    expect(parity).to.deep.equal([10, 20]);
    await driver.close();
  });

  it('driver.output$ gives the sinks’ records as produced, changelog partition included', async () => {
    const driver = new TopologyTestDriver(sample());
    const produced = lastValueFrom(driver.output$.pipe(take(2), toArray()));
    await driver.pipeInput('in', 'k', 1, { partition: 3 });
    await driver.pipeInput('in', 'k', 2, { partition: 3 });
    expect(await produced).to.deep.equal([
      { topic: 'counts', key: 'k', value: 11, sink: 'counts-sink', partition: 3 },
      { topic: 'even-out', key: 'k', value: 20, sink: 'even-sink' },
    ] satisfies OutputRecord[]);
    expect(driver.outputs()).to.deep.equal(await produced);
    await driver.close();
  });

  it('no subscriber, no Subject; unsubscribing stops the events and drops the Subject', async () => {
    const engine = new TopologyEngine(sample(), { stores: new InMemoryStoreProvider() });
    const submit = (n: number) => engine.submit({ topic: 'in', partition: 0, offset: n, key: 'k', value: n, timestamp: 0 });
    await submit(1);
    const observable = engine.observe('even-sink');
    expect(engine.observed()).to.deep.equal({ nodes: [], all: false }); // observe() alone subscribes nothing
    const seen: unknown[] = [];
    const first = observable.subscribe((e) => seen.push(e.value));
    const second = observable.subscribe(() => undefined);
    const every = engine.events$.subscribe(() => undefined);
    expect(engine.observed()).to.deep.equal({ nodes: ['even-sink'], all: true });
    await submit(2);
    first.unsubscribe();
    expect(engine.observed().nodes).to.deep.equal(['even-sink']); // `second` still listens
    second.unsubscribe();
    every.unsubscribe();
    expect(engine.observed()).to.deep.equal({ nodes: [], all: false });
    await submit(4);
    expect(seen).to.deep.equal([20]);
  });

  it('close() completes subscribers; later subscriptions complete at once; an unknown node throws', async () => {
    const engine = new TopologyEngine(sample(), { stores: new InMemoryStoreProvider() });
    let completed = 0;
    engine.observe('slow').subscribe({ complete: () => (completed += 1) });
    engine.events$.subscribe({ complete: () => (completed += 1) });
    engine.close();
    expect(completed).to.equal(2);
    expect(engine.observed()).to.deep.equal({ nodes: [], all: false });
    expect(await lastValueFrom(engine.observe('slow').pipe(toArray()))).to.deep.equal([]);
    expect(() => engine.observe('nope')).to.throw(TagstreamError, /unknown node "nope"/);
  });

  it('a subscriber that throws does not fail the record (RxJS reports it as unhandled)', async () => {
    const previous = config.onUnhandledError;
    const reported: unknown[] = [];
    config.onUnhandledError = (err) => reported.push(err);
    try {
      const driver = new TopologyTestDriver(sample());
      driver.observe('slow').subscribe(() => {
        throw new Error('console bug');
      });
      const outputs = await driver.pipeInput('in', 'k', 2);
      expect(outputs.map((o) => o.value)).to.deep.equal([20]);
      await sleep(5); // RxJS reports unhandled errors on a timer
      expect(reported.map((e) => (e as Error).message)).to.deep.equal(['console bug']);
      await driver.close();
    } finally {
      config.onUnhandledError = previous;
    }
  });
});
