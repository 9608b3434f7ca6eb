/**
 * The product's topics (DESIGN.md "Topics"): what `topics create` makes, and the start-up check of
 * a cluster. The check is derived from the application's topologies (runtime/streams'
 * topologyRequirements: every topic read or written exists, events and cookies co-partitioned,
 * the cookie changelog compacted), not written out a second time here.
 */
import type { Settings } from './config.ts';
import type { KafkaAdmin, TopicSpec } from './kafka/types.ts';
import { configuredProcessorTopology } from './roles/processor.ts';
import { verifyTopicRequirements } from './runner/checks.ts';
import { topologyRequirements } from './streams/index.ts';
import { describeOnlyExecutor } from '../topology/app/processor.ts';
import { describeOnlyDeliver } from '../topology/app/dispatcher.ts';
import { configuredDispatcherTopology } from './roles/dispatcher.ts';
import { dispatcherTopics } from './roles/dispatcher-settings.ts';

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
    // max.compaction.lag.ms: an erased visitor's earlier jar values must leave the log within a day,
    // not whenever the active segment happens to roll (segment.ms defaults to 7 days).
    spec(settings.topics.cookies, settings.partitions, { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0', 'max.compaction.lag.ms': String(24 * 3600 * 1000) }),
    spec(settings.topics.requests, settings.requestPartitions),
    spec(settings.topics.requestsDlq, settings.requestPartitions),
    // The dispatcher's delayed retries, and its idempotency changelog (delivered keys per visitor),
    // both co-partitioned with the requests: one task reads partition p of all three.
    spec(dispatcherTopics(settings.topics.requests, settings.dispatcher).retry, settings.requestPartitions),
    spec(dispatcherTopics(settings.topics.requests, settings.dispatcher).delivered, settings.requestPartitions, { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0' }),
    spec(settings.topics.eventsDlq, settings.partitions),
  ];
}

export async function createTopics(admin: KafkaAdmin, settings: Settings): Promise<TopicSpec[]> {
  const specs = topicSpecs(settings);
  await admin.createTopics(specs);
  await verifyTopics(admin, settings);
  return specs;
}

/** Throws TopologyMismatchError (or UnknownTopicError) when the topologies' preconditions do not hold. */
export async function verifyTopics(admin: KafkaAdmin, settings: Settings): Promise<void> {
  const processor = configuredProcessorTopology(settings, describeOnlyExecutor);
  await verifyTopicRequirements(admin, topologyRequirements(processor, { requireCompacted: true }));
  const dispatcher = configuredDispatcherTopology(settings, settings.dispatcher, describeOnlyDeliver);
  await verifyTopicRequirements(admin, topologyRequirements(dispatcher, { requireCompacted: true }));
}
