import type { Kafka } from 'kafkajs';
import type {
  GroupConsumerOptions,
  KafkaAdmin,
  KafkaClient,
  KafkaClientOptions,
  KafkaConsumer,
  KafkaProducer,
  PartitionReader,
  ProducerOptions,
} from '../types.ts';
import { KafkajsAdmin } from './admin.ts';
import { createKafka, resolveOptions, type ResolvedOptions } from './common.ts';
import { KafkajsConsumer } from './consumer.ts';
import { KafkajsProducer } from './producer.ts';
import { KafkajsReader } from './reader.ts';

interface Closeable {
  close(): Promise<void>;
}

/**
 * KafkaClient on kafkajs 2.2.4 (for operators who already run kafkajs). Verified against Apache
 * Kafka 4.x (KIP-896 removed old protocol versions; the versions kafkajs negotiates are still
 * served). Differences with the default adapter: per-partition pause; the partition reader uses
 * an ephemeral consumer group (see KafkajsReader); no KIP-848 consumer protocol.
 */
class KafkajsClient implements KafkaClient {
  readonly kind = 'kafkajs' as const;
  readonly #options: ResolvedOptions;
  readonly #kafka: Kafka;
  readonly #open = new Set<Closeable>();

  constructor(options: KafkaClientOptions) {
    this.#options = resolveOptions(options);
    this.#kafka = createKafka(this.#options);
  }

  async producer(options?: ProducerOptions): Promise<KafkaProducer> {
    return this.#track(await KafkajsProducer.create(this.#kafka, this.#options, options));
  }

  consumer(options: GroupConsumerOptions): KafkaConsumer {
    return this.#track(new KafkajsConsumer(this.#kafka, this.#options, options));
  }

  reader(): PartitionReader {
    return this.#track(new KafkajsReader(this.#kafka, this.#options));
  }

  async admin(): Promise<KafkaAdmin> {
    return this.#track(await KafkajsAdmin.create(this.#kafka, this.#options));
  }

  async close(): Promise<void> {
    const open = [...this.#open];
    this.#open.clear();
    await Promise.allSettled(open.map((c) => c.close()));
  }

  #track<T extends Closeable>(closeable: T): T {
    this.#open.add(closeable);
    return closeable;
  }
}

export function createKafkajsClient(options: KafkaClientOptions): KafkaClient {
  return new KafkajsClient(options);
}
