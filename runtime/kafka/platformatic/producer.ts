import { ProduceAcks, Producer, type MessageToProduce } from '@platformatic/kafka';
import { InvalidInputError, UnknownTopicError } from '../../../core/errors.ts';
import { partitionForKey } from '../partitioner.ts';
import type { KafkaProducer, ProduceRecord, ProducerOptions, RecordMetadata } from '../types.ts';
import { baseOptions, probe, toBuffer, topicMetadata, type ResolvedOptions } from './common.ts';
import { mapError } from './errors.ts';

export class PlatformaticProducer implements KafkaProducer {
  readonly #producer: Producer;
  readonly #options: ResolvedOptions;
  #closed = false;
  readonly #roundRobin = new Map<string, number>();

  private constructor(producer: Producer, options: ResolvedOptions) {
    this.#producer = producer;
    this.#options = options;
  }

  static async create(options: ResolvedOptions, producerOptions: ProducerOptions = {}): Promise<PlatformaticProducer> {
    const idempotent = producerOptions.idempotent ?? true;
    const producer = new Producer({
      ...baseOptions(options, producerOptions.clientId ?? options.clientId),
      idempotent,
      // acks=all whatever `idempotent` says: the product never wants leader-only acknowledgement.
      acks: ProduceAcks.ALL,
    });
    await probe(producer, options);
    return new PlatformaticProducer(producer, options);
  }

  async send(records: readonly ProduceRecord[]): Promise<RecordMetadata[]> {
    if (records.length === 0) return [];
    const topics = [...new Set(records.map((r) => r.topic))];
    try {
      // The partition of a keyed record is computed here, with partitionForKey, rather than by the
      // library: its default partitioner is murmur2 >>> 0 (not Java's murmur2 & 0x7fffffff), so it
      // would put some keys on other partitions than Kafka Streams, kafkajs and the embedded broker.
      // The metadata is the library's cache (refreshed every metadataMaxAge), the same one `send`
      // then uses, so the partition count cannot disagree between the two.
      const metadata = await topicMetadata(this.#producer, topics);
      const messages: MessageToProduce[] = records.map((record, index) => {
        const partitions = metadata.topics.get(record.topic)?.partitionsCount;
        if (partitions === undefined) throw new UnknownTopicError(record.topic, { operation: 'produce', client: 'platformatic' });
        let partition = record.partition;
        if (partition !== undefined && (!Number.isInteger(partition) || partition < 0 || partition >= partitions)) {
          // The library would silently take partition % count; an out-of-range partition is a bug.
          throw new InvalidInputError(`records[${index}].partition`, `must be in [0, ${partitions})`, {
            topic: record.topic,
            partition,
          });
        }
        if (partition === undefined) {
          // Null keys: round-robin chosen here too, so that the returned metadata names the partition.
          partition = record.key !== null ? partitionForKey(record.key, partitions) : this.#nextRoundRobin(record.topic, partitions);
        }
        const headers = new Map<Buffer, Buffer>();
        for (const [k, v] of Object.entries(record.headers ?? {})) headers.set(Buffer.from(k), toBuffer(v));
        const message: MessageToProduce = { topic: record.topic, headers };
        if (record.key !== null) message.key = toBuffer(record.key);
        // An absent value is written as a null record value: a tombstone.
        if (record.value !== null) message.value = toBuffer(record.value);
        message.partition = partition;
        if (record.timestamp !== undefined) message.timestamp = BigInt(record.timestamp);
        return message;
      });
      const result = await this.#producer.send({ messages });
      return toMetadata(messages, result.offsets ?? []);
    } catch (error) {
      throw mapError(error, {
        brokers: this.#options.brokers,
        connectTimeoutMs: this.#options.connectTimeoutMs,
        topics,
        operation: 'produce',
      });
    }
  }

  #nextRoundRobin(topic: string, partitions: number): number {
    const n = this.#roundRobin.get(topic) ?? Math.floor(Math.random() * partitions);
    this.#roundRobin.set(topic, n + 1);
    return n % partitions;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#producer.close(true);
  }
}

/**
 * The broker answers with one base offset per partition; within one send the records of a
 * partition form one batch in the order given, so record i of that partition has base + i.
 */
function toMetadata(
  messages: readonly MessageToProduce[],
  offsets: readonly { topic: string; partition: number; offset: bigint }[],
): RecordMetadata[] {
  const base = new Map<string, number>();
  for (const o of offsets) base.set(`${o.topic}\u0000${o.partition}`, Number(o.offset));
  const next = new Map<string, number>();
  return messages.map((m) => {
    const k = `${m.topic}\u0000${m.partition}`;
    const rank = next.get(k) ?? 0;
    next.set(k, rank + 1);
    return { topic: m.topic, partition: m.partition ?? -1, offset: (base.get(k) ?? -1) + rank };
  });
}
