import { Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';

/**
 * The runner's Prometheus metrics, on the registry the application passes in (so one /metrics
 * endpoint shows every component). Several runners may share a registry (one per consumer group, or
 * several members in one test process): metrics are looked up before being created, and the
 * gauges move by inc/dec so members add up instead of overwriting each other.
 */
export class RunnerMetrics {
  readonly processed: Counter<'group' | 'topic' | 'outcome'>;
  readonly inFlight: Gauge<'group'>;
  readonly buffered: Gauge<'group'>;
  readonly pausedPartitions: Gauge<'group'>;
  readonly restoreRemaining: Gauge<'group' | 'topic' | 'partition'>;
  readonly restoredRecords: Counter<'group' | 'topic'>;
  readonly commitLatency: Histogram<'group'>;
  readonly commits: Counter<'group' | 'outcome'>;
  readonly rebalances: Counter<'group' | 'kind'>;

  constructor(readonly registry: Registry = new Registry(), prefix = 'tagstream_runner_') {
    const reuse = <M extends Metric>(name: string, create: () => M): M =>
      (registry.getSingleMetric(name) as M | undefined) ?? create();
    const registers = [registry];
    this.processed = reuse(`${prefix}records_processed_total`, () => new Counter({
      name: `${prefix}records_processed_total`,
      help: 'Source records finished (outputs acknowledged); outcome ok, or error when onError handled a failure',
      labelNames: ['group', 'topic', 'outcome'] as const,
      registers,
    }));
    this.inFlight = reuse(`${prefix}in_flight`, () => new Gauge({
      name: `${prefix}in_flight`,
      help: 'Records being processed now (bounded by the concurrency setting)',
      labelNames: ['group'] as const,
      registers,
    }));
    this.buffered = reuse(`${prefix}buffered`, () => new Gauge({
      name: `${prefix}buffered`,
      help: 'Records fetched and waiting (key busy, no free slot, or partition restoring)',
      labelNames: ['group'] as const,
      registers,
    }));
    this.pausedPartitions = reuse(`${prefix}paused_partitions`, () => new Gauge({
      name: `${prefix}paused_partitions`,
      help: 'Assigned source partitions whose fetching is paused (backpressure or restore)',
      labelNames: ['group'] as const,
      registers,
    }));
    this.restoreRemaining = reuse(`${prefix}restore_remaining_records`, () => new Gauge({
      name: `${prefix}restore_remaining_records`,
      help: 'Changelog offsets left to restore before the partition processes records',
      labelNames: ['group', 'topic', 'partition'] as const,
      registers,
    }));
    this.restoredRecords = reuse(`${prefix}restored_records_total`, () => new Counter({
      name: `${prefix}restored_records_total`,
      help: 'Changelog records handed to the state restore callback',
      labelNames: ['group', 'topic'] as const,
      registers,
    }));
    this.commitLatency = reuse(`${prefix}commit_duration_seconds`, () => new Histogram({
      name: `${prefix}commit_duration_seconds`,
      help: 'Latency of offset commits',
      labelNames: ['group'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }));
    this.commits = reuse(`${prefix}commits_total`, () => new Counter({
      name: `${prefix}commits_total`,
      help: 'Offset commits by outcome (ok, error)',
      labelNames: ['group', 'outcome'] as const,
      registers,
    }));
    this.rebalances = reuse(`${prefix}partitions_rebalanced_total`, () => new Counter({
      name: `${prefix}partitions_rebalanced_total`,
      help: 'Source partitions assigned to or revoked from this member',
      labelNames: ['group', 'kind'] as const,
      registers,
    }));
  }
}
