/**
 * The Kafka record shapes every folder speaks (the topology engine decodes ConsumedRecord and
 * encodes ProduceRecord, state restores read through PartitionReader), independent of any client.
 * runtime/kafka/types.ts builds the client interface on them.
 *
 * Conventions: offsets are JS numbers (safe up to 2^53); a committed offset is the offset of the
 * NEXT record to read; keys and values are Buffers on the way in; a `null` value is a tombstone.
 */

export type Bytes = Buffer | string;

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface PartitionOffset {
  partition: number;
  /** For end offsets: the offset the next produced record gets. For committed: -1 = none. */
  offset: number;
}

export interface ProduceRecord {
  topic: string;
  key: Bytes | null;
  /** `null` is a tombstone (deletes the key on a compacted topic). */
  value: Bytes | null;
  headers?: Record<string, Bytes>;
  /** Explicit partition; default: murmur2(key) % partitions, round-robin-ish for null keys. */
  partition?: number;
  /** Milliseconds since the epoch; default: now. */
  timestamp?: number;
}

export interface RecordMetadata {
  topic: string;
  partition: number;
  offset: number;
}

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer>;
  timestamp: number;
}

export interface CommitOffset extends TopicPartition {
  /** The next offset to read (last processed + 1). */
  offset: number;
}

/** Reads one partition from an offset, outside any consumer group (changelog restore). */
export interface PartitionReader {
  /**
   * Delivers records of `topic`/`partition` with offset in [fromOffset, toOffset) in order, then
   * resolves. `toOffset` defaults to the end offset at call time.
   */
  read(
    topic: string,
    partition: number,
    fromOffset: number,
    onRecords: (records: ConsumedRecord[]) => Promise<void> | void,
    toOffset?: number,
  ): Promise<void>;
  close(): Promise<void>;
}
