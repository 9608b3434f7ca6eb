/**
 * The consumer-lag exporter (runtime/metrics/lag.ts) on the embedded broker: kafka_exporter's and
 * KMinion's names and labels with the values of `lag`, the lag in seconds from the record at the
 * committed offset, the cache between scrapes, and the previous values when the broker fails.
 */
import { expect } from 'chai';
import type { Registry } from 'prom-client';
import { EmbeddedKafka, createEmbeddedClient } from '../../runtime/kafka/embedded/index.ts';
import type { KafkaAdmin, KafkaClient } from '../../runtime/kafka/types.ts';
import { startLagMetrics, type LagMetrics } from '../../runtime/metrics/lag.ts';
import { createProcessRegistry } from '../../runtime/metrics/registry.ts';
import { sample } from './stack.ts';

describe('consumer lag metrics under the Kafka exporters\' names', () => {
  let broker: EmbeddedKafka;
  let client: KafkaClient;
  let lag: LagMetrics | undefined;
  let registry: Registry;
  let now = Date.parse('2026-12-01T10:00:00.000Z');
  let adminCalls = 0;
  let failing = false;

  beforeEach(async () => {
    broker = new EmbeddedKafka();
    client = createEmbeddedClient(broker);
    registry = createProcessRegistry();
    adminCalls = 0;
    failing = false;
    const admin = await client.admin();
    await admin.createTopics([{ name: 'events', partitions: 2 }]);
    const producer = await client.producer();
    // Partition 0: 5 records written 60, 50, 40, 30, 20 s ago; partition 1: one record.
    await producer.send(Array.from({ length: 5 }, (_, i) => ({ topic: 'events', key: null, value: `${i}`, partition: 0, timestamp: now - (60 - i * 10) * 1000 })));
    await producer.send([{ topic: 'events', key: null, value: 'x', partition: 1, timestamp: now - 5000 }]);
    await producer.close();
    // The group processed the first two records of partition 0 and everything of partition 1.
    const consumer = client.consumer({ groupId: 'processor', topics: ['events'] });
    await consumer.start({
      onRecords: async (records) => {
        const p0 = records.filter((r) => r.partition === 0 && r.offset < 2);
        if (p0.length > 0) await consumer.commit([{ topic: 'events', partition: 0, offset: 2 }]);
        if (records.some((r) => r.partition === 1)) await consumer.commit([{ topic: 'events', partition: 1, offset: 1 }]);
      },
    });
    await broker.settled();
    await consumer.close();
    await admin.close();
  });

  afterEach(async () => {
    await lag?.close();
    lag = undefined;
    await client.close();
  });

  /** The client with its admin counted and, while `failing`, failing. */
  const counted = (): Pick<KafkaClient, 'admin' | 'reader'> => ({
    reader: () => client.reader(),
    admin: async (): Promise<KafkaAdmin> => {
      const real = await client.admin();
      return new Proxy(real, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown;
          if (prop === 'listEndOffsets' && typeof value === 'function') {
            return (...args: unknown[]) => {
              adminCalls += 1;
              if (failing) return Promise.reject(new Error('broker down'));
              return (value as (...a: unknown[]) => unknown).apply(target, args);
            };
          }
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
  });

  it('exports lag, committed and end offsets, lag seconds, and the KMinion names, per partition', async () => {
    lag = startLagMetrics({ registry, client: counted(), targets: [{ group: 'processor', topic: 'events' }], now: () => now });
    const text = await registry.metrics();
    const p = (partition: string) => ({ consumergroup: 'processor', topic: 'events', partition });
    expect(sample(text, 'kafka_consumergroup_lag', p('0'))).to.equal(3);
    expect(sample(text, 'kafka_consumergroup_lag', p('1'))).to.equal(0);
    expect(sample(text, 'kafka_consumergroup_current_offset', p('0'))).to.equal(2);
    expect(sample(text, 'kafka_topic_partition_current_offset', { topic: 'events', partition: '0' })).to.equal(5);
    expect(sample(text, 'kafka_topic_partitions', { topic: 'events' })).to.equal(2);
    expect(sample(text, 'kafka_consumergroup_lag_sum', { consumergroup: 'processor', topic: 'events' })).to.equal(3);
    // The oldest unprocessed record of partition 0 is offset 2, written 40 s ago; partition 1 is caught up.
    expect(sample(text, 'kafka_consumergroup_lag_seconds', p('0'))).to.equal(40);
    expect(sample(text, 'kafka_consumergroup_lag_seconds', p('1'))).to.equal(0);
    expect(sample(text, 'kminion_kafka_consumer_group_topic_partition_lag', { group_id: 'processor', topic_name: 'events', partition_id: '0' })).to.equal(3);
    expect(sample(text, 'kminion_kafka_consumer_group_topic_lag', { group_id: 'processor', topic_name: 'events' })).to.equal(3);
    expect(sample(text, 'kminion_kafka_topic_high_water_mark_sum', { topic_name: 'events' })).to.equal(6);
  });

  it('serves scrapes within maxAgeMs from the cache, then computes again', async () => {
    lag = startLagMetrics({ registry, client: counted(), targets: [{ group: 'processor', topic: 'events' }], now: () => now, maxAgeMs: 5000 });
    await registry.metrics();
    await registry.metrics();
    expect(adminCalls).to.equal(1);
    now += 6000;
    const text = await registry.metrics();
    expect(adminCalls).to.equal(2);
    expect(sample(text, 'kafka_consumergroup_lag_seconds', { consumergroup: 'processor', topic: 'events', partition: '0' })).to.equal(46);
  });

  it('keeps the previous values and counts the error when the broker fails, and recovers', async () => {
    lag = startLagMetrics({ registry, client: counted(), targets: [{ group: 'processor', topic: 'events' }], now: () => now, maxAgeMs: 1000 });
    await registry.metrics();
    failing = true;
    now += 2000;
    const text = await registry.metrics();
    expect(sample(text, 'tagstream_lag_errors_total')).to.equal(1);
    expect(sample(text, 'kafka_consumergroup_lag', { consumergroup: 'processor', topic: 'events', partition: '0' })).to.equal(3);
    // The broker is back: a fresh admin, fresh values.
    failing = false;
    now += 2000;
    const again = await registry.metrics();
    expect(sample(again, 'tagstream_lag_errors_total')).to.equal(1);
    expect(sample(again, 'kafka_consumergroup_lag_seconds', { consumergroup: 'processor', topic: 'events', partition: '0' })).to.equal(44);
  });

  it('without lag seconds (the kafkajs client) exports the offsets only', async () => {
    lag = startLagMetrics({ registry, client: counted(), targets: [{ group: 'processor', topic: 'events' }], now: () => now, lagSeconds: false });
    const text = await registry.metrics();
    expect(sample(text, 'kafka_consumergroup_lag', { consumergroup: 'processor', topic: 'events', partition: '0' })).to.equal(3);
    expect(text).to.not.match(/^kafka_consumergroup_lag_seconds\{/m);
  });
});
