/**
 * The start-up checks of a stream application (what Kafka Streams checks before it processes a
 * record): every topic it reads exists, the topics of a co-partition group have the same partition
 * count (partition p of a stream is joined with partition p of a table's changelog), and the
 * changelogs are compacted. One implementation: the runner derives the requirements from its
 * topics and changelogs, the stream runtime from the topology, `topics create` from the
 * application's topologies.
 */
import { TopologyMismatchError, UnknownTopicError } from '../../core/errors.ts';
import type { KafkaAdmin } from '../kafka/types.ts';

export interface TopicRequirements {
  /** Topics that must exist. */
  exist: readonly string[];
  /** Each group: topics with the same partition count; the first is the stream, the others its changelogs. */
  copartitionGroups: readonly (readonly string[])[];
  /** Topics that must have cleanup.policy=compact (the changelogs). */
  compacted: readonly string[];
}

export async function verifyTopicRequirements(admin: KafkaAdmin, req: TopicRequirements, context: Record<string, unknown> = {}): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const wanted = unique([...req.exist, ...req.copartitionGroups.flat(), ...req.compacted]);
  for (const name of wanted) if (!existing.has(name)) throw new UnknownTopicError(name, { ...context, hint: 'run `tagstream topics create`' });
  if (wanted.length === 0) return;
  const described = new Map((await admin.describeTopics(wanted)).map((d) => [d.name, d]));
  const get = (name: string) => {
    const d = described.get(name);
    if (!d) throw new UnknownTopicError(name, context);
    return d;
  };
  for (const group of req.copartitionGroups) {
    const [first, ...rest] = group;
    if (first === undefined) continue;
    const source = get(first);
    for (const name of rest) {
      const other = get(name);
      if (other.partitions !== source.partitions) {
        throw new TopologyMismatchError(
          `topics ${source.name} (${source.partitions} partitions) and ${other.name} (${other.partitions} partitions) must have the same partition count: partition p of ${source.name} is joined with partition p of ${other.name}`,
          { ...context, group: [...group], source: { topic: source.name, partitions: source.partitions }, changelog: { topic: other.name, partitions: other.partitions } },
        );
      }
    }
  }
  for (const name of req.compacted) {
    const policy = get(name).configs['cleanup.policy'] ?? 'delete';
    if (!policy.split(',').map((p) => p.trim()).includes('compact')) {
      throw new TopologyMismatchError(`changelog topic ${name} must be compacted (cleanup.policy=compact, found ${policy})`, { ...context, topic: name, cleanupPolicy: policy });
    }
  }
}

function unique(names: readonly string[]): string[] {
  return [...new Set(names)];
}
