/**
 * Group consumer of the embedded broker. One serial "poll loop" per consumer delivers, in order,
 * rebalance callbacks and record batches: the next call starts only once the previous promise
 * settled (backpressure), rebalance callbacks never overlap a batch, and an idle loop waits on a
 * promise resolved by the broker's append (no polling timer).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { InvalidInputError, KafkaClientError } from '../../../core/errors.ts';
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
import { toConsumedRecord, tpKey, type EmbeddedKafka, type GroupMemberHandle } from './broker.ts';
import { recordSize, type PartitionLog } from './log.ts';

/** Like Kafka's max.poll.records. */
const MAX_RECORDS_PER_BATCH = 500;
/** Like Kafka's max.partition.fetch.bytes default, used when `maxBytes` is not given. */
const DEFAULT_MAX_BYTES = 1_048_576;
const DEFAULT_REBALANCE_TIMEOUT_MS = 60_000;
const RETRY_BACKOFF_MIN_MS = 100;
const RETRY_BACKOFF_MAX_MS = 5_000;

/** Which consumer's listener the current async context runs in (to make close() from it safe). */
const insideListener = new AsyncLocalStorage<EmbeddedConsumer>();

let logger: Logger | undefined;
function log(): Logger {
  logger ??= componentLogger(undefined, 'kafka.embedded');
  return logger;
}

interface Fetching {
  readonly topic: string;
  readonly partition: number;
  /** The log of the topic incarnation that was assigned (a re-created topic is a new log). */
  log: PartitionLog;
  position: number;
  paused: boolean;
}

interface ControlTask {
  run(): Promise<void> | void;
  done(): void;
}

export class EmbeddedConsumer implements KafkaConsumer, GroupMemberHandle {
  readonly groupId: string;
  readonly capabilities: ConsumerCapabilities = { perPartitionPause: true, awaitableRevoke: true };
  readonly memberId: string;
  readonly topics: readonly string[];

  private readonly broker: EmbeddedKafka;
  private readonly autoOffsetReset: 'earliest' | 'latest';
  private readonly maxBytes: number;
  private readonly rebalanceTimeoutMs: number;
  private readonly onClosed: (consumer: EmbeddedConsumer) => void;

  private listener: ConsumerListener | undefined;
  private readonly fetching = new Map<string, Fetching>();
  private readonly control: ControlTask[] = [];
  private state: 'new' | 'running' | 'closing' | 'closed' = 'new';
  private busy = false;
  private wakeLoop: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private rotation = 0;
  private failures = 0;
  private cancelBackoff: (() => void) | undefined;
  private loopEnded = false;

  constructor(broker: EmbeddedKafka, options: GroupConsumerOptions, onClosed: (consumer: EmbeddedConsumer) => void) {
    if (typeof options.groupId !== 'string' || options.groupId.length === 0) {
      throw new InvalidInputError('groupId', 'must be a non-empty string');
    }
    if (!Array.isArray(options.topics) || options.topics.length === 0) {
      throw new InvalidInputError('topics', 'must name at least one topic', { groupId: options.groupId });
    }
    this.broker = broker;
    this.groupId = options.groupId;
    this.topics = [...new Set(options.topics)];
    this.autoOffsetReset = options.autoOffsetReset ?? 'earliest';
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.rebalanceTimeoutMs = options.rebalanceTimeoutMs ?? DEFAULT_REBALANCE_TIMEOUT_MS;
    this.memberId = `${options.clientId ?? 'embedded-consumer'}-${randomUUID()}`;
    this.onClosed = onClosed;
  }

  async start(listener: ConsumerListener): Promise<void> {
    if (this.state !== 'new') {
      throw new KafkaClientError(`consumer of group "${this.groupId}" was already started or closed`, {
        groupId: this.groupId,
      });
    }
    // Throws UnknownTopicError before the consumer changes state, so a failed start can be retried.
    for (const topic of this.topics) this.broker.partitionCount(topic);
    this.listener = listener;
    this.state = 'running';
    this.loop = this.run();
    await this.broker.joinGroup(this.groupId, this, this.rebalanceTimeoutMs);
  }

  pause(partitions?: readonly TopicPartition[]): void {
    this.setPaused(partitions, true);
  }

