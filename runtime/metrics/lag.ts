/**
 * Consumer lag of the groups this process runs, under the names and labels of the Kafka exporters,
 * so dashboards operators already have work unchanged:
 *
 * - kafka_exporter (Grafana dashboard 7589): `kafka_consumergroup_lag`,
 *   `kafka_consumergroup_current_offset` {consumergroup, topic, partition},
 *   `kafka_topic_partition_current_offset` {topic, partition}, `kafka_topic_partitions` {topic},
 *   `kafka_consumergroup_lag_sum` {consumergroup, topic};
 * - KMinion (its consumer-group panels): `kminion_kafka_consumer_group_topic_partition_lag`
 *   {group_id, topic_name, partition_id}, `kminion_kafka_consumer_group_topic_lag` and
 *   `kminion_kafka_consumer_group_topic_offset_sum` {group_id, topic_name},
 *   `kminion_kafka_topic_partition_high_water_mark` {topic_name, partition_id},
 *   `kminion_kafka_topic_high_water_mark_sum` {topic_name};
 * - plus `kafka_consumergroup_lag_seconds`: the age of the oldest unprocessed record (the one at
 *   the committed offset), 0 when the partition is caught up.
 *
 * Computed on scrape, from a cache: a scrape within `maxAgeMs` of the last computation is served
 * from it, so several Prometheus servers (or a fast scrape interval) cost the brokers one round of
 * offset requests per `maxAgeMs`. A failed computation keeps the previous values and counts
 * `tagstream_lag_errors_total`. Every process that runs a group exports the whole group (as
 * kafka_exporter does): aggregate with `max by (consumergroup, topic, partition)` across instances.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../core/log.ts';
import { withTimeout } from '../../core/async.ts';
import type { KafkaAdmin, KafkaClient, PartitionReader } from '../kafka/types.ts';
import { computeLag, type PartitionLag } from '../lag.ts';

export interface LagTarget {
  group: string;
  topic: string;
}

export interface LagMetricsOptions {
  registry: Registry;
  client: Pick<KafkaClient, 'admin' | 'reader'>;
  targets: readonly LagTarget[];
  /** A scrape within this age of the last computation is served from the cache. Default 5 s. */
  maxAgeMs?: number;
  /**
   * Read the record at each lagging partition's committed offset for `kafka_consumergroup_lag_seconds`.
   * Default true; `run` turns it off on the kafkajs client, whose partition reader joins a
   * throwaway group per read (seconds per partition, on every scrape).
   */
  lagSeconds?: boolean;
  /** Budget of one computation; past it the scrape gets the previous values. Default 5 s. */
  timeoutMs?: number;
  now?: () => number;
  logger?: Logger;
}

export interface LagMetrics {
  /** Computes now (bypassing the cache); resolves when the gauges hold the new values. */
  refresh(): Promise<void>;
  /** The rows of the last computation. */
  rows(): readonly LagRow[];
  close(): Promise<void>;
}

export type LagRow = PartitionLag;

