import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { InvalidInputError } from '../../../core/errors.ts';
import { componentLogger, type Logger } from '../../../core/log.ts';
import type { ConsumedRecord, PartitionReader } from '../types.ts';
import { connectWithin, mapError, RETRY, type ResolvedOptions } from './common.ts';
import { PartitionCounts } from './metadata.ts';


/**
 * Reads one partition from an offset. kafkajs has no public group-less fetch (no assign()), so
 * each read() runs a consumer in an ephemeral group of its own that never commits, seeks to the
 * start offset, pauses every other partition, and is deleted afterwards. Costs one group join
 * (fast with `group.initial.rebalance.delay.ms=0`, ~3 s with the broker default).
 */
export class KafkajsReader implements PartitionReader {
  readonly #kafka: Kafka;
  readonly #options: ResolvedOptions;
  #admin: Admin | undefined;
  #counts: PartitionCounts | undefined;
  #closed = false;

  readonly #log: Logger;

  constructor(kafka: Kafka, options: ResolvedOptions) {
    this.#log = componentLogger(options.logger, 'kafkajs.reader');
    this.#kafka = kafka;
    this.#options = options;
  }

  async #ensureAdmin(): Promise<{ admin: Admin; counts: PartitionCounts }> {
    if (!this.#admin) {
      const admin = this.#kafka.admin({ retry: RETRY });
      await connectWithin(() => admin.connect(), this.#options, () => admin.disconnect());
      this.#admin = admin;
      this.#counts = new PartitionCounts(admin);
    }
    return { admin: this.#admin, counts: this.#counts! };
  }

  async read(
    topic: string,
    partition: number,
    fromOffset: number,
    onRecords: (records: ConsumedRecord[]) => Promise<void> | void,
    toOffset?: number,
  ): Promise<void> {
    const { admin, counts } = await this.#ensureAdmin();
    try {
      const partitions = (await counts.get([topic], true)).get(topic)!;
      if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) {
        throw new InvalidInputError('partition', `topic ${topic} has no partition ${partition}`, { topic, partition });
      }
      let end = toOffset;
      if (end === undefined) {
        const offsets = await admin.fetchTopicOffsets(topic);
        end = Number(offsets.find((o) => o.partition === partition)?.high ?? 0);
      }
      if (fromOffset >= end) return;
      await this.#readWithEphemeralGroup(admin, topic, partition, fromOffset, end, partitions, onRecords);
    } catch (error) {
      throw mapError(error, { brokers: this.#options.brokers, connectTimeoutMs: this.#options.connectTimeoutMs, topics: [topic], operation: 'read' });
    }
  }

  async #readWithEphemeralGroup(
    admin: Admin,
    topic: string,
    partition: number,
    from: number,
    to: number,
    partitions: number,
    onRecords: (records: ConsumedRecord[]) => Promise<void> | void,
  ): Promise<void> {
    const groupId = `${this.#options.clientId}-reader-${randomUUID()}`;
    const consumer = this.#kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 200,
      retry: { ...RETRY, restartOnFailure: async () => false },
    });
    await connectWithin(() => consumer.connect(), this.#options, () => consumer.disconnect());
    let finish!: () => void;
    let fail!: (error: unknown) => void;
    const done = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    consumer.on(consumer.events.CRASH, (event) => fail(event.payload.error));
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      let next = from;
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch, pause }) => {
          if (batch.partition !== partition) {
            pause();
            return;
          }
          const records: ConsumedRecord[] = [];
          for (const m of batch.messages) {
            const offset = Number(m.offset);
            if (offset < next || offset >= to) continue;
            const headers: Record<string, Buffer> = {};
            for (const [k, v] of Object.entries(m.headers ?? {})) {
              const value = Array.isArray(v) ? v[v.length - 1] : v;
              headers[k] = value === undefined ? Buffer.alloc(0) : Buffer.isBuffer(value) ? value : Buffer.from(value);
            }
            records.push({ topic, partition, offset, key: m.key ?? null, value: m.value ?? null, headers, timestamp: Number(m.timestamp) });
          }
          if (records.length > 0) {
            try {
              await onRecords(records);
            } catch (error) {
              fail(error);
              return;
            }
          }
          next = Math.max(next, Number(batch.lastOffset()) + 1);
          if (next >= to) finish();
        },
      });
      // The other partitions are paused as their first batch shows up; seek the wanted one now.
      for (let p = 0; p < partitions; p++) if (p !== partition) consumer.pause([{ topic, partitions: [p] }]);
      consumer.seek({ topic, partition, offset: String(from) });
      await done;
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await admin.deleteGroups([groupId]).catch((error: unknown) => this.#log.debug({ err: error, groupId }, 'ephemeral group not deleted'));
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#admin?.disconnect();
  }
}