  resume(partitions?: readonly TopicPartition[]): void {
    this.setPaused(partitions, false);
    this.wake();
  }

  private setPaused(partitions: readonly TopicPartition[] | undefined, paused: boolean): void {
    if (!partitions) {
      for (const f of this.fetching.values()) f.paused = paused;
      return;
    }
    // Like Kafka, pausing concerns assigned partitions; others are ignored (no state to keep).
    for (const tp of partitions) {
      const f = this.fetching.get(tpKey(tp.topic, tp.partition));
      if (f) f.paused = paused;
    }
  }

  async commit(offsets: readonly CommitOffset[]): Promise<void> {
    if (this.state === 'new' || this.state === 'closed') {
      throw new KafkaClientError(`cannot commit: consumer of group "${this.groupId}" is ${this.state === 'new' ? 'not started' : 'closed'}`, {
        groupId: this.groupId,
      });
    }
    this.broker.commit(this.groupId, this.memberId, offsets);
  }

  assignment(): TopicPartition[] {
    return [...this.fetching.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    // From inside our own listener, waiting for the loop would wait for ourselves: the leave
    // completes once that listener call settled.
    if (insideListener.getStore() === this) return Promise.resolve();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.state === 'new') {
      this.state = 'closed';
      this.onClosed(this);
      return;
    }
    this.state = 'closing';
    this.cancelBackoff?.();
    this.wake();
    // Leaving revokes our partitions through our own loop (onRevoked awaited), then rebalances the rest.
    await this.broker.leaveGroup(this.groupId, this.memberId);
    this.state = 'closed';
    this.wake();
    await this.loop;
    this.onClosed(this);
  }

  // ── GroupMemberHandle (called by the broker's coordinator) ─────────────────────────────────

  revoke(partitions: TopicPartition[]): Promise<void> {
    // Stop fetching right away; the callback runs after the batch in flight settled.
    for (const tp of partitions) this.fetching.delete(tpKey(tp.topic, tp.partition));
    return this.enqueue(async () => {
      await this.listener?.onRevoked?.(partitions);
    });
  }

  assign(partitions: TopicPartition[]): Promise<void> {
    return this.enqueue(async () => {
      // Owned before onAssigned runs, as in Kafka: assignment() includes them there, and pausing
      // them there (e.g. until their state is restored) holds their delivery.
      const added: Fetching[] = [];
      for (const tp of partitions) {
        if (!this.broker.hasTopic(tp.topic)) continue;
        const plog = this.broker.log(tp.topic, tp.partition);
        const f: Fetching = { ...tp, log: plog, position: this.startPosition(tp, plog), paused: false };
        this.fetching.set(tpKey(tp.topic, tp.partition), f);
        added.push(f);
      }
      if (partitions.length > 0) await this.listener?.onAssigned?.(partitions);
      // Nothing was delivered meanwhile (the loop is serial): look positions up again so that a
      // commit made in onAssigned (a seek) is honoured.
      for (const f of added) {
        if (this.fetching.get(tpKey(f.topic, f.partition)) === f) f.position = this.startPosition(f, f.log);
      }
    });
  }

  /** The committed offset, or autoOffsetReset when there is none or it is out of range. */
  private startPosition(tp: TopicPartition, plog: PartitionLog): number {
    const committed = this.broker.committedOffset(this.groupId, tp.topic, tp.partition);
    if (committed !== undefined && committed >= plog.startOffset && committed <= plog.endOffset) return committed;
    return this.autoOffsetReset === 'earliest' ? plog.startOffset : plog.endOffset;
  }

  /**
   * Keeps a position valid: after retention, and when a topic was deleted and re-created before the
   * coordinator noticed (its partitions stay assigned: follow the new incarnation, whose offsets
   * start over). False when there is nothing to fetch from.
   */
  private refresh(f: Fetching): boolean {
    // Retention deleted records before our position: out of range, reset like Kafka does.
    if (f.position < f.log.startOffset) {
      f.position = this.autoOffsetReset === 'earliest' ? f.log.startOffset : f.log.endOffset;
    }
    if (!f.log.deleted) return true;
    if (!this.broker.hasTopic(f.topic) || this.broker.partitionCount(f.topic) <= f.partition) return false;
    f.log = this.broker.log(f.topic, f.partition);
    f.position = this.startPosition(f, f.log);
    return true;
  }

