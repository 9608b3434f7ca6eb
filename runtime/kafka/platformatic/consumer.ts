import { Consumer, type GroupAssignment, type Message, type MessagesStream } from '@platformatic/kafka';
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
import { coPartitionedAssigner } from './assigner.ts';
import { baseOptions, probe, toHeaderRecord, type ResolvedOptions } from './common.ts';
import { mapError } from './errors.ts';


/** Upper bound of one onRecords batch; the stream buffers up to its highWaterMark anyway. */
const MAX_BATCH = 500;

type BufferMessage = Message<Buffer, Buffer, Buffer, Buffer>;

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/**
 * Consumer-group member on @platformatic/kafka (classic protocol, eager assignment).
 *
 * What the library allows, and so what this adapter does:
 * - pause()/resume(): the library's MessagesStream pauses as a whole, so pausing any partition
 *   pauses the whole member; it resumes when no partition is paused any more
 *   (`perPartitionPause: false`). Delivery of already-buffered records also stops while paused.
 * - onRevoked is called after the new assignment arrived (from the `consumer:group:join` event):
 *   the library has no hook that runs before the partitions are released (its issue #339), so the
 *   callback cannot delay the hand-off (`awaitableRevoke: false`). Records of partitions that are
 *   no longer assigned are dropped at delivery, so a revoked partition is not processed twice.
 * - Offsets are committed only by commit(); autocommit is off.
 */
export class PlatformaticConsumer implements KafkaConsumer {
  readonly groupId: string;
  readonly capabilities: ConsumerCapabilities = { perPartitionPause: false, awaitableRevoke: false };

  readonly #options: ResolvedOptions;
  readonly #groupOptions: GroupConsumerOptions;
  readonly #consumer: Consumer<Buffer, Buffer, Buffer, Buffer>;
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  #listener: ConsumerListener | undefined;
  #assignment: TopicPartition[] = [];
  readonly #assigned = new Set<string>();
  /** Listener callbacks (rebalance, records) run one at a time, in the order of events. */
  #chain: Promise<void> = Promise.resolve();
  #pausedAll = false;
  readonly #pausedPartitions = new Set<string>();
  readonly #leaderEpochs = new Map<string, number>();
  #wake: (() => void) | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;

  readonly #log: Logger;

