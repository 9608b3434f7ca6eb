/**
 * Consumer lag per group/topic/partition: end offset − committed offset (no commit = whole log),
 * and, given a partition reader, the lag in seconds: the age of the oldest unprocessed record
 * (the timestamp of the record at the committed offset; 0 when the group is caught up). The
 * `lag` command prints it; the metrics endpoint reuses `computeLag` for its gauge.
 */
import type { KafkaAdmin, PartitionReader } from './kafka/types.ts';

export interface PartitionLag {
  group: string;
  topic: string;
  partition: number;
  endOffset: number;
  /** -1 when the group never committed on this partition. */
  committedOffset: number;
  lag: number;
  /**
   * Seconds since the oldest unprocessed record was written (its record timestamp), 0 when caught
   * up; null when no reader was given or that record could not be read (deleted by retention
   * while we looked).
   */
  lagSeconds: number | null;
}

export interface LagOptions {
  /** Reads the record at the committed offset for `lagSeconds`; without it `lagSeconds` is null. */
  reader?: PartitionReader;
  now?: () => number;
}

/** How far past the committed offset to look when that offset has no record (compaction, a transaction marker). */
const LOOKAHEAD = 500;

export async function computeLag(admin: KafkaAdmin, group: string, topic: string, options: LagOptions = {}): Promise<PartitionLag[]> {
  const [ends, committed] = await Promise.all([admin.listEndOffsets(topic), admin.listCommittedOffsets(group, topic)]);
  const byPartition = new Map(committed.map((c) => [c.partition, c.offset]));
  const now = options.now ?? Date.now;
  // A group without a commit starts at the log start, which retention moves: ask the broker.
  const needStart = options.reader !== undefined && ends.some((e) => (byPartition.get(e.partition) ?? -1) < 0 && e.offset > 0);
  const starts = needStart ? new Map((await admin.listOffsetsForTime(topic, 0)).map((s) => [s.partition, s.offset])) : new Map<number, number>();
  const rows = await Promise.all(
    ends.map(async (end): Promise<PartitionLag> => {
      const committedOffset = byPartition.get(end.partition) ?? -1;
      // Without a commit the group would start from the log start; the end offset bounds the lag.
      const lag = committedOffset < 0 ? end.offset : Math.max(0, end.offset - committedOffset);
      let lagSeconds: number | null = null;
      if (options.reader !== undefined) {
        lagSeconds = lag === 0 ? 0 : await oldestAge(options.reader, topic, end.partition, committedOffset < 0 ? (starts.get(end.partition) ?? 0) : committedOffset, end.offset, now);
      }
      return { group, topic, partition: end.partition, endOffset: end.offset, committedOffset, lag, lagSeconds };
    }),
  );
  return rows.sort((a, b) => a.partition - b.partition);
}

/** Age in seconds (ms precision) of the first record at or after `from`, or null when none can be read. */
async function oldestAge(reader: PartitionReader, topic: string, partition: number, from: number, end: number, now: () => number): Promise<number | null> {
  let timestamp: number | undefined;
  try {
    await reader.read(topic, partition, from, (records) => {
      timestamp ??= records[0]?.timestamp;
    }, Math.min(end, from + LOOKAHEAD));
  } catch {
    // The offset went below the log start (retention) between the two calls: unknown this time.
    return null;
  }
  if (timestamp === undefined) return null;
  return Math.max(0, Math.round(now() - timestamp) / 1000);
}