  wake(): void {
    const wake = this.wakeLoop;
    this.wakeLoop = undefined;
    wake?.();
  }

  isIdle(): boolean {
    if (this.busy || this.control.length > 0) return false;
    if (this.state !== 'running') return true;
    for (const f of this.fetching.values()) {
      if (!f.paused && this.refresh(f) && f.log.hasRecordsFrom(f.position)) return false;
    }
    return true;
  }

  // ── the poll loop ─────────────────────────────────────────────────────────────────────────

  private enqueue(run: () => Promise<void> | void): Promise<void> {
    // Nothing will run callbacks any more: the member is out of the group.
    if (this.loopEnded) return Promise.resolve();
    return new Promise<void>((done) => {
      this.control.push({ run, done });
      // A rebalance must not wait for the retry delay of a failed batch.
      this.cancelBackoff?.();
      this.wake();
    });
  }

  private async run(): Promise<void> {
    for (;;) {
      const task = this.control.shift();
      if (task) {
        await this.invoke('rebalance listener', task.run);
        task.done();
        continue;
      }
      if (this.state === 'closed') break;
      const batch = this.state === 'running' ? this.nextBatch() : [];
      if (batch.length === 0) {
        await new Promise<void>((resolve) => {
          this.wakeLoop = resolve;
          this.broker.notifyActivity();
        });
        continue;
      }
      const ok = await this.invoke('onRecords', () => this.listener!.onRecords(batch));
      if (ok) {
        this.failures = 0;
      } else {
        this.rewind(batch);
        await this.backoff();
      }
    }
    this.loopEnded = true;
    this.broker.notifyActivity();
  }

  /** Runs a listener callback; errors are logged (there is nobody else to tell). */
  private async invoke(what: string, fn: () => Promise<void> | void): Promise<boolean> {
    this.busy = true;
    try {
      await insideListener.run(this, fn);
      return true;
    } catch (err) {
      log().warn({ err, groupId: this.groupId, callback: what }, 'embedded consumer listener failed');
      return false;
    } finally {
      this.busy = false;
    }
  }

  /**
   * Takes up to MAX_RECORDS_PER_BATCH records / maxBytes from the unpaused partitions, starting with
   * a different partition each time so that one busy partition cannot starve the others.
   */
  private nextBatch(): ConsumedRecord[] {
    const all = [...this.fetching.values()];
    if (all.length === 0) return [];
    const start = this.rotation++ % all.length;
    const batch: ConsumedRecord[] = [];
    let budget = this.maxBytes;
    for (let i = 0; i < all.length && batch.length < MAX_RECORDS_PER_BATCH && budget > 0; i++) {
      const f = all[(start + i) % all.length]!;
      if (f.paused || !this.refresh(f)) continue;
      const records = f.log.read(f.position, f.log.endOffset, MAX_RECORDS_PER_BATCH - batch.length, budget);
      for (const r of records) {
        batch.push(toConsumedRecord(f.topic, f.partition, r));
        budget -= recordSize(r);
      }
      // Past the last record read, or past a compacted-away tail.
      f.position = records.length > 0 ? records[records.length - 1]!.offset + 1 : Math.max(f.position, f.log.endOffset);
    }
    return batch;
  }

  /** After a failed onRecords, deliver the batch again (at least once), like kafkajs' retry. */
  private rewind(batch: readonly ConsumedRecord[]): void {
    const first = new Map<string, number>();
    for (const r of batch) {
      const key = tpKey(r.topic, r.partition);
      if (!first.has(key)) first.set(key, r.offset);
    }
    for (const [key, offset] of first) {
      const f = this.fetching.get(key);
      if (f) f.position = Math.min(f.position, offset);
    }
  }

  private async backoff(): Promise<void> {
    const ms = Math.min(RETRY_BACKOFF_MIN_MS * 2 ** this.failures++, RETRY_BACKOFF_MAX_MS);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.cancelBackoff = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.cancelBackoff = undefined;
  }
}
