/**
 * The stream runtime (runtime/streams) runs any topology, not only the processor's: here one with
 * two co-partitioned source topics feeding one store (as the dispatcher will read requests and
 * their retries with an idempotency store), on the embedded broker and on the real one.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { TopologyMismatchError, hasCode } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { EmbeddedKafka, createEmbeddedClient } from '../../runtime/kafka/embedded/index.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { KafkaClient } from '../../runtime/kafka/types.ts';
import { startStreams, topologyRequirements, type StreamsHandle } from '../../runtime/streams/index.ts';
import { topology, type Topology } from '../../topology/index.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { readAll, waitFor } from '../runner/helpers.ts';

interface Names {
  a: string;
  b: string;
  counts: string;
  out: string;
  dlq: string;
}

/** Counts, per key, the records seen on either topic; emits "<topic>:<n>". */
function countingTopology(t: Names): Topology {
  const b = topology();
  const counts = b.table<number>(t.counts, 'counts', { name: 'counts-table' });
  for (const [topic, name] of [[t.a, 'a'], [t.b, 'b']] as const) {
    const counted = b
      .stream<{ n: number }>(topic, { name: `${name}-source` })
      .mapValues((v) => {
        if (typeof v?.n !== 'number') throw new Error('no n');
        return v;
      }, { name: `${name}-check` })
      .leftJoin(counts, (_v, count) => (count ?? 0) + 1, { name: `${name}-join-count` });
    counted.toTable(counts, { name: `${name}-write-count` });
    counted.mapValues((n) => `${name}:${n}`, { name: `${name}-label` }).to(t.out, { name: `${name}-out` });
  }
  return b.build();
}