  constructor(options: ResolvedOptions, groupOptions: GroupConsumerOptions) {
    this.#log = componentLogger(options.logger, 'platformatic.consumer');
    this.groupId = groupOptions.groupId;
    this.#options = options;
    this.#groupOptions = groupOptions;
    this.#consumer = new Consumer({
      ...baseOptions(options, groupOptions.clientId ?? options.clientId),
      groupId: groupOptions.groupId,
      autocommit: false,
      // Partition p of every subscribed topic to one member: the runtime's tasks span topics.
      partitionAssigner: coPartitionedAssigner,
      // Short fetch wait: close() and pause() take effect within one fetch round-trip.
      maxWaitTime: 500,
      ...(groupOptions.sessionTimeoutMs !== undefined ? { sessionTimeout: groupOptions.sessionTimeoutMs } : {}),
      ...(groupOptions.heartbeatIntervalMs !== undefined ? { heartbeatInterval: groupOptions.heartbeatIntervalMs } : {}),
      ...(groupOptions.rebalanceTimeoutMs !== undefined ? { rebalanceTimeout: groupOptions.rebalanceTimeoutMs } : {}),
      ...(groupOptions.maxBytes !== undefined ? { maxBytes: groupOptions.maxBytes } : {}),
      // Static membership: on close() the library still sends LeaveGroup (by member id), so a
      // graceful stop hands the partitions over at once; only a crash waits for the session.
      ...(groupOptions.groupInstanceId !== undefined ? { groupInstanceId: groupOptions.groupInstanceId } : {}),
    });
  }

  async start(listener: ConsumerListener): Promise<void> {
    if (this.#listener) throw new KafkaClientError('consumer already started', { groupId: this.groupId });
    this.#listener = listener;
    const topics = [...this.#groupOptions.topics];
    this.#consumer.on('consumer:group:join', (payload) => this.#onJoin(payload.assignments ?? []));
    await probe(this.#consumer, this.#options);
    try {
      // Checked before joining: the library would otherwise join and fetch nothing, silently.
      const metadata = await this.#consumer.metadata({ topics, retries: 1 });
      for (const topic of topics) {
        if (!metadata.topics.has(topic)) throw new UnknownTopicError(topic, { groupId: this.groupId });
      }
      this.#stream = await this.#consumer.consume({
        topics,
        autocommit: false,
        mode: 'committed',
        fallbackMode: this.#groupOptions.autoOffsetReset ?? 'earliest',
      });
    } catch (error) {
      await this.#consumer.close(true).catch(() => undefined);
      throw this.#mapError(error, 'consumer start', topics);
    }
    this.#attach(this.#stream);
    void this.#run();
    await this.#chain;
  }

  #attach(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>): void {
    // A permanent 'readable' listener keeps the stream out of flowing mode (we pull with read())
    // while keeping the library's fetch loop running: it stops fetching when nobody listens.
    stream.on('readable', () => this.#notify());
    stream.on('close', () => this.#notify());
    stream.on('error', (error) => {
      this.#log.warn({ err: error, groupId: this.groupId }, 'consumer stream failed; it will be opened again');
      this.#notify();
    });
    if (this.#pausedAll || this.#pausedPartitions.size > 0) stream.pause();
  }

  /**
   * The library destroys its stream on any fetch error other than an offset out of range: after a
   * broker restart, FENCED_LEADER_EPOCH or FETCH_SESSION_ID_NOT_FOUND end it for good while the
   * member stays in the group. A new stream (it rejoins, then reads from the committed offsets)
   * keeps the member consuming; records it delivers again below what was already delivered are the
   * runner's to skip (it tracks offsets per partition). Tried until it works or close() is called.
   */
  async #reopen(): Promise<void> {
    let delay = 500;
    while (!this.#closing) {
      try {
        const stream = await this.#consumer.consume({
          topics: [...this.#groupOptions.topics],
          autocommit: false,
          mode: 'committed',
          fallbackMode: this.#groupOptions.autoOffsetReset ?? 'earliest',
        });
        if (this.#closing) {
          await stream.close().catch(() => undefined);
          return;
        }
        this.#stream = stream;
        this.#attach(stream);
        this.#log.warn({ groupId: this.groupId }, 'consumer stream opened again');
        return;
      } catch (error) {
        this.#log.warn({ err: error, groupId: this.groupId, retryInMs: delay }, 'opening the consumer stream again failed');
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }

  pause(partitions?: readonly TopicPartition[]): void {
    if (partitions === undefined) this.#pausedAll = true;
    else for (const p of partitions) this.#pausedPartitions.add(tpKey(p.topic, p.partition));
    if (this.#isPaused()) this.#stream?.pause();
  }

  resume(partitions?: readonly TopicPartition[]): void {
    if (partitions === undefined) {
      this.#pausedAll = false;
      this.#pausedPartitions.clear();
    } else {
      for (const p of partitions) this.#pausedPartitions.delete(tpKey(p.topic, p.partition));
    }
    if (!this.#isPaused()) {
      this.#stream?.resume();
      this.#notify();
    }
  }

  async commit(offsets: readonly CommitOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    try {
      await this.#consumer.commit({
        offsets: offsets.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: BigInt(o.offset),
          leaderEpoch: this.#leaderEpochs.get(tpKey(o.topic, o.partition)) ?? -1,
        })),
      });
    } catch (error) {
      throw this.#mapError(error, 'commit', [...new Set(offsets.map((o) => o.topic))]);
    }
  }

  assignment(): TopicPartition[] {
    return this.#assignment.map((tp) => ({ ...tp }));
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    this.#notify();
    try {
      if (this.#stream && !this.#stream.closed) await this.#stream.close();
      await this.#consumer.close(true);
    } catch (error) {
      this.#log.warn({ err: error, groupId: this.groupId }, 'consumer close failed');
    }
  }

  #isPaused(): boolean {
    return this.#pausedAll || this.#pausedPartitions.size > 0;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #waitForEvent(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  #onJoin(assignments: readonly GroupAssignment[]): void {
    const next: TopicPartition[] = [];
    for (const a of assignments) for (const partition of a.partitions) next.push({ topic: a.topic, partition });
    const nextKeys = new Set(next.map((tp) => tpKey(tp.topic, tp.partition)));
    const revoked = this.#assignment.filter((tp) => !nextKeys.has(tpKey(tp.topic, tp.partition)));
    const added = next.filter((tp) => !this.#assigned.has(tpKey(tp.topic, tp.partition)));
    this.#assignment = next;
    this.#assigned.clear();
    for (const k of nextKeys) this.#assigned.add(k);
    for (const tp of revoked) this.#leaderEpochs.delete(tpKey(tp.topic, tp.partition));
    // The library may resume its stream around a rebalance; a paused member must stay paused.
    if (this.#isPaused()) this.#stream?.pause();
    const listener = this.#listener;
    if (!listener) return;
    this.#enqueue(async () => {
      if (revoked.length > 0) await listener.onRevoked?.(revoked);
      if (added.length > 0) await listener.onAssigned?.(added);
    }, 'rebalance listener failed');
    this.#notify();
  }

  #enqueue(task: () => Promise<void>, failure: string): void {
    this.#chain = this.#chain.then(task).catch((error: unknown) => {
      this.#log.error({ err: error, groupId: this.groupId }, failure);
    });
  }

  /** Pulls records from the library's stream and hands them over in batches, one batch at a time. */
  async #run(): Promise<void> {
    while (!this.#closing) {
      const stream = this.#stream!;
      await this.#chain;
      if (this.#closing) break;
      if (this.#isPaused()) {
        await this.#waitForEvent();
        continue;
      }
      const batch: BufferMessage[] = [];
      while (batch.length < MAX_BATCH) {
        const message = stream.read() as BufferMessage | null;
        if (message === null) break;
        batch.push(message);
      }
      if (batch.length === 0) {
        if (stream.destroyed || stream.readableEnded) {
          if (this.#closing) break;
          await this.#reopen();
          continue;
        }
        await this.#waitForEvent();
        continue;
      }
      const records: ConsumedRecord[] = [];
      for (const m of batch) {
        const key = tpKey(m.topic, m.partition);
        // Buffered before a rebalance took the partition away: its new owner reads it again.
        if (!this.#assigned.has(key)) continue;
        this.#leaderEpochs.set(key, m.leaderEpoch);
        records.push(toConsumedRecord(m));
      }
      if (records.length === 0) continue;
      try {
        await this.#listener!.onRecords(records);
      } catch (error) {
        // The contract has no error channel: a listener that throws stops this member (as
        // kafkajs does for a crashing eachBatch), uncommitted records are redelivered elsewhere.
        this.#log.error({ err: error, groupId: this.groupId }, 'onRecords failed; closing the consumer');
        void this.close();
        return;
      }
    }
  }

  #mapError(error: unknown, operation: string, topics: readonly string[]): Error {
    return mapError(error, {
      brokers: this.#options.brokers,
      connectTimeoutMs: this.#options.connectTimeoutMs,
      topics,
      operation,
    });
  }
}

export function toConsumedRecord(m: BufferMessage): ConsumedRecord {
  return {
    topic: m.topic,
    partition: m.partition,
    offset: Number(m.offset),
    key: m.key ?? null,
    value: m.value ?? null,
    headers: toHeaderRecord(m.headers),
    timestamp: Number(m.timestamp),
  };
}
