/** The runner's public shapes: what a caller passes in (options, handler, changelogs) and reads back (status). */
import type { Registry } from 'prom-client';
import type { Logger } from '../../core/log.ts';
import type { CommitOffset, ConsumedRecord, KafkaClient, KafkaProducer, PartitionReader, ProduceRecord, RecordMetadata } from '../kafka/types.ts';
import type { TopicRequirements } from './checks.ts';
import type { RunnerSettingsInput } from './settings.ts';

export interface RecordContext {
  readonly topic: string;
  readonly partition: number;
  /**
   * Aborted when the runner gives up on the record (revocation or shutdown timeout, fatal error).
   * The record is then not committed and will be processed again by the partition's next owner.
   */
  readonly signal: AbortSignal;
  /**
   * Produces records with the runner's producer. The source record counts as done only once every
   * record sent here (and every record the handler returns) is acknowledged by the broker.
   */
  send(records: readonly ProduceRecord[]): Promise<RecordMetadata[]>;
}

/** The work per record. Returned records are produced (and awaited) before the record is done. */
export type RecordHandler = (
  record: ConsumedRecord,
  context: RecordContext,
) => Promise<readonly ProduceRecord[] | void> | readonly ProduceRecord[] | void;

/**
 * The state of a co-partitioned changelog (e.g. tracking.cookies). The state/ module implements it:
 * `restore` reads partition p of `topic` with the given reader (from its checkpoint or from 0) and
 * resolves when the store is up to date; `close` releases the partition's store.
 */
export interface ChangelogBinding {
  readonly topic: string;
  restore(partition: number, reader: PartitionReader, signal: AbortSignal): Promise<void>;
  close?(partition: number): Promise<void> | void;
}

export interface RunnerOptions extends RunnerSettingsInput {
  client: KafkaClient;
  groupId: string;
  /** The source topic the group consumes (or `topics`). */
  topic?: string;
  /**
   * Several co-partitioned source topics: partition p of each belongs to the same task (one key
   * order, one set of stores per partition), as in a Kafka Streams task. The group's assignor must
   * give partition p of every topic to the same member (range assignment does for topics with the
   * same partition count).
   */
  topics?: readonly string[];
  handler: RecordHandler;
  /**
   * Default true: records of one key run one at a time, in offset order. false: every record runs
   * on its own (a consumer whose records only wait and forward, as the dispatcher's retry consumer).
   */
  perKeyOrder?: boolean;
  changelog?: ChangelogBinding;
  /** Several changelogs (one per store), restored in order before a partition's first record. */
  changelogs?: readonly ChangelogBinding[];
  /**
   * The start-up checks; default derived from the topics and changelogs (all exist, each changelog
   * co-partitioned with the first topic, compacted when requireCompactedChangelog).
   */
  requirements?: TopicRequirements;
  /**
   * Called when the handler or its produce failed. Resolving means "handled" (e.g. sent to a dead
   * letter topic): the record counts as done. Absent or throwing: the runner fails and stops.
   */
  onError?: (error: unknown, record: ConsumedRecord) => Promise<void> | void;
  /**
   * Called after each successful commit of consumer offsets (where a stream runtime commits its
   * stores, as Kafka Streams commits state with the offsets). Must not throw.
   */
  onCommitted?: (offsets: readonly CommitOffset[]) => void;
  /** Producer for outputs; default: one created from `client` (and closed by stop()). */
  producer?: KafkaProducer;
  /** Prometheus registry for the runner's metrics; default: a private one. */
  registry?: Registry;
  logger?: Logger;
  clientId?: string;
}

export interface RestoreProgress {
  topic: string;
  partition: number;
  /** End offset of the changelog partition when the restore started. */
  endOffset: number;
  /** Next changelog offset to apply (-1 before the restore callback started reading). */
  position: number;
  remaining: number;
  done: boolean;
}

export type PartitionState = 'restoring' | 'active' | 'revoking';

export interface PartitionStatus {
  partition: number;
  state: PartitionState;
  inFlight: number;
  /** The offset the runner would commit now (undefined before any record). */
  watermark: number | undefined;
  /** The last offset this runner committed (-1 none), of the first source topic. */
  committed: number;
  /** Watermark and committed offset per source topic. */
  topics: Record<string, { watermark: number | undefined; committed: number }>;
  restore: RestoreProgress | undefined;
}

export type RunnerState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface RunnerStatus {
  state: RunnerState;
  groupId: string;
  topic: string;
  inFlight: number;
  buffered: number;
  /** Partitions whose fetching is paused now. */
  pausedPartitions: number[];
  partitions: PartitionStatus[];
  processed: number;
  /** Highest values seen since start (what the backpressure tests check); batch = largest delivery. */
  peak: { inFlight: number; buffered: number; batch: number };
}
