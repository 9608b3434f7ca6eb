/** Consumer lag per group/topic/partition: end offset − committed offset (no commit = whole log). */
import type { KafkaAdmin } from './kafka/types.ts';

export interface PartitionLag {
  group: string;
  topic: string;
  partition: number;
  endOffset: number;
  /** -1 when the group never committed on this partition. */
  committedOffset: number;
  lag: number;
}

export async function computeLag(admin: KafkaAdmin, group: string, topic: string): Promise<PartitionLag[]> {
  const [ends, committed] = await Promise.all([admin.listEndOffsets(topic), admin.listCommittedOffsets(group, topic)]);
  const byPartition = new Map(committed.map((c) => [c.partition, c.offset]));
  return ends
    .map((end) => {
      const committedOffset = byPartition.get(end.partition) ?? -1;
      // Without a commit the group would start from the log start; the end offset bounds the lag.
      const lag = committedOffset < 0 ? end.offset : Math.max(0, end.offset - committedOffset);
      return { group, topic, partition: end.partition, endOffset: end.offset, committedOffset, lag };
    })
    .sort((a, b) => a.partition - b.partition);
}
