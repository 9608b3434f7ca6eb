/**
 * `createEmbeddedClient()`: the KafkaClient of the embedded broker (kind 'embedded'). Producer,
 * group consumers, partition reader and admin all act on one EmbeddedKafka; without an explicit
 * broker, clients of a process share one, as clients of one cluster do.
 */
import { InvalidInputError, KafkaClientError, UnknownTopicError } from '../../../core/errors.ts';
import type {
  ConsumedRecord,
  GroupConsumerOptions,
  KafkaAdmin,
  KafkaClient,
  KafkaConsumer,
  KafkaProducer,
  PartitionOffset,
  PartitionReader,
  ProduceRecord,
  ProducerOptions,
  RecordMetadata,
  TopicDescription,
  TopicSpec,
} from '../types.ts';
import { EmbeddedKafka, toConsumedRecord } from './broker.ts';
import { EmbeddedConsumer } from './consumer.ts';

const READ_BATCH_RECORDS = 500;
const READ_BATCH_BYTES = 1_048_576;

let shared: EmbeddedKafka | undefined;

/** The process-wide broker used by clients created without one (the broker-less product mode). */
export function defaultEmbeddedKafka(): EmbeddedKafka {
  shared ??= new EmbeddedKafka();
  return shared;
}

function closedError(what: string): KafkaClientError {
  return new KafkaClientError(`embedded ${what} is closed`, { clientCode: 'CLOSED' });
}

interface Closeable {
  close(): Promise<void>;
}

class EmbeddedProducer implements KafkaProducer {
  private closed = false;
  /** Sticky partition per topic for records without key, advanced at each send (like Kafka's sticky partitioner per batch). */
  private readonly sticky = new Map<string, number>();

  constructor(
    private readonly broker: EmbeddedKafka,
    private readonly onClosed: (p: Closeable) => void,
  ) {}

