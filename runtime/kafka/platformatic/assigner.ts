/** The co-partitioned assignment (../co-partitioned-assignment.ts) as @platformatic/kafka's partitionAssigner. */
import type { GroupPartitionsAssigner, GroupPartitionsAssignments } from '@platformatic/kafka';
import { assignCoPartitioned } from '../co-partitioned-assignment.ts';

export const coPartitionedAssigner: GroupPartitionsAssigner = (_current, members, topics, metadata) => {
  const counts = new Map<string, number>();
  for (const topic of topics) {
    const described = metadata.topics.get(topic);
    if (described) counts.set(topic, described.partitionsCount);
  }
  const assignment = assignCoPartitioned(members.keys(), counts);
  return [...assignment].map(([memberId, byTopic]): GroupPartitionsAssignments => ({
    memberId,
    assignments: new Map([...byTopic].map(([topic, partitions]) => [topic, { topic, partitions }])),
  }));
};
