/**
 * The one Kafka client interface the product uses. Adapters: `platformatic` (default),
 * `kafkajs`, and `embedded` (an in-process broker, the broker-less default and test driver).
 *
 * Conventions shared by every adapter:
 * - offsets are JS numbers (safe up to 2^53, far beyond any partition's life);
 * - a committed offset is the offset of the NEXT record to read (Kafka's convention);
 * - keys and values are Buffers on the way out; `null` value = tombstone;
 * - the partition of a keyed record is murmur2(key) like Kafka's Java default partitioner
 *   (see partitioner.ts), so every adapter puts the same key on the same partition number.
 */

import type { Logger } from '../../core/log.ts';
import type { CommitOffset, ConsumedRecord, PartitionOffset, PartitionReader, ProduceRecord, RecordMetadata, TopicPartition } from '../../core/records.ts';

export type { Bytes, CommitOffset, ConsumedRecord, PartitionOffset, PartitionReader, ProduceRecord, RecordMetadata, TopicPartition } from '../../core/records.ts';

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor?: number;
  /** Topic configs, e.g. `{ 'cleanup.policy': 'compact' }`. */
  configs?: Record<string, string>;
}

export interface TopicDescription {
  name: string;
  partitions: number;
  /** Effective topic configs as the broker reports them (at least the non-default ones). */
  configs: Record<string, string>;
}

export interface ProducerOptions {
  /** Idempotent producer with acks=all. Default true. */
  idempotent?: boolean;
  clientId?: string;
}

export interface KafkaProducer {
  /** Resolves once every record is acknowledged by the broker (acks=all). Order is kept per partition. */
  send(records: readonly ProduceRecord[]): Promise<RecordMetadata[]>;
  close(): Promise<void>;
}

export interface GroupConsumerOptions {
  groupId: string;
  topics: readonly string[];
  /** Where a partition without a committed offset starts. Default 'earliest'. */
  autoOffsetReset?: 'earliest' | 'latest';
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  rebalanceTimeoutMs?: number;
  /**
   * Static group membership (KIP-345): a stable name of this member, unique within the group. A
   * member that restarts with the same name takes its partitions back at once, without waiting for
   * its old session to expire; a member that does not come back is still detected by
   * `sessionTimeoutMs`. platformatic only (kafkajs has no such option: it refuses it); ignored by
   * the embedded broker, which has no sessions.
   */
  groupInstanceId?: string;
  /** Upper bound for one fetch response, in bytes. */
  maxBytes?: number;
  clientId?: string;
}

export interface ConsumerListener {
  /**
   * A batch of records of one or more partitions, in offset order per partition. The adapter does
   * not deliver the next batch before the returned promise settles (that is the backpressure hook).
   * Offsets are NOT committed automatically: call `commit`.
   */
  onRecords(records: ConsumedRecord[]): Promise<void> | void;
  /** Partitions newly assigned to this member (after a rebalance). */
  onAssigned?(partitions: TopicPartition[]): Promise<void> | void;
  /** Partitions taken away from this member. See `capabilities.awaitableRevoke`. */
  onRevoked?(partitions: TopicPartition[]): Promise<void> | void;
}

export interface ConsumerCapabilities {
  /** pause()/resume() act on single partitions (false = the whole consumer pauses). */
  perPartitionPause: boolean;
  /** onRevoked is awaited before the partitions are handed to another member. */
  awaitableRevoke: boolean;
}

export interface KafkaConsumer {
  readonly groupId: string;
  readonly capabilities: ConsumerCapabilities;
  /** Joins the group and starts delivering. Resolves once joined (first assignment received). */
  start(listener: ConsumerListener): Promise<void>;
  /** Stops fetching the given partitions (all when omitted). Records already delivered are not recalled. */
  pause(partitions?: readonly TopicPartition[]): void;
  resume(partitions?: readonly TopicPartition[]): void;
  commit(offsets: readonly CommitOffset[]): Promise<void>;
  /** Partitions currently assigned to this member. */
  assignment(): TopicPartition[];
  /** Leaves the group and releases connections. Idempotent. */
  close(): Promise<void>;
}

export interface KafkaAdmin {
  /** Creates the topics; existing ones are left as they are (no error). */
  createTopics(topics: readonly TopicSpec[]): Promise<void>;
  deleteTopics(names: readonly string[]): Promise<void>;
  listTopics(): Promise<string[]>;
  /** Throws UnknownTopicError for a missing topic. */
  describeTopics(names: readonly string[]): Promise<TopicDescription[]>;
  /** High watermark per partition. Throws UnknownTopicError for a missing topic. */
  listEndOffsets(topic: string): Promise<PartitionOffset[]>;
  /**
   * ListOffsets by time, per partition: the earliest offset whose record timestamp is at or after
   * `timestampMs`, or the end offset when no record is that recent. Throws UnknownTopicError for a
   * missing topic. The broker answers from its time index: with timestamps out of order, a reader
   * should still check each record's own timestamp.
   */
  listOffsetsForTime(topic: string, timestampMs: number): Promise<PartitionOffset[]>;
  /** Committed offsets of a group for a topic; offset -1 for a partition without a commit. */
  listCommittedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]>;
  listGroups(): Promise<string[]>;
  close(): Promise<void>;
}

export type KafkaClientKind = 'platformatic' | 'kafkajs' | 'embedded';

export interface KafkaClientOptions {
  /** host:port list; ignored by the embedded client. */
  brokers: readonly string[];
  clientId?: string;
  /** Budget to reach a broker before BrokerUnreachableError. Default 10000. */
  connectTimeoutMs?: number;
  /** Parent logger of the adapter's own logs (a `kafka` child is made); default a root made on first use. */
  logger?: Logger;
  /** Budget for one request. Default 30000. */
  requestTimeoutMs?: number;
}

/** Entry point of an adapter. One client = one connection configuration. */
export interface KafkaClient {
  readonly kind: KafkaClientKind;
  producer(options?: ProducerOptions): Promise<KafkaProducer>;
  consumer(options: GroupConsumerOptions): KafkaConsumer;
  reader(): PartitionReader;
  admin(): Promise<KafkaAdmin>;
  /** Closes everything this client created. */
  close(): Promise<void>;
}
