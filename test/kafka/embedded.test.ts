import { expect } from 'chai';
import { EmbeddedKafka, createEmbeddedClient, defaultEmbeddedKafka } from '../../runtime/kafka/embedded/index.ts';
import { partitionForKey } from '../../runtime/kafka/partitioner.ts';
import { KafkaClientError, UnknownTopicError } from '../../core/errors.ts';
import type {
  ConsumedRecord,
  ConsumerListener,
  KafkaAdmin,
  KafkaClient,
  KafkaConsumer,
  KafkaProducer,
  TopicPartition,
} from '../../runtime/kafka/types.ts';

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const tick = (ms = 20): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function tps(list: readonly TopicPartition[]): string[] {
  return list.map((tp) => `${tp.topic}/${tp.partition}`).sort();
}

/** A listener that records everything it sees, in call order. */
class Recorder implements ConsumerListener {
  readonly records: ConsumedRecord[] = [];
  readonly batches: ConsumedRecord[][] = [];
  readonly events: string[] = [];
  constructor(private readonly name = 'c') {}
  onRecords(records: ConsumedRecord[]): void {
    this.batches.push(records);
    this.records.push(...records);
  }
  onAssigned(partitions: TopicPartition[]): void {
    this.events.push(`${this.name}:assigned ${tps(partitions).join(',')}`);
  }
  onRevoked(partitions: TopicPartition[]): void {
    this.events.push(`${this.name}:revoked ${tps(partitions).join(',')}`);
  }
  values(partition?: number): string[] {
    return this.records.filter((r) => partition === undefined || r.partition === partition).map((r) => r.value?.toString() ?? 'null');
  }
}

