import kafkajs, { type Admin, type Kafka, type Message, type Producer, type TopicMessages } from 'kafkajs';
import { InvalidInputError } from '../../../core/errors.ts';
import { partitionForKey } from '../partitioner.ts';
import type { KafkaProducer, ProduceRecord, ProducerOptions, RecordMetadata } from '../types.ts';
import { connectWithin, mapError, RETRY, toBuffer, type ResolvedOptions } from './common.ts';
import { PartitionCounts } from './metadata.ts';

// kafkajs is CommonJS whose exports Node cannot list statically: values come from the default export.
const { Partitioners } = kafkajs;

export class KafkajsProducer implements KafkaProducer {
  readonly #producer: Producer;
  readonly #admin: Admin;
  readonly #counts: PartitionCounts;
  readonly #options: ResolvedOptions;
  readonly #roundRobin = new Map<string, number>();
  #closed = false;

  private constructor(producer: Producer, admin: Admin, options: ResolvedOptions) {
    this.#producer = producer;
    this.#admin = admin;
    this.#counts = new PartitionCounts(admin);
    this.#options = options;
  }

  static async create(kafka: Kafka, options: ResolvedOptions, producerOptions: ProducerOptions = {}): Promise<KafkajsProducer> {
    const idempotent = producerOptions.idempotent ?? true;
    const producer = kafka.producer({
      idempotent,
      // kafkajs keeps per-partition order with retries only with one request in flight.
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Java-compatible murmur2 (kafkajs ≥ 2 default; named to silence its migration warning).
      // Our records carry an explicit partition anyway (see send), so both paths agree.
      createPartitioner: Partitioners.DefaultPartitioner,
      // Bounded even when idempotent (kafkajs would retry forever): a send during an outage must
      // fail and let the caller decide. kafkajs warns that this can weaken exactly-once; we accept
      // it because the records are re-sent by the caller and consumers deduplicate by event id.
      retry: { ...RETRY, retries: 8 },
    });
    // The admin answers partition counts (kafkajs's producer exposes no metadata).
    const admin = kafka.admin({ retry: RETRY });
    await connectWithin(async () => {
      await Promise.all([producer.connect(), admin.connect()]);
    }, options, async () => {
      await Promise.allSettled([producer.disconnect(), admin.disconnect()]);
    });
    return new KafkajsProducer(producer, admin, options);
  }

  async send(records: readonly ProduceRecord[]): Promise<RecordMetadata[]> {
    if (records.length === 0) return [];
    const topics = [...new Set(records.map((r) => r.topic))];
    try {
      const counts = await this.#counts.get(topics);
      const byTopic = new Map<string, Message[]>();
      const placed = records.map((record, index) => {
        const partitions = counts.get(record.topic)!;
        let partition = record.partition;
        if (partition !== undefined && (!Number.isInteger(partition) || partition < 0 || partition >= partitions)) {
          throw new InvalidInputError(`records[${index}].partition`, `must be in [0, ${partitions})`, {
            topic: record.topic,
            partition,
          });
        }
        // Computed here (same function as every adapter) so that the result can name each
        // record's partition; kafkajs's DefaultPartitioner gives the same number (tested).
        partition ??= record.key !== null ? partitionForKey(record.key, partitions) : this.#nextRoundRobin(record.topic, partitions);
        const message: Message = {
          key: record.key === null ? null : toBuffer(record.key),
          value: record.value === null ? null : toBuffer(record.value),
          partition,
        };
        if (record.headers) {
          const headers: Record<string, Buffer> = {};
          for (const [k, v] of Object.entries(record.headers)) headers[k] = toBuffer(v);
          message.headers = headers;
        }
        if (record.timestamp !== undefined) message.timestamp = String(record.timestamp);
        let list = byTopic.get(record.topic);
        if (!list) byTopic.set(record.topic, (list = []));
        list.push(message);
        return { topic: record.topic, partition };
      });
      const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
      const result = await this.#producer.sendBatch({ topicMessages, acks: -1 });
      // One base offset per partition; records of one partition are one batch in the given order.
      const base = new Map<string, number>();
      for (const r of result) base.set(`${r.topicName}\u0000${r.partition}`, Number(r.baseOffset ?? r.offset ?? -1));
      const rank = new Map<string, number>();
      return placed.map(({ topic, partition }) => {
        const k = `${topic}\u0000${partition}`;
        const i = rank.get(k) ?? 0;
        rank.set(k, i + 1);
        return { topic, partition, offset: (base.get(k) ?? -1) + i };
      });
    } catch (error) {
      throw mapError(error, { brokers: this.#options.brokers, connectTimeoutMs: this.#options.connectTimeoutMs, topics, operation: 'produce' });
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
    await Promise.allSettled([this.#producer.disconnect(), this.#admin.disconnect()]);
  }
}
