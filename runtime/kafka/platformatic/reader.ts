import { Consumer, type RecordsBatch } from '@platformatic/kafka';
import { InvalidInputError, KafkaClientError, UnknownTopicError } from '../../../core/errors.ts';
import type { ConsumedRecord, PartitionReader } from '../types.ts';
import { baseOptions, probe, topicMetadata, type ResolvedOptions } from './common.ts';
import { mapError } from './errors.ts';

/** Batch attribute bit of transaction markers (commit/abort), which carry no user record. */
const CONTROL_BATCH = 0x20;
const PARTITION_MAX_BYTES = 1024 * 1024;

/**
 * Reads a partition outside any consumer group (state-store restore from a changelog).
 * The library's group consumer always joins a group, so this drives its low-level `fetch()`
 * (which needs no membership) and decodes the record batches itself.
 */
export class PlatformaticReader implements PartitionReader {
  readonly #options: ResolvedOptions;
  readonly #consumer: Consumer<Buffer, Buffer, Buffer, Buffer>;
  #probed = false;
  #closed = false;

  constructor(options: ResolvedOptions) {
    this.#options = options;
    // A group id is mandatory for the class but never used: fetch() sends no group request.
    this.#consumer = new Consumer({ ...baseOptions(options), groupId: `${options.clientId}-reader-unused` });
  }

  async read(
    topic: string,
    partition: number,
    fromOffset: number,
    onRecords: (records: ConsumedRecord[]) => Promise<void> | void,
    toOffset?: number,
  ): Promise<void> {
    if (!this.#probed) {
      await probe(this.#consumer, this.#options);
      this.#probed = true;
    }
    try {
      // fetch() resolves topic ids through the topics the consumer tracks.
      this.#consumer.topics.track(topic);
      const metadata = await topicMetadata(this.#consumer, [topic]);
      const topicInfo = metadata.topics.get(topic);
      if (!topicInfo) throw new UnknownTopicError(topic, { operation: 'read', client: 'platformatic' });
      const partitionMetadata = topicInfo.partitions[partition];
      if (!partitionMetadata) {
        throw new InvalidInputError('partition', `topic ${topic} has no partition ${partition}`, { topic, partition });
      }
      let end = toOffset;
      if (end === undefined) {
        const offsets = await this.#consumer.listOffsets({
          topics: [topic],
          partitions: { [topic]: [partition] },
          timestamp: -1n,
        });
        end = Number(offsets.get(topic)?.[partition] ?? 0n);
      }
      let next = fromOffset;
      while (next < end) {
        const response = await this.#consumer.fetch({
          node: partitionMetadata.leader,
          maxWaitTime: 200,
          topics: [
            {
              topicId: topicInfo.id,
              partitions: [
                {
                  partition,
                  fetchOffset: BigInt(next),
                  currentLeaderEpoch: -1,
                  lastFetchedEpoch: -1,
                  partitionMaxBytes: PARTITION_MAX_BYTES,
                },
              ],
            },
          ],
        });
        const answer = response.responses.flatMap((t) => t.partitions).find((p) => p.partitionIndex === partition);
        if (!answer) throw new KafkaClientError('fetch returned no data for the partition', { topic, partition });
        if (answer.errorCode !== 0) {
          throw new KafkaClientError(`fetch failed with Kafka error ${answer.errorCode}`, { topic, partition, kafkaErrorCode: answer.errorCode });
        }
        const records: ConsumedRecord[] = [];
        let advanced = next;
        for (const batch of answer.records ?? []) {
          advanced = Math.max(advanced, decodeBatch(batch, topic, partition, next, end, records));
        }
        if (records.length > 0) await onRecords(records);
        if (advanced === next && Number(answer.highWatermark) <= next) break; // log truncated below `end`
        next = advanced;
      }
    } catch (error) {
      throw mapError(error, {
        brokers: this.#options.brokers,
        connectTimeoutMs: this.#options.connectTimeoutMs,
        topics: [topic],
        operation: 'read',
      });
    } finally {
      this.#consumer.topics.untrack(topic);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#consumer.close(true);
  }
}

/**
 * Appends the records of `batch` within [from, to) to `out`; returns the offset after the batch.
 * A batch can start before `from` (the broker returns whole batches), and a compacted batch can
 * have lost records, so the next offset comes from the batch header, not from its last record.
 */
function decodeBatch(batch: RecordsBatch, topic: string, partition: number, from: number, to: number, out: ConsumedRecord[]): number {
  const first = Number(batch.firstOffset);
  if ((batch.attributes & CONTROL_BATCH) === 0) {
    for (const record of batch.records) {
      const offset = first + record.offsetDelta;
      if (offset < from || offset >= to) continue;
      const headers: Record<string, Buffer> = {};
      for (const [k, v] of record.headers) if (k) headers[k.toString()] = v ?? Buffer.alloc(0);
      out.push({
        topic,
        partition,
        offset,
        key: record.key,
        value: record.value,
        headers,
        timestamp: Number(batch.firstTimestamp + record.timestampDelta),
      });
    }
  }
  return first + batch.lastOffsetDelta + 1;
}