function scenarios(kind: 'embedded' | 'platformatic'): void {
  let clients: KafkaClient[] = [];
  let apps: StreamsHandle[] = [];
  let newClient: () => KafkaClient;
  let names: () => Names;

  beforeEach(() => {
    clients = [];
    apps = [];
    if (kind === 'embedded') {
      const broker = new EmbeddedKafka();
      newClient = () => {
        const c = createEmbeddedClient(broker);
        clients.push(c);
        return c;
      };
    } else {
      const { brokers } = realBroker();
      newClient = () => {
        const c = createKafkaClient('platformatic', { brokers, clientId: 'streams-test' });
        clients.push(c);
        return c;
      };
    }
    names = () => {
      const p = uniqueTopic('streams');
      return { a: `${p}-a`, b: `${p}-b`, counts: `${p}-counts`, out: `${p}-out`, dlq: `${p}-dlq` };
    };
  });

  afterEach(async function () {
    this.timeout(30_000);
    await Promise.allSettled(apps.map((a) => a.stop(2000)));
    await Promise.allSettled(clients.map((c) => c.close()));
  });

  const start = async (t: Names, client: KafkaClient, groupId: string): Promise<StreamsHandle> => {
    const app = await startStreams({
      name: 'counter',
      topology: countingTopology(t),
      client,
      groupId,
      state: { store: 'memory' },
      runner: { sessionTimeoutMs: 10_000 },
      registry: new Registry(),
      logger: silentLogger(),
      // Everything the test's own check rejects is routed; nothing else would be.
      deadLetters: (error, record) => (hasCode(error, 'ERR_TOPOLOGY_NODE_FAILED') || hasCode(error, 'ERR_INVALID_INPUT') ? { topic: t.dlq, key: record.key, value: record.value } : undefined),
    });
    apps.push(app);
    return app;
  };

  it(`${kind}: two source topics, one store: a key's records of both topics are counted in one order; a restart restores the store from its changelog; failures go to the dead-letter router`, async function () {
    this.timeout(60_000);
    const t = names();
    const client = newClient();
    const admin = await client.admin();
    await admin.createTopics([
      { name: t.a, partitions: 2 },
      { name: t.b, partitions: 2 },
      { name: t.counts, partitions: 2, configs: { 'cleanup.policy': 'compact' } },
      { name: t.out, partitions: 2 },
      { name: t.dlq, partitions: 1 },
    ]);
    const groupId = `${t.a}-g`;
    const first = await start(t, client, groupId);
    expect(first.runner.topics).to.deep.equal([t.a, t.b]);
    const producer = await client.producer();
    await producer.send([
      { topic: t.a, key: 'k1', value: JSON.stringify({ n: 1 }) },
      { topic: t.b, key: 'k1', value: JSON.stringify({ n: 2 }) },
      { topic: t.a, key: 'k2', value: JSON.stringify({ n: 3 }) },
      { topic: t.b, key: 'k1', value: '{"nope":true}' },
      { topic: t.a, key: 'k1', value: 'not json' },
    ]);
    await waitFor('5 processed', () => first.status().processed >= 5, 30_000);
    expect(first.readiness()).to.deep.equal({ ready: true, reasons: [] });
    const dead = await readAll(client, t.dlq, 1);
    expect(dead.map((r) => r.value?.toString())).to.have.members(['{"nope":true}', 'not json']);
    await first.stop(5000);

    const second = await start(t, client, groupId);
    await producer.send([
      { topic: t.b, key: 'k1', value: JSON.stringify({ n: 4 }) },
      { topic: t.a, key: 'k2', value: JSON.stringify({ n: 5 }) },
    ]);
    await waitFor('2 processed', () => second.status().processed >= 2, 30_000);
    const out = (await readAll(client, t.out, 2)).map((r) => `${r.key?.toString()}=${JSON.parse(r.value!.toString()) as string}`);
    // Kafka orders records within a partition of one topic, not across topics: the two first k1
    // records may run in either order, but one after the other (counts 1, 2), and the one after
    // the restart sees the restored count (3). k2 lives on topic a only: a:1 then a:2.
    const k1 = out.filter((o) => o.startsWith('k1='));
    expect(k1.map((o) => Number(o.split(':')[1]))).to.deep.equal([1, 2, 3]);
    expect(k1.map((o) => o.slice(3, 4)).slice(0, 2).sort()).to.deep.equal(['a', 'b']);
    expect(k1[2]).to.equal('k1=b:3');
    expect(out.filter((o) => o.startsWith('k2='))).to.deep.equal(['k2=a:1', 'k2=a:2']);
    await producer.close();
    await admin.close();
  });

  it(`${kind}: an output its topic would refuse (over max.message.bytes) fails only its record, which is dead-lettered before anything is produced; the rest goes on`, async function () {
    this.timeout(30_000);
    const t = names();
    const client = newClient();
    const admin = await client.admin();
    await admin.createTopics([
      { name: t.a, partitions: 1 },
      { name: t.out, partitions: 1, configs: { 'max.message.bytes': '10000' } },
      { name: t.dlq, partitions: 1 },
    ]);
    const b = topology();
    b.stream<{ size: number }>(t.a, { name: 'in' })
      .flatMapValues((v) => [`first:${v.size}`, 'y'.repeat(v.size)], { name: 'expand' })
      .to(t.out, { name: 'out' });
    const codes: string[] = [];
    const app = await startStreams({
      name: 'expander',
      topology: b.build(),
      client,
      groupId: `${t.a}-g`,
      state: { store: 'memory' },
      registry: new Registry(),
      logger: silentLogger(),
      deadLetters: (error, record) => {
        codes.push((error as { code?: string }).code ?? '?');
        return hasCode(error, 'ERR_KAFKA_RECORD_TOO_LARGE') ? { topic: t.dlq, key: record.key, value: record.value } : undefined;
      },
    });
    apps.push(app);
    const producer = await client.producer();
    await producer.send([
      { topic: t.a, key: 'k', value: JSON.stringify({ size: 100 }) },
      { topic: t.a, key: 'k', value: JSON.stringify({ size: 20_000 }) },
      { topic: t.a, key: 'k', value: JSON.stringify({ size: 200 }) },
    ]);
    await waitFor('3 processed', () => app.status().processed >= 3, 20_000);
    expect(app.status().state).to.equal('running');
    expect(codes).to.deep.equal(['ERR_KAFKA_RECORD_TOO_LARGE']);
    const out = (await readAll(client, t.out, 1)).map((r) => (JSON.parse(r.value!.toString()) as string).slice(0, 10));
    expect(out, 'none of the big record\'s outputs, not even the small first one').to.deep.equal(['first:100', 'y'.repeat(10), 'first:200', 'y'.repeat(10)]);
    expect((await readAll(client, t.dlq, 1)).map((r) => r.value?.toString())).to.deep.equal([JSON.stringify({ size: 20_000 })]);
    await producer.close();
    await admin.close();
  });

  it(`${kind}: start-up checks come from the topology: a source not co-partitioned with the store's changelog fails before joining`, async function () {
    this.timeout(30_000);
    const t = names();
    const client = newClient();
    const admin = await client.admin();
    await admin.createTopics([
      { name: t.a, partitions: 2 },
      { name: t.b, partitions: 3 },
      { name: t.counts, partitions: 2, configs: { 'cleanup.policy': 'compact' } },
      { name: t.out, partitions: 2 },
      { name: t.dlq, partitions: 1 },
    ]);
    const error = await start(t, client, `${t.a}-g`).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(TopologyMismatchError);
    const context = (error as TopologyMismatchError).context as { group: string[]; source: unknown; changelog: unknown };
    expect(context.group).to.include.members([t.b, t.counts]);
    expect([context.source, context.changelog]).to.deep.include({ topic: t.b, partitions: 3 });
    expect(topologyRequirements(countingTopology(t), { requireCompacted: true })).to.deep.include({ compacted: [t.counts] });
    await admin.close();
  });
}

describe('stream runtime (runtime/streams): any topology on Kafka', () => {
  describe('embedded broker', () => scenarios('embedded'));
  describe('real broker (platformatic)', () => scenarios('platformatic'));
});