  async send(records: readonly ProduceRecord[]): Promise<RecordMetadata[]> {
    if (this.closed) throw closedError('producer');
    const chosen = new Map<string, number>();
    return this.broker.append(records, (topic, partitions) => {
      let partition = chosen.get(topic);
      if (partition === undefined) {
        const next = this.sticky.get(topic) ?? 0;
        this.sticky.set(topic, next + 1);
        partition = next % partitions;
        chosen.set(topic, partition);
      }
      return partition;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClosed(this);
  }
}

class EmbeddedReader implements PartitionReader {
  private closed = false;
  private readonly closedSignal: Promise<void>;
  private signalClosed!: () => void;

  constructor(
    private readonly broker: EmbeddedKafka,
    private readonly onClosed: (r: Closeable) => void,
  ) {
    this.closedSignal = new Promise((resolve) => {
      this.signalClosed = resolve;
    });
  }

  async read(
    topic: string,
    partition: number,
    fromOffset: number,
    onRecords: (records: ConsumedRecord[]) => Promise<void> | void,
    toOffset?: number,
  ): Promise<void> {
    if (this.closed) throw closedError('reader');
    if (!Number.isSafeInteger(fromOffset) || fromOffset < 0) {
      throw new InvalidInputError('fromOffset', 'must be a non-negative integer', { topic, partition });
    }
    if (toOffset !== undefined && (!Number.isSafeInteger(toOffset) || toOffset < 0)) {
      throw new InvalidInputError('toOffset', 'must be a non-negative integer', { topic, partition });
    }
    const log = this.broker.log(topic, partition);
    const end = toOffset ?? log.endOffset;
    let position = Math.max(fromOffset, log.startOffset);
    while (position < end) {
      if (this.closed) throw closedError('reader');
      if (log.deleted) throw new UnknownTopicError(topic, { partition });
      const records = log.read(position, end, READ_BATCH_RECORDS, READ_BATCH_BYTES);
      if (records.length === 0) {
        // The rest up to the end offset was compacted away: done.
        if (log.endOffset >= end) break;
        // `toOffset` lies beyond the end: wait for the producers, as a fetch would.
        await Promise.race([log.waitForAppend(), this.closedSignal]);
        continue;
      }
      position = records[records.length - 1]!.offset + 1;
      await onRecords(records.map((r) => toConsumedRecord(topic, partition, r)));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.signalClosed();
    this.onClosed(this);
  }
}

class EmbeddedAdmin implements KafkaAdmin {
  private closed = false;

  constructor(
    private readonly broker: EmbeddedKafka,
    private readonly onClosed: (a: Closeable) => void,
  ) {}

  private open(): EmbeddedKafka {
    if (this.closed) throw closedError('admin');
    return this.broker;
  }

  async createTopics(topics: readonly TopicSpec[]): Promise<void> {
    this.open().createTopics(topics);
  }

  async deleteTopics(names: readonly string[]): Promise<void> {
    this.open().deleteTopics(names);
  }

  async listTopics(): Promise<string[]> {
    return this.open().topicNames();
  }

  async describeTopics(names: readonly string[]): Promise<TopicDescription[]> {
    const broker = this.open();
    return names.map((name) => broker.describeTopic(name));
  }

  async listEndOffsets(topic: string): Promise<PartitionOffset[]> {
    return this.open().endOffsets(topic);
  }

  async listOffsetsForTime(topic: string, timestampMs: number): Promise<PartitionOffset[]> {
    if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) throw new InvalidInputError('timestampMs', 'must be a non-negative integer (ms since the epoch)', { topic });
    const broker = this.open();
    return broker.endOffsets(topic).map(({ partition, offset: end }) => {
      // A scan where Kafka has a time index: the embedded logs are small and in memory.
      const log = broker.log(topic, partition);
      for (let from = log.startOffset; from < end; ) {
        const batch = log.read(from, end, READ_BATCH_RECORDS, READ_BATCH_BYTES);
        if (batch.length === 0) break;
        const hit = batch.find((r) => r.timestamp >= timestampMs);
        if (hit !== undefined) return { partition, offset: hit.offset };
        from = batch[batch.length - 1]!.offset + 1;
      }
      return { partition, offset: end };
    });
  }

  async listCommittedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]> {
    return this.open().committedOffsets(groupId, topic);
  }

  async listGroups(): Promise<string[]> {
    return this.open().groupIds();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClosed(this);
  }
}

class EmbeddedClient implements KafkaClient {
  readonly kind = 'embedded' as const;
  private readonly created = new Set<Closeable>();
  private closed = false;
  private readonly forget = (c: Closeable): void => {
    this.created.delete(c);
  };

  constructor(readonly broker: EmbeddedKafka) {}

  private track<T extends Closeable>(resource: T): T {
    if (this.closed) throw closedError('client');
    this.created.add(resource);
    return resource;
  }

  async producer(_options?: ProducerOptions): Promise<KafkaProducer> {
    return this.track(new EmbeddedProducer(this.broker, this.forget));
  }

  consumer(options: GroupConsumerOptions): KafkaConsumer {
    if (this.closed) throw closedError('client');
    return this.track(new EmbeddedConsumer(this.broker, options, this.forget));
  }

  reader(): PartitionReader {
    return this.track(new EmbeddedReader(this.broker, this.forget));
  }

  async admin(): Promise<KafkaAdmin> {
    return this.track(new EmbeddedAdmin(this.broker, this.forget));
  }

  async close(): Promise<void> {
    this.closed = true;
    const resources = [...this.created];
    this.created.clear();
    // Consumers leave their groups concurrently: one member's revoke must not wait for another's.
    await Promise.all(resources.map((r) => r.close()));
  }
}

/**
 * A KafkaClient backed by `broker`, or by the process-wide embedded broker when omitted (so that
 * several clients of one process see the same topics, like clients of one cluster). Test drivers
 * pass their own `new EmbeddedKafka()` to be isolated and to inspect it.
 */
export function createEmbeddedClient(broker: EmbeddedKafka = defaultEmbeddedKafka()): KafkaClient {
  return new EmbeddedClient(broker);
}