describe('embedded Kafka client', () => {
  let broker: EmbeddedKafka;
  let client: KafkaClient;
  let admin: KafkaAdmin;
  let producer: KafkaProducer;

  beforeEach(async () => {
    broker = new EmbeddedKafka();
    client = createEmbeddedClient(broker);
    admin = await client.admin();
    producer = await client.producer();
  });

  afterEach(async () => {
    await client.close();
  });

  describe('producer and partitioning', () => {
    it('puts a keyed record on partitionForKey(key) and keeps per-partition order', async () => {
      await admin.createTopics([{ name: 'events', partitions: 4 }]);
      const sent = [];
      for (let i = 0; i < 60; i++) {
        sent.push({ topic: 'events', key: `user-${i % 7}`, value: `v${i}` });
      }
      const metadata = await producer.send(sent);
      metadata.forEach((m, i) => expect(m.partition, `record ${i}`).to.equal(partitionForKey(`user-${i % 7}`, 4)));
      expect(new Set(metadata.map((m) => m.partition)).size, 'keys spread over partitions').to.be.greaterThan(1);

      const recorder = new Recorder();
      const consumer = client.consumer({ groupId: 'g', topics: ['events'] });
      await consumer.start(recorder);
      await broker.settled();

      expect(recorder.records).to.have.length(60);
      for (let p = 0; p < 4; p++) {
        const offsets = recorder.records.filter((r) => r.partition === p).map((r) => r.offset);
        expect(offsets, `partition ${p}`).to.deep.equal([...offsets.keys()]);
      }
      for (let k = 0; k < 7; k++) {
        const expected = sent.filter((r) => r.key === `user-${k}`).map((r) => r.value);
        const got = recorder.records.filter((r) => r.key?.toString() === `user-${k}`).map((r) => r.value?.toString());
        expect(got, `key user-${k}`).to.deep.equal(expected);
      }
    });

    it('returns offsets and end offsets as the next offset to be written', async () => {
      await admin.createTopics([{ name: 't', partitions: 2 }]);
      const meta = await producer.send([
        { topic: 't', key: null, value: 'a', partition: 1 },
        { topic: 't', key: null, value: 'b', partition: 1 },
        { topic: 't', key: null, value: 'c', partition: 0 },
      ]);
      expect(meta).to.deep.equal([
        { topic: 't', partition: 1, offset: 0 },
        { topic: 't', partition: 1, offset: 1 },
        { topic: 't', partition: 0, offset: 0 },
      ]);
      expect(await admin.listEndOffsets('t')).to.deep.equal([
        { partition: 0, offset: 1 },
        { partition: 1, offset: 2 },
      ]);
    });

    it('spreads records without key over partitions, one partition per send (sticky)', async () => {
      await admin.createTopics([{ name: 't', partitions: 3 }]);
      const partitions: number[] = [];
      for (let i = 0; i < 3; i++) {
        const meta = await producer.send([
          { topic: 't', key: null, value: 'x' },
          { topic: 't', key: null, value: 'y' },
        ]);
        expect(meta[0]!.partition).to.equal(meta[1]!.partition);
        partitions.push(meta[0]!.partition);
      }
      expect([...partitions].sort()).to.deep.equal([0, 1, 2]);
    });

    it('round-trips headers, timestamps, keys and values as Buffers', async () => {
      await admin.createTopics([{ name: 't', partitions: 1 }]);
      await producer.send([
        {
          topic: 't',
          key: Buffer.from([0, 1, 2]),
          value: 'é',
          headers: { 'content-type': 'application/json', bin: Buffer.from([255, 0]) },
          timestamp: 1_700_000_000_123,
        },
      ]);
      const got: ConsumedRecord[] = [];
      await client.reader().read('t', 0, 0, (records) => {
        got.push(...records);
      });
      expect(got).to.have.length(1);
      const [r] = got;
      expect(r!.key).to.deep.equal(Buffer.from([0, 1, 2]));
      expect(r!.value!.toString('utf8')).to.equal('é');
      expect(r!.headers['content-type']!.toString()).to.equal('application/json');
      expect(r!.headers.bin).to.deep.equal(Buffer.from([255, 0]));
      expect(r!.timestamp).to.equal(1_700_000_000_123);
    });

    it('does not deliver inside send: listeners run asynchronously', async () => {
      await admin.createTopics([{ name: 't', partitions: 1 }]);
      let inSend = false;
      let calledInSend = false;
      let calls = 0;
      const consumer = client.consumer({ groupId: 'g', topics: ['t'] });
      await consumer.start({
        onRecords: () => {
          calls++;
          if (inSend) calledInSend = true;
        },
      });
      inSend = true;
      const sending = producer.send([{ topic: 't', key: 'k', value: 'v' }]);
      inSend = false;
      await sending;
      await broker.settled();
      expect(calls).to.equal(1);
      expect(calledInSend).to.equal(false);
    });

    it('appends nothing when one record of a send is invalid', async () => {
      await admin.createTopics([{ name: 't', partitions: 2 }]);
      const err = await producer
        .send([
          { topic: 't', key: 'a', value: '1' },
          { topic: 't', key: 'b', value: '2', partition: 5 },
        ])
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(KafkaClientError);
      expect(await admin.listEndOffsets('t')).to.deep.equal([
        { partition: 0, offset: 0 },
        { partition: 1, offset: 0 },
      ]);
    });
  });

  describe('unknown topics', () => {
    it('throws UnknownTopicError (ERR_KAFKA_UNKNOWN_TOPIC) from send, describe, listEndOffsets and consumer start', async () => {
      const attempts: Array<[string, () => Promise<unknown>]> = [
        ['send', () => producer.send([{ topic: 'nope', key: 'k', value: 'v' }])],
        ['describeTopics', () => admin.describeTopics(['nope'])],
        ['listEndOffsets', () => admin.listEndOffsets('nope')],
        ['consumer.start', () => client.consumer({ groupId: 'g', topics: ['nope'] }).start(new Recorder())],
      ];
      for (const [name, attempt] of attempts) {
        const err = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, name).to.be.instanceOf(UnknownTopicError);
        expect((err as UnknownTopicError).code, name).to.equal('ERR_KAFKA_UNKNOWN_TOPIC');
        expect((err as UnknownTopicError).context.topic, name).to.equal('nope');
      }
    });
  });

  describe('admin', () => {
    it('creates topics idempotently, describes configs and partition counts, lists and deletes', async () => {
      await admin.createTopics([
        { name: 'events', partitions: 3 },
        { name: 'cookies', partitions: 3, configs: { 'cleanup.policy': 'compact' } },
      ]);
      // Existing topics are left as they are.
      await admin.createTopics([{ name: 'events', partitions: 8 }]);
      const [events, cookies] = await admin.describeTopics(['events', 'cookies']);
      expect(events!.partitions).to.equal(3);
      expect(events!.configs['cleanup.policy']).to.equal('delete');
      expect(cookies).to.deep.include({ name: 'cookies', partitions: 3 });
      expect(cookies!.configs['cleanup.policy']).to.equal('compact');
      expect(await admin.listTopics()).to.deep.equal(['cookies', 'events']);

      await admin.deleteTopics(['events']);
      expect(await admin.listTopics()).to.deep.equal(['cookies']);
      const err = await admin.describeTopics(['events']).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(UnknownTopicError);
    });

    it('reports lag as end offset minus committed offset, -1 without commit', async () => {
      await admin.createTopics([{ name: 't', partitions: 2 }]);
      await producer.send(Array.from({ length: 5 }, (_, i) => ({ topic: 't', key: null, value: `${i}`, partition: 0 })));
      await producer.send([{ topic: 't', key: null, value: 'x', partition: 1 }]);
      const consumer = client.consumer({ groupId: 'lagging', topics: ['t'] });
      await consumer.start({
        onRecords: async (records) => {
          // Process only the first two records of partition 0.
          const done = records.filter((r) => r.partition === 0 && r.offset < 2);
          if (done.length > 0) await consumer.commit([{ topic: 't', partition: 0, offset: done[done.length - 1]!.offset + 1 }]);
        },
      });
      await broker.settled();
      const end = await admin.listEndOffsets('t');
      const committed = await admin.listCommittedOffsets('lagging', 't');
      expect(committed).to.deep.equal([
        { partition: 0, offset: 2 },
        { partition: 1, offset: -1 },
      ]);
      expect(end[0]!.offset - committed[0]!.offset).to.equal(3);
      expect(await admin.listGroups()).to.deep.equal(['lagging']);
      expect(await admin.listCommittedOffsets('never-seen', 't')).to.deep.equal([
        { partition: 0, offset: -1 },
        { partition: 1, offset: -1 },
      ]);
    });
  });

  describe('compaction', () => {
    beforeEach(async () => {
      await admin.createTopics([{ name: 'jars', partitions: 1, configs: { 'cleanup.policy': 'compact' } }]);
      await producer.send([
        { topic: 'jars', key: 'u1', value: 'jar1' },
        { topic: 'jars', key: 'u2', value: 'jar2' },
        { topic: 'jars', key: 'u1', value: 'jar1b' },
        { topic: 'jars', key: 'u2', value: null },
        { topic: 'jars', key: 'u3', value: 'jar3' },
      ]);
    });

    it('keeps every record and delivers tombstones as null values until compacted', async () => {
      const got: ConsumedRecord[] = [];
      await client.reader().read('jars', 0, 0, (records) => {
        got.push(...records);
      });
      expect(got.map((r) => [r.offset, r.key?.toString(), r.value?.toString() ?? null])).to.deep.equal([
        [0, 'u1', 'jar1'],
        [1, 'u2', 'jar2'],
        [2, 'u1', 'jar1b'],
        [3, 'u2', null],
        [4, 'u3', 'jar3'],
      ]);
    });

    it('compact(topic) keeps the latest value per key, removes tombstoned keys and keeps offsets', async () => {
      expect(broker.compact('jars')).to.equal(3);
      const got: ConsumedRecord[] = [];
      await client.reader().read('jars', 0, 0, (records) => {
        got.push(...records);
      });
      expect(got.map((r) => [r.offset, r.key?.toString(), r.value?.toString()])).to.deep.equal([
        [2, 'u1', 'jar1b'],
        [4, 'u3', 'jar3'],
      ]);
      expect(await admin.listEndOffsets('jars')).to.deep.equal([{ partition: 0, offset: 5 }]);

      // A group that committed before compaction resumes at the same offset.
      const recorder = new Recorder();
      broker.setCommittedOffsets('restorer', [{ topic: 'jars', partition: 0, offset: 3 }]);
      await client.consumer({ groupId: 'restorer', topics: ['jars'] }).start(recorder);
      await broker.settled();
      expect(recorder.records.map((r) => r.offset)).to.deep.equal([4]);
    });

    it('refuses records without key on a compacted topic, like Kafka', async () => {
      const err = await producer.send([{ topic: 'jars', key: null, value: 'x' }]).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(KafkaClientError);
      expect((err as KafkaClientError).context.clientCode).to.equal('INVALID_RECORD');
    });

    it('cleans automatically past the dirty threshold, keeping recent tombstones', async () => {
      const small = new EmbeddedKafka({ compactionThreshold: 10 });
      small.createTopics([{ name: 'c', partitions: 1, configs: { 'cleanup.policy': 'compact' } }]);
      small.append([{ topic: 'c', key: 'gone', value: null }]);
      for (let i = 0; i < 9; i++) small.append([{ topic: 'c', key: 'k', value: `${i}` }]);
      expect(small.records('c').map((r) => r.value?.toString() ?? null)).to.deep.equal([null, '8']);
      expect(small.endOffsets('c')).to.deep.equal([{ partition: 0, offset: 10 }]);
    });
  });

  describe('retention', () => {
    it('drops the oldest records of delete-policy topics beyond retentionRecords and moves the log start', async () => {
      const small = new EmbeddedKafka({ retentionRecords: 10 });
      const smallClient = createEmbeddedClient(small);
      try {
        small.createTopics([{ name: 't', partitions: 1 }]);
        const recorder = new Recorder();
        const consumer = smallClient.consumer({ groupId: 'g', topics: ['t'] });
        await consumer.start(recorder);
        consumer.pause();
        for (let i = 0; i < 11; i++) small.append([{ topic: 't', key: null, value: `${i}` }]);
        // One more than the limit (plus the step of a tenth, here 1): the oldest record goes.
        expect(small.records('t').map((r) => r.offset)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        expect(small.endOffsets('t')).to.deep.equal([{ partition: 0, offset: 11 }]);

        // The paused consumer's position 0 is now out of range: 'earliest' resets to the log start.
        consumer.resume();
        await small.settled();
        expect(recorder.records.map((r) => r.offset)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      } finally {
        await smallClient.close();
      }
    });

    it('applies retention.ms and message.timestamp.type=LogAppendTime from the topic configs', () => {
      let now = 1_000_000;
      const timed = new EmbeddedKafka({ now: () => now });
      timed.createTopics([
        { name: 'short', partitions: 1, configs: { 'retention.ms': '1000' } },
        { name: 'appended', partitions: 1, configs: { 'message.timestamp.type': 'LogAppendTime' } },
      ]);
      timed.append([{ topic: 'short', key: null, value: 'old' }]);
      now += 1500;
      timed.append([{ topic: 'short', key: null, value: 'new' }]);
      expect(timed.records('short').map((r) => r.value?.toString())).to.deep.equal(['new']);

      timed.append([{ topic: 'appended', key: null, value: 'x', timestamp: 42 }]);
      expect(timed.records('appended')[0]!.timestamp).to.equal(now);
    });
  });

  describe('consumer groups', () => {
    it('resumes a new consumer of the same group after the last commit', async () => {
      await admin.createTopics([{ name: 't', partitions: 1 }]);
      await producer.send(Array.from({ length: 10 }, (_, i) => ({ topic: 't', key: 'k', value: `${i}` })));

      const first = client.consumer({ groupId: 'g', topics: ['t'] });
      await first.start({
        onRecords: async (records) => {
          const sixth = records.find((r) => r.offset === 5);
          if (sixth) await first.commit([{ topic: 't', partition: 0, offset: sixth.offset + 1 }]);
        },
      });
      await broker.settled();
      await first.close();
      expect(await admin.listCommittedOffsets('g', 't')).to.deep.equal([{ partition: 0, offset: 6 }]);

      await producer.send([{ topic: 't', key: 'k', value: '10' }]);
      const second = new Recorder();
      await client.consumer({ groupId: 'g', topics: ['t'] }).start(second);
      await broker.settled();
      expect(second.records.map((r) => r.offset)).to.deep.equal([6, 7, 8, 9, 10]);
    });

    it("starts at the end with autoOffsetReset 'latest' and at the start with 'earliest'", async () => {
      await admin.createTopics([{ name: 't', partitions: 1 }]);
      await producer.send([{ topic: 't', key: 'k', value: 'old' }]);
      const latest = new Recorder();
      const earliest = new Recorder();
      await client.consumer({ groupId: 'l', topics: ['t'], autoOffsetReset: 'latest' }).start(latest);
      await client.consumer({ groupId: 'e', topics: ['t'] }).start(earliest);
      await producer.send([{ topic: 't', key: 'k', value: 'new' }]);
      await broker.settled();
      expect(latest.values()).to.deep.equal(['new']);
      expect(earliest.values()).to.deep.equal(['old', 'new']);
    });

    it('start() resolves once the first assignment was delivered', async () => {
      await admin.createTopics([{ name: 't', partitions: 2 }]);
      const consumer = client.consumer({ groupId: 'g', topics: ['t'] });
      const recorder = new Recorder();
      await consumer.start(recorder);
      expect(recorder.events).to.deep.equal(['c:assigned t/0,t/1']);
      expect(tps(consumer.assignment())).to.deep.equal(['t/0', 't/1']);
    });

    it('gives both members the same partition numbers of co-partitioned topics, and hands them over on leave', async () => {
      await admin.createTopics([
        { name: 'events', partitions: 4 },
        { name: 'cookies', partitions: 4, configs: { 'cleanup.policy': 'compact' } },
      ]);
      const log: string[] = [];
      const a = client.consumer({ groupId: 'proc', topics: ['events', 'cookies'] });
      const aRecorder = new Recorder('a');
      const revokeGate = deferred();
      await a.start({
        onRecords: (records) => aRecorder.onRecords(records),
        onAssigned: (partitions) => {
          log.push(`a:assigned ${tps(partitions).join(',')}`);
        },
        onRevoked: async (partitions) => {
          log.push(`a:revoked ${tps(partitions).join(',')}`);
          // The hand-over waits for this: a commit made here is what the next owner starts from.
          await revokeGate.promise;
          await a.commit([{ topic: 'events', partition: 3, offset: 1 }]);
          log.push('a:revoke done');
        },
      });
      expect(tps(a.assignment())).to.have.length(8);
      await producer.send([
        { topic: 'events', key: null, value: 'e0', partition: 3 },
        { topic: 'events', key: null, value: 'e1', partition: 3 },
      ]);
      await broker.settled();

      const b = client.consumer({ groupId: 'proc', topics: ['events', 'cookies'] });
      const bRecorder = new Recorder('b');
      const bStarted = b.start({
        onRecords: (records) => bRecorder.onRecords(records),
        onAssigned: (partitions) => {
          log.push(`b:assigned ${tps(partitions).join(',')}`);
        },
        onRevoked: (partitions) => {
          log.push(`b:revoked ${tps(partitions).join(',')}`);
        },
      });
      await tick();
      expect(log, 'b waits for a to finish revoking').to.deep.equal([
        'a:assigned cookies/0,cookies/1,cookies/2,cookies/3,events/0,events/1,events/2,events/3',
        'a:revoked cookies/2,cookies/3,events/2,events/3',
      ]);
      revokeGate.resolve();
      await bStarted;
      expect(log.slice(2)).to.deep.equal(['a:revoke done', 'b:assigned cookies/2,cookies/3,events/2,events/3']);
      expect(tps(a.assignment())).to.deep.equal(['cookies/0', 'cookies/1', 'events/0', 'events/1']);
      expect(tps(b.assignment())).to.deep.equal(['cookies/2', 'cookies/3', 'events/2', 'events/3']);

      // b starts from a's commit made in onRevoked.
      await broker.settled();
      expect(bRecorder.records.map((r) => `${r.topic}/${r.partition}@${r.offset}`)).to.deep.equal(['events/3@1']);

      await b.close();
      expect(log.slice(4)).to.deep.equal([
        'b:revoked cookies/2,cookies/3,events/2,events/3',
        'a:assigned cookies/2,cookies/3,events/2,events/3',
      ]);
      expect(tps(a.assignment())).to.have.length(8);
      await producer.send([{ topic: 'cookies', key: 'u', value: 'jar', partition: 2 }]);
      await broker.settled();
      expect(aRecorder.records.filter((r) => r.topic === 'cookies').map((r) => r.value?.toString())).to.deep.equal(['jar']);
    });

    it('hands over every partition of a member that leaves in the middle of a rebalance', async () => {
      await admin.createTopics([{ name: 't', partitions: 4 }]);
      const gate = deferred();
      const a = client.consumer({ groupId: 'g', topics: ['t'] });
      await a.start({ onRecords: () => undefined, onRevoked: () => gate.promise });
      const b = client.consumer({ groupId: 'g', topics: ['t'] });
      const bStarted = b.start(new Recorder());
      await tick();
      // a is revoking t/2 and t/3 for b (blocked on the gate) and leaves meanwhile, still owning t/0, t/1.
      const aClosed = a.close();
      gate.resolve();
      await Promise.all([bStarted, aClosed]);
      await broker.settled();
      expect(tps(b.assignment())).to.deep.equal(['t/0', 't/1', 't/2', 't/3']);
    });

    for (const seed of [1, 2, 3]) {
      it(`keeps every partition owned once, co-partitioned, and loses no record across random joins and leaves (seed ${seed})`, async () => {
        let state = seed;
        const random = (): number => {
          state = (state * 1103515245 + 12345) & 0x7fffffff;
          return state / 0x7fffffff;
        };
        const pause = (): Promise<void> | undefined => (random() < 0.5 ? tick(random() * 5) : undefined);
        await admin.createTopics([
          { name: 'a', partitions: 6 },
          { name: 'b', partitions: 6 },
        ]);
        const processed = new Map<string, Set<number>>();
        const violations: string[] = [];
        const members: KafkaConsumer[] = [];
        const join = (): KafkaConsumer => {
          const c = client.consumer({ groupId: 'g', topics: ['a', 'b'] });
          const last = new Map<string, number>();
          void c.start({
            onRecords: async (records) => {
              const next = new Map<string, { topic: string; partition: number; offset: number }>();
              for (const r of records) {
                const key = `${r.topic}/${r.partition}`;
                // Collected, not thrown: a listener error is the consumer's (it redelivers), not the test's.
                if (r.offset <= (last.get(key) ?? -1)) violations.push(`${key}@${r.offset} after ${last.get(key)}`);
                last.set(key, r.offset);
                (processed.get(key) ?? processed.set(key, new Set()).get(key)!).add(r.offset);
                next.set(key, { topic: r.topic, partition: r.partition, offset: r.offset + 1 });
              }
              await pause();
              await c.commit([...next.values()]);
            },
            onRevoked: async (partitions) => {
              for (const tp of partitions) last.delete(`${tp.topic}/${tp.partition}`);
              await pause();
            },
          });
          return c;
        };
        for (let step = 0; step < 150; step++) {
          const x = random();
          if (x < 0.15 || members.length === 0) {
            members.push(join());
          } else if (x < 0.25 && members.length > 1) {
            const [leaving] = members.splice(Math.floor(random() * members.length), 1);
            if (random() < 0.5) await leaving!.close();
            else void leaving!.close();
          } else {
            const n = 1 + Math.floor(random() * 20);
            await producer.send(
              Array.from({ length: n }, () => ({ topic: random() < 0.5 ? 'a' : 'b', key: `k${Math.floor(random() * 50)}`, value: 'v' })),
            );
          }
          await pause();
        }
        await broker.settled();

        expect(violations, 'per-partition order within a member').to.deep.equal([]);
        const owned = members.flatMap((m) => tps(m.assignment()));
        expect(owned, 'owned once each').to.have.length(12);
        expect(new Set(owned).size).to.equal(12);
        for (const m of members) {
          const numbers = (topic: string): number[] => m.assignment().filter((tp) => tp.topic === topic).map((tp) => tp.partition).sort();
          expect(numbers('a'), 'co-partitioned').to.deep.equal(numbers('b'));
        }
        for (const topic of ['a', 'b']) {
          const end = await admin.listEndOffsets(topic);
          const committed = await admin.listCommittedOffsets('g', topic);
          for (const { partition, offset } of end) {
            const seen = processed.get(`${topic}/${partition}`) ?? new Set();
            expect(seen.size, `${topic}/${partition} delivered`).to.equal(offset);
            expect(committed[partition]!.offset, `${topic}/${partition} committed`).to.equal(offset === 0 ? -1 : offset);
          }
        }
      });
    }

    it('splits partitions with the range assignor when they do not divide evenly', async () => {
      await admin.createTopics([{ name: 't', partitions: 5 }]);
      const members = [0, 1, 2].map(() => client.consumer({ groupId: 'g', topics: ['t'] }));
      await Promise.all(members.map((m) => m.start(new Recorder())));
      expect(members.map((m) => tps(m.assignment()))).to.deep.equal([['t/0', 't/1'], ['t/2', 't/3'], ['t/4']]);
    });

    it('rejects a commit for a partition another member owns', async () => {
      await admin.createTopics([{ name: 't', partitions: 2 }]);
      const a = client.consumer({ groupId: 'g', topics: ['t'] });
      const b = client.consumer({ groupId: 'g', topics: ['t'] });
      await a.start(new Recorder());
      await b.start(new Recorder());
      const err = await a.commit([{ topic: 't', partition: 1, offset: 1 }]).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(KafkaClientError);
      expect(await admin.listCommittedOffsets('g', 't')).to.deep.equal([
        { partition: 0, offset: -1 },
        { partition: 1, offset: -1 },
      ]);
    });

    it('pause stops delivery of that partition only, resume restarts it', async () => {
      await admin.createTopics([{ name: 't', partitions: 2 }]);
      const recorder = new Recorder();
      const consumer = client.consumer({ groupId: 'g', topics: ['t'] });
      await consumer.start(recorder);
      consumer.pause([{ topic: 't', partition: 0 }]);
      await producer.send([
        { topic: 't', key: null, value: 'p0-a', partition: 0 },
        { topic: 't', key: null, value: 'p1-a', partition: 1 },
      ]);
      await broker.settled();
      await tick();
      expect(recorder.values()).to.deep.equal(['p1-a']);

      consumer.resume([{ topic: 't', partition: 0 }]);
      await broker.settled();
      expect(recorder.values(0)).to.deep.equal(['p0-a']);

      consumer.pause();
      await producer.send([{ topic: 't', key: null, value: 'p1-b', partition: 1 }]);
      await tick();
      expect(recorder.values(1)).to.deep.equal(['p1-a']);
      consumer.resume();
      await broker.settled();
      expect(recorder.values(1)).to.deep.equal(['p1-a', 'p1-b']);
    });

    it('holds partitions paused in onAssigned (restore first) and honours a commit made there', async () => {
      await admin.createTopics([{ name: 't', partitions: 2 }]);
      await producer.send([
        { topic: 't', key: null, value: 'p0-0', partition: 0 },
        { topic: 't', key: null, value: 'p0-1', partition: 0 },
        { topic: 't', key: null, value: 'p1-0', partition: 1 },
      ]);
      const recorder = new Recorder();
      const seenInOnAssigned: string[] = [];
      const consumer = client.consumer({ groupId: 'g', topics: ['t'] });
      await consumer.start({
        onRecords: (records) => recorder.onRecords(records),
        onAssigned: async (partitions) => {
          seenInOnAssigned.push(...tps(consumer.assignment()));
          consumer.pause(partitions.filter((tp) => tp.partition === 1));
          await consumer.commit([{ topic: 't', partition: 0, offset: 1 }]);
        },
      });
      await broker.settled();
      expect(seenInOnAssigned).to.deep.equal(['t/0', 't/1']);
      expect(recorder.values()).to.deep.equal(['p0-1']);
      consumer.resume([{ topic: 't', partition: 1 }]);
      await broker.settled();
      expect(recorder.values()).to.deep.equal(['p0-1', 'p1-0']);
    });

    it('does not deliver the next batch before the previous onRecords settled (backpressure)', async () => {
      await admin.createTopics([{ name: 't', partitions: 2 }]);
      const gates = [deferred(), deferred()];
      const batches: ConsumedRecord[][] = [];
      let inFlight = 0;
      let maxInFlight = 0;
      const consumer = client.consumer({ groupId: 'g', topics: ['t'] });
      await consumer.start({
        onRecords: async (records) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          batches.push(records);
          await gates[batches.length - 1]?.promise;
          inFlight--;
        },
      });
      await producer.send([{ topic: 't', key: null, value: 'a', partition: 0 }]);
      await tick();
      await producer.send([
        { topic: 't', key: null, value: 'b', partition: 0 },
        { topic: 't', key: null, value: 'c', partition: 1 },
      ]);
      await tick(50);
      expect(batches).to.have.length(1);
      gates[0]!.resolve();
      await tick();
      expect(batches).to.have.length(2);
      expect(batches[1]!.map((r) => r.value?.toString()).sort()).to.deep.equal(['b', 'c']);
      gates[1]!.resolve();
      await broker.settled();
      expect(maxInFlight).to.equal(1);
    });

    it('redelivers a batch whose onRecords failed', async () => {
      await admin.createTopics([{ name: 't', partitions: 1 }]);
      const seen: string[] = [];
      const redelivered = deferred();
      await client.consumer({ groupId: 'g', topics: ['t'] }).start({
        onRecords: (records) => {
          seen.push(...records.map((r) => r.value!.toString()));
          if (seen.length === 1) throw new Error('transient failure (expected by this test)');
          redelivered.resolve();
        },
      });
      await producer.send([{ topic: 't', key: 'k', value: 'x' }]);
      await redelivered.promise;
      expect(seen).to.deep.equal(['x', 'x']);
    });

    it('revokes the partitions of a deleted topic and follows a re-created one', async () => {
      await admin.createTopics([{ name: 't', partitions: 2 }]);
      const recorder = new Recorder();
      const consumer = client.consumer({ groupId: 'g', topics: ['t'] });
      await consumer.start(recorder);
      await producer.send([{ topic: 't', key: null, value: 'old', partition: 0 }]);
      await broker.settled();
      await consumer.commit([{ topic: 't', partition: 0, offset: 1 }]);

      await admin.deleteTopics(['t']);
      await broker.settled();
      expect(recorder.events).to.deep.equal(['c:assigned t/0,t/1', 'c:revoked t/0,t/1']);
      expect(consumer.assignment()).to.deep.equal([]);

      await admin.createTopics([{ name: 't', partitions: 2 }]);
      await broker.settled();
      expect(tps(consumer.assignment())).to.deep.equal(['t/0', 't/1']);
      // The re-created topic starts over: its offsets, and the group's, are new.
      expect(await admin.listCommittedOffsets('g', 't')).to.deep.equal([
        { partition: 0, offset: -1 },
        { partition: 1, offset: -1 },
      ]);
      await producer.send([{ topic: 't', key: null, value: 'new', partition: 0 }]);
      await broker.settled();
      expect(recorder.records.map((r) => `${r.value?.toString()}@${r.offset}`)).to.deep.equal(['old@0', 'new@0']);
    });

    it('close() of the client leaves the group so that another client takes over', async () => {
      await admin.createTopics([{ name: 't', partitions: 2 }]);
      const other = createEmbeddedClient(broker);
      try {
        const stays = other.consumer({ groupId: 'g', topics: ['t'] });
        const stayer = new Recorder('s');
        await stays.start(stayer);
        await client.consumer({ groupId: 'g', topics: ['t'] }).start(new Recorder());
        expect(tps(stays.assignment())).to.deep.equal(['t/0']);
        await client.close();
        await broker.settled();
        expect(tps(stays.assignment())).to.deep.equal(['t/0', 't/1']);
        const err = await producer.send([{ topic: 't', key: 'k', value: 'v' }]).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(KafkaClientError);
      } finally {
        await other.close();
      }
    });

    it('close() from inside the listener does not deadlock', async () => {
      await admin.createTopics([{ name: 't', partitions: 1 }]);
      const closed = deferred();
      const consumer = client.consumer({ groupId: 'g', topics: ['t'] });
      await consumer.start({
        onRecords: async () => {
          await consumer.close();
          closed.resolve();
        },
      });
      await producer.send([{ topic: 't', key: 'k', value: 'v' }]);
      await closed.promise;
      await broker.settled();
      expect(await admin.listGroups()).to.deep.equal([]);
    });
  });

  describe('partition reader', () => {
    it('reads [from, to) of one partition and waits for records beyond the end', async () => {
      await admin.createTopics([{ name: 't', partitions: 2 }]);
      await producer.send(Array.from({ length: 6 }, (_, i) => ({ topic: 't', key: null, value: `${i}`, partition: 1 })));
      const reader = client.reader();
      const range: number[] = [];
      await reader.read('t', 1, 2, (records) => {
        range.push(...records.map((r) => r.offset));
      }, 5);
      expect(range).to.deep.equal([2, 3, 4]);

      const toEnd: number[] = [];
      await reader.read('t', 1, 4, (records) => {
        toEnd.push(...records.map((r) => r.offset));
      });
      expect(toEnd).to.deep.equal([4, 5]);

      const beyond: number[] = [];
      const reading = reader.read('t', 1, 5, (records) => {
        beyond.push(...records.map((r) => r.offset));
      }, 7);
      await tick();
      expect(beyond).to.deep.equal([5]);
      await producer.send([
        { topic: 't', key: null, value: '6', partition: 1 },
        { topic: 't', key: null, value: '7', partition: 1 },
      ]);
      await reading;
      expect(beyond).to.deep.equal([5, 6]);

      const err = await reader.read('nope', 0, 0, () => undefined).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(UnknownTopicError);
    });
  });

  it('shares one process-wide broker between clients created without one', async () => {
    const a = createEmbeddedClient();
    const b = createEmbeddedClient();
    try {
      const topic = `shared-${Date.now()}`;
      await (await a.admin()).createTopics([{ name: topic, partitions: 1 }]);
      expect(await (await b.admin()).listTopics()).to.include(topic);
      expect(defaultEmbeddedKafka().hasTopic(topic)).to.equal(true);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
