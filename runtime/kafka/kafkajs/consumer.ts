import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { coPartitionedAssigner } from './assigner.ts';
import { KafkaClientError, UnknownTopicError } from '../../../core/errors.ts';
import { componentLogger, type Logger } from '../../../core/log.ts';
import type {
  CommitOffset,
  ConsumedRecord,
  ConsumerCapabilities,
  ConsumerListener,
  GroupConsumerOptions,
  KafkaConsumer,
  TopicPartition,
} from '../types.ts';
import { connectWithin, mapError, RETRY, type ResolvedOptions } from './common.ts';


const DEFAULT_HEARTBEAT_MS = 3_000;

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/**
 * Consumer-group member on kafkajs (classic protocol; kafkajs has no KIP-848).
 *
 * - pause()/resume() act per partition (kafkajs keeps a paused set per topic).
 * - kafkajs heartbeats only when the batch handler asks it to: while onRecords runs, a timer
 *   calls `heartbeat()` so a slow batch does not cost the membership.
 * - onRevoked/onAssigned are derived from the assignment of each GROUP_JOIN event and run before
 *   the next batch; kafkajs rejoins only between batches, so the batch in progress is finished
 *   before the partitions move, but onRevoked itself is not awaited before the hand-off
 *   (`awaitableRevoke: false`).
 * - Offsets are committed only by commit() (autoCommit off).
 */
export class KafkajsConsumer implements KafkaConsumer {
  readonly groupId: string;
  readonly capabilities: ConsumerCapabilities = { perPartitionPause: true, awaitableRevoke: false };

  readonly #kafka: Kafka;
  readonly #options: ResolvedOptions;
  readonly #groupOptions: GroupConsumerOptions;
  readonly #consumer: Consumer;
  #listener: ConsumerListener | undefined;
  #running = false;
  #assignment: TopicPartition[] = [];
  readonly #assigned = new Set<string>();
  #chain: Promise<void> = Promise.resolve();
  /** pause/resume calls made before run() (kafkajs rejects them until the consumer runs), replayed in order. */
  readonly #pending: { op: 'pause' | 'resume'; partitions: readonly TopicPartition[] | undefined }[] = [];
  #closed: Promise<void> | undefined;

  readonly #log: Logger;