export function startLagMetrics(options: LagMetricsOptions): LagMetrics {
  const { registry } = options;
  const now = options.now ?? Date.now;
  const maxAgeMs = options.maxAgeMs ?? 5_000;
  const timeoutMs = options.timeoutMs ?? 5_000;
  let rows: LagRow[] = [];
  let computedAt = -Infinity;
  let running: Promise<void> | undefined;
  let admin: Promise<KafkaAdmin> | undefined;
  let reader: PartitionReader | undefined;
  let closed = false;
  let lastWarn = 0;

  const errors: Counter = new Counter({
    name: 'tagstream_lag_errors_total',
    help: 'Lag computations that failed (the previous values were served)',
    registers: [registry],
    // Scraped with the gauges: it must wait for the computation they wait for.
    async collect() {
      await current();
    },
  });

  const compute = async (): Promise<void> => {
    admin ??= options.client.admin();
    const a = await admin;
    if (options.lagSeconds !== false) reader ??= options.client.reader();
    const next: LagRow[] = [];
    for (const target of options.targets) {
      next.push(...(await computeLag(a, target.group, target.topic, reader === undefined ? { now } : { reader, now })));
    }
    rows = next;
    computedAt = now();
  };

  const current = (): Promise<void> => {
    if (closed || now() - computedAt < maxAgeMs) return Promise.resolve();
    running ??= withTimeout('consumer lag computation', timeoutMs, () => compute())
      .catch((error: unknown) => {
        errors.inc();
        // A fresh admin connection next time: this one may be what failed (a broker gone away).
        const failed = admin;
        admin = undefined;
        void failed?.then((x) => x.close()).catch(() => undefined);
        if (now() - lastWarn > 60_000) {
          lastWarn = now();
          options.logger?.warn({ err: error }, 'consumer lag could not be computed: serving the previous values (logged once a minute)');
        }
      })
      .finally(() => (running = undefined));
    return running;
  };

  /** A gauge whose values are the cached rows, refreshed first when the cache is old. */
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (g: Gauge<L>, rows: readonly LagRow[]) => void): void => {
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        await current();
        this.reset();
        fill(this, rows);
      },
    });
  };
  const cg = (r: LagRow) => ({ consumergroup: r.group, topic: r.topic, partition: String(r.partition) });
  const km = (r: LagRow) => ({ group_id: r.group, topic_name: r.topic, partition_id: String(r.partition) });
  const byTopic = (rs: readonly LagRow[]) => uniqueBy(rs, (r) => `${r.topic}/${r.partition}`);
  const sums = (rs: readonly LagRow[], value: (r: LagRow) => number) => {
    const out = new Map<string, { group: string; topic: string; value: number }>();
    for (const r of rs) {
      const k = `${r.group}\u0000${r.topic}`;
      const e = out.get(k) ?? { group: r.group, topic: r.topic, value: 0 };
      e.value += value(r);
      out.set(k, e);
    }
    return [...out.values()];
  };

  gauge('kafka_consumergroup_lag', 'Lag of the consumer group on the partition: end offset - committed offset (the whole log when it never committed)', ['consumergroup', 'topic', 'partition'], (g, rs) => {
    for (const r of rs) g.set(cg(r), r.lag);
  });
  gauge('kafka_consumergroup_current_offset', 'Committed offset of the consumer group on the partition (-1: none)', ['consumergroup', 'topic', 'partition'], (g, rs) => {
    for (const r of rs) g.set(cg(r), r.committedOffset);
  });
  gauge('kafka_consumergroup_lag_seconds', 'Age in seconds of the oldest record the group has not processed on the partition (0: caught up)', ['consumergroup', 'topic', 'partition'], (g, rs) => {
    for (const r of rs) if (r.lagSeconds !== null) g.set(cg(r), r.lagSeconds);
  });
  gauge('kafka_consumergroup_lag_sum', 'Lag of the consumer group summed over the partitions of the topic', ['consumergroup', 'topic'], (g, rs) => {
    for (const s of sums(rs, (r) => r.lag)) g.set({ consumergroup: s.group, topic: s.topic }, s.value);
  });
  gauge('kafka_topic_partition_current_offset', 'End offset of the partition (the offset the next record gets)', ['topic', 'partition'], (g, rs) => {
    for (const r of byTopic(rs)) g.set({ topic: r.topic, partition: String(r.partition) }, r.endOffset);
  });
  gauge('kafka_topic_partitions', 'Partitions of the topic', ['topic'], (g, rs) => {
    const counts = new Map<string, number>();
    for (const r of byTopic(rs)) counts.set(r.topic, (counts.get(r.topic) ?? 0) + 1);
    for (const [topic, n] of counts) g.set({ topic }, n);
  });
  gauge('kminion_kafka_consumer_group_topic_partition_lag', 'KMinion name: lag of the group on the partition', ['group_id', 'topic_name', 'partition_id'], (g, rs) => {
    for (const r of rs) g.set(km(r), r.lag);
  });
  gauge('kminion_kafka_consumer_group_topic_lag', 'KMinion name: lag of the group summed over the partitions of the topic', ['group_id', 'topic_name'], (g, rs) => {
    for (const s of sums(rs, (r) => r.lag)) g.set({ group_id: s.group, topic_name: s.topic }, s.value);
  });
  gauge('kminion_kafka_consumer_group_topic_offset_sum', 'KMinion name: committed offsets of the group summed over the partitions of the topic', ['group_id', 'topic_name'], (g, rs) => {
    for (const s of sums(rs, (r) => Math.max(0, r.committedOffset))) g.set({ group_id: s.group, topic_name: s.topic }, s.value);
  });
  gauge('kminion_kafka_topic_partition_high_water_mark', 'KMinion name: end offset of the partition', ['topic_name', 'partition_id'], (g, rs) => {
    for (const r of byTopic(rs)) g.set({ topic_name: r.topic, partition_id: String(r.partition) }, r.endOffset);
  });
  gauge('kminion_kafka_topic_high_water_mark_sum', 'KMinion name: end offsets summed over the partitions of the topic', ['topic_name'], (g, rs) => {
    const totals = new Map<string, number>();
    for (const r of byTopic(rs)) totals.set(r.topic, (totals.get(r.topic) ?? 0) + r.endOffset);
    for (const [topic_name, v] of totals) g.set({ topic_name }, v);
  });

  return {
    async refresh() {
      computedAt = -Infinity;
      await current();
    },
    rows: () => rows,
    async close() {
      closed = true;
      await running?.catch(() => undefined);
      const opened = admin;
      admin = undefined;
      await Promise.allSettled([opened?.then((a) => a.close()), reader?.close()]);
    },
  };
}

function uniqueBy<T>(items: readonly T[], key: (t: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const item of items) if (!seen.has(key(item))) seen.set(key(item), item);
  return [...seen.values()];
}
