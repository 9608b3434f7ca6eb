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
import { PlatformaticAdmin } from './admin.ts';
import { resolveOptions, type ResolvedOptions } from './common.ts';
import { PlatformaticConsumer } from './consumer.ts';
import { PlatformaticProducer } from './producer.ts';
import { PlatformaticReader } from './reader.ts';

interface Closeable {
  close(): Promise<void>;
}

/**
 * KafkaClient on @platformatic/kafka (the default adapter). Each producer, consumer, reader and
 * admin owns its own library client (connection pool); `close()` closes whatever is still open.
 * Capabilities and limits: see PlatformaticConsumer (whole-member pause, non-awaitable revoke).
 */
class PlatformaticClient implements KafkaClient {
  readonly kind = 'platformatic' as const;
  readonly #options: ResolvedOptions;
  readonly #open = new Set<Closeable>();

  constructor(options: KafkaClientOptions) {
    this.#options = resolveOptions(options);
  }

  async producer(options?: ProducerOptions): Promise<KafkaProducer> {
    return this.#track(await PlatformaticProducer.create(this.#options, options));
  }

  consumer(options: GroupConsumerOptions): KafkaConsumer {
    return this.#track(new PlatformaticConsumer(this.#options, options));
  }

  reader(): PartitionReader {
    return this.#track(new PlatformaticReader(this.#options));
  }

  async admin(): Promise<KafkaAdmin> {
    return this.#track(await PlatformaticAdmin.create(this.#options));
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

export function createPlatformaticClient(options: KafkaClientOptions): KafkaClient {
  return new PlatformaticClient(options);
}