  constructor(kafka: Kafka, options: ResolvedOptions, groupOptions: GroupConsumerOptions) {
    this.#log = componentLogger(options.logger, 'kafkajs.consumer');
    // kafkajs 2.x has no group.instance.id (static membership, KIP-345): refusing beats silently
    // running as a dynamic member whose restart stalls its partitions for a whole session.
    if (groupOptions.groupInstanceId !== undefined) {
      throw new KafkaClientError('static group membership (groupInstanceId, the instanceId setting) is not supported by the kafkajs client: use --client platformatic or unset it', {
        groupId: groupOptions.groupId,
        groupInstanceId: groupOptions.groupInstanceId,
      });
    }
    this.groupId = groupOptions.groupId;
    this.#kafka = kafka;
    this.#options = options;
    this.#groupOptions = groupOptions;
    this.#consumer = kafka.consumer({
      groupId: groupOptions.groupId,
      allowAutoTopicCreation: false,
      // Partition p of every subscribed topic to one member: the runtime's tasks span topics.
      partitionAssigners: [coPartitionedAssigner],
      maxWaitTimeInMs: 500,
      // kafkajs restarts a member that crashed on a retriable error (broker restart) by itself.
      retry: RETRY,
      ...(groupOptions.sessionTimeoutMs !== undefined ? { sessionTimeout: groupOptions.sessionTimeoutMs } : {}),
      ...(groupOptions.heartbeatIntervalMs !== undefined ? { heartbeatInterval: groupOptions.heartbeatIntervalMs } : {}),
      ...(groupOptions.rebalanceTimeoutMs !== undefined ? { rebalanceTimeout: groupOptions.rebalanceTimeoutMs } : {}),
      ...(groupOptions.maxBytes !== undefined ? { maxBytes: groupOptions.maxBytes } : {}),
    });
  }

  async start(listener: ConsumerListener): Promise<void> {
    if (this.#listener) throw new KafkaClientError('consumer already started', { groupId: this.groupId });
    this.#listener = listener;
    const topics = [...this.#groupOptions.topics];
    await connectWithin(() => this.#consumer.connect(), this.#options, () => this.#consumer.disconnect());
    let joined!: () => void;
    let failed!: (error: Error) => void;
    const firstJoin = new Promise<void>((resolve, reject) => {
      joined = resolve;
      failed = reject;
    });
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, (event) => {
      this.#onJoin(event.payload.memberAssignment);
      joined();
    });
    this.#consumer.on(this.#consumer.events.CRASH, (event) => {
      this.#log.error({ err: event.payload.error, groupId: this.groupId }, 'kafkajs consumer crashed');
      failed(event.payload.error);
    });
    try {
      await this.#checkTopics(topics);
      await this.#consumer.subscribe({ topics, fromBeginning: (this.#groupOptions.autoOffsetReset ?? 'earliest') === 'earliest' });
      await this.#consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: true,
        eachBatch: (payload) => this.#onBatch(payload),
      });
      this.#running = true;
      for (const { op, partitions } of this.#pending.splice(0)) this[op](partitions);
      await firstJoin;
    } catch (error) {
      await this.#consumer.disconnect().catch(() => undefined);
      throw mapError(error, { brokers: this.#options.brokers, connectTimeoutMs: this.#options.connectTimeoutMs, topics, operation: 'consumer start' });
    }
    await this.#chain;
  }

  /** kafkajs would retry a missing topic's metadata for seconds; a listTopics answers at once. */
  async #checkTopics(topics: readonly string[]): Promise<void> {
    const admin = this.#kafka.admin({ retry: RETRY });
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      for (const t of topics) if (!existing.has(t)) throw new UnknownTopicError(t, { groupId: this.groupId, client: 'kafkajs' });
    } finally {
      await admin.disconnect();
    }
  }

  pause(partitions?: readonly TopicPartition[]): void {
    if (!this.#running) {
      this.#pending.push({ op: 'pause', partitions });
      return;
    }
    this.#consumer.pause(this.#toTopicPartitions(partitions));
  }

  resume(partitions?: readonly TopicPartition[]): void {
    if (!this.#running) {
      this.#pending.push({ op: 'resume', partitions });
      return;
    }
    this.#consumer.resume(this.#toTopicPartitions(partitions));
  }

  #toTopicPartitions(partitions: readonly TopicPartition[] | undefined): { topic: string; partitions?: number[] }[] {
    if (partitions === undefined) return this.#groupOptions.topics.map((topic) => ({ topic }));
    const byTopic = new Map<string, number[]>();
    for (const p of partitions) {
      let list = byTopic.get(p.topic);
      if (!list) byTopic.set(p.topic, (list = []));
      list.push(p.partition);
    }
    return [...byTopic].map(([topic, ps]) => ({ topic, partitions: ps }));
  }

  async commit(offsets: readonly CommitOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    try {
      await this.#consumer.commitOffsets(offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: String(o.offset) })));
    } catch (error) {
      throw mapError(error, {
        brokers: this.#options.brokers,
        connectTimeoutMs: this.#options.connectTimeoutMs,
        topics: [...new Set(offsets.map((o) => o.topic))],
        operation: 'commit',
      });
    }
  }

  assignment(): TopicPartition[] {
    return this.#assignment.map((tp) => ({ ...tp }));
  }

  close(): Promise<void> {
    this.#closed ??= this.#consumer.disconnect().catch((error: unknown) => {
      this.#log.warn({ err: error, groupId: this.groupId }, 'consumer close failed');
    });
    return this.#closed;
  }

  #onJoin(memberAssignment: Record<string, number[]>): void {
    const next: TopicPartition[] = [];
    for (const [topic, partitions] of Object.entries(memberAssignment)) for (const partition of partitions) next.push({ topic, partition });
    const nextKeys = new Set(next.map((tp) => tpKey(tp.topic, tp.partition)));
    const revoked = this.#assignment.filter((tp) => !nextKeys.has(tpKey(tp.topic, tp.partition)));
    const added = next.filter((tp) => !this.#assigned.has(tpKey(tp.topic, tp.partition)));
    this.#assignment = next;
    this.#assigned.clear();
    for (const k of nextKeys) this.#assigned.add(k);
    const listener = this.#listener;
    if (!listener) return;
    this.#chain = this.#chain
      .then(async () => {
        if (revoked.length > 0) await listener.onRevoked?.(revoked);
        if (added.length > 0) await listener.onAssigned?.(added);
      })
      .catch((error: unknown) => this.#log.error({ err: error, groupId: this.groupId }, 'rebalance listener failed'));
  }

  async #onBatch({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    await this.#chain;
    if (!isRunning() || isStale() || !this.#assigned.has(tpKey(batch.topic, batch.partition))) return;
    const records = batch.messages.map((m) => toConsumedRecord(batch.topic, batch.partition, m));
    if (records.length === 0) return;
    const interval = this.#groupOptions.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
    const timer = setInterval(() => {
      // A failed heartbeat (rebalance in progress) is handled by kafkajs after this batch.
      heartbeat().catch(() => undefined);
    }, interval);
    try {
      await this.#listener!.onRecords(records);
    } catch (error) {
      // No error channel in the contract: stop this member; uncommitted records go to another.
      this.#log.error({ err: error, groupId: this.groupId }, 'onRecords failed; closing the consumer');
      void this.close();
      // Returning normally lets kafkajs stop cleanly; the next batch is not fetched (disconnect).
    } finally {
      clearInterval(timer);
    }
  }
}

function toConsumedRecord(topic: string, partition: number, m: KafkaMessage): ConsumedRecord {
  const headers: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    // kafkajs gives an array for a repeated header key; the contract keeps the last one.
    const value = Array.isArray(v) ? v[v.length - 1] : v;
    headers[k] = value === undefined ? Buffer.alloc(0) : Buffer.isBuffer(value) ? value : Buffer.from(value);
  }
  return {
    topic,
    partition,
    offset: Number(m.offset),
    key: m.key ?? null,
    value: m.value ?? null,
    headers,
    timestamp: Number(m.timestamp),
  };
}
