/**
 * Group assignment that keeps co-partitioned topics together, as Kafka Streams' assignor does:
 * partition p of every subscribed topic goes to the same member. The stream runtime runs one task
 * per partition number over all the topics it subscribes (the dispatcher's requests and retry
 * topics, for example); the clients' default round-robin assignors deal topic-partitions out one
 * by one, which hands requests-0 to one member and retry-0 to another: two members then run a task
 * for the same partition and neither owns all of it (found by test/dispatcher/rebalance.test.ts).
 *
 * Partition numbers are dealt round-robin over the members sorted by id, so every member computes
 * the same answer and the split differs by at most one partition. A topic with fewer partitions
 * than the others just has no partition p for the higher numbers (startup checks already refuse
 * co-partitioned topics whose counts differ).
 */

/** member id → topic → partitions, for the members given. */
export type CoPartitionedAssignment = Map<string, Map<string, number[]>>;

export function assignCoPartitioned(memberIds: Iterable<string>, partitionCounts: ReadonlyMap<string, number>): CoPartitionedAssignment {
  const members = [...new Set(memberIds)].sort();
  const result: CoPartitionedAssignment = new Map(members.map((m) => [m, new Map<string, number[]>()]));
  if (members.length === 0) return result;
  const maxPartitions = Math.max(0, ...partitionCounts.values());
  for (let p = 0; p < maxPartitions; p += 1) {
    const owner = result.get(members[p % members.length]!)!;
    for (const [topic, count] of [...partitionCounts].sort(([a], [b]) => a.localeCompare(b))) {
      if (p >= count) continue;
      const list = owner.get(topic) ?? [];
      list.push(p);
      owner.set(topic, list);
    }
  }
  return result;
}
