/** The co-partitioned assignment (../co-partitioned-assignment.ts) as a kafkajs PartitionAssigner. */
import kafkajs, { type PartitionAssigner } from 'kafkajs';
import { assignCoPartitioned } from '../co-partitioned-assignment.ts';

const { AssignerProtocol } = kafkajs;
const NAME = 'TagstreamCoPartitioned';
const VERSION = 0;

export const coPartitionedAssigner: PartitionAssigner = ({ cluster }) => ({
  name: NAME,
  version: VERSION,
  async assign({ members, topics }) {
    const counts = new Map(topics.map((topic) => [topic, cluster.findTopicPartitionMetadata(topic).length] as const));
    const assignment = assignCoPartitioned(members.map((m) => m.memberId), counts);
    return [...assignment].map(([memberId, byTopic]) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: VERSION, assignment: Object.fromEntries(byTopic), userData: Buffer.alloc(0) }),
    }));
  },
  protocol({ topics }) {
    return { name: NAME, metadata: AssignerProtocol.MemberMetadata.encode({ version: VERSION, topics, userData: Buffer.alloc(0) }) };
  },
});
