/**
 * The product's topics (DESIGN.md "Topics") and the start-up check Kafka Streams does: events and
 * cookies exist with the same partition count (co-partitioned: the join reads partition p of both),
 * and the cookie changelog is compacted. A mismatch is a clear error, never a silent misjoin.
 */
import { TopologyMismatchError, UnknownTopicError } from '../core/errors.ts';
import type { Settings } from './config.ts';
import type { KafkaAdmin, TopicSpec } from './kafka/types.ts';

export function topicSpecs(settings: Settings): TopicSpec[] {
  const rf = settings.replicationFactor;
  const spec = (name: string, partitions: number, configs: Record<string, string> = {}): TopicSpec => ({
    name,
    partitions,
    ...(rf > 0 ? { replicationFactor: rf } : {}),
    configs,
  });
  return [
    spec(settings.topics.events, settings.partitions),
    // The jar changelog: latest jar per user survives; a tombstone erases the user.
    spec(settings.topics.cookies, settings.partitions, { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0' }),
    spec(settings.topics.requests, settings.requestPartitions),
    spec(settings.topics.requestsDlq, settings.requestPartitions),
    spec(settings.topics.eventsDlq, settings.partitions),
  ];
}

export async function createTopics(admin: KafkaAdmin, settings: Settings): Promise<TopicSpec[]> {
  const specs = topicSpecs(settings);
  await admin.createTopics(specs);
  await verifyTopics(admin, settings);
  return specs;
}

/** Throws TopologyMismatchError (or UnknownTopicError) when the join's preconditions do not hold. */
export async function verifyTopics(admin: KafkaAdmin, settings: Settings): Promise<void> {
  const { events, cookies } = settings.topics;
  const existing = new Set(await admin.listTopics());
  for (const topic of [events, cookies]) {
    if (!existing.has(topic)) {
      throw new UnknownTopicError(topic, { hint: 'run `tagstream topics create`' });
    }
  }
  const [ev, ck] = await admin.describeTopics([events, cookies]);
  if (!ev || !ck) throw new UnknownTopicError(!ev ? events : cookies);
  if (ev.partitions !== ck.partitions) {
    throw new TopologyMismatchError(
      `topics ${events} (${ev.partitions} partitions) and ${cookies} (${ck.partitions} partitions) must have the same partition count: the join reads partition p of both`,
      { events: { topic: events, partitions: ev.partitions }, cookies: { topic: cookies, partitions: ck.partitions } },
    );
  }
  const policy = ck.configs['cleanup.policy'] ?? 'delete';
  if (!policy.split(',').map((p) => p.trim()).includes('compact')) {
    throw new TopologyMismatchError(
      `topic ${cookies} must be compacted (cleanup.policy=compact, found ${policy}): it is the jar changelog`,
      { topic: cookies, cleanupPolicy: policy },
    );
  }
}
