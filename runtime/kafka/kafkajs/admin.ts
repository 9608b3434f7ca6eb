import kafkajs, { type Admin, type Kafka } from 'kafkajs';

// kafkajs is CommonJS whose exports Node cannot list statically: values come from the default export.
const { ConfigResourceTypes } = kafkajs;
import { InvalidInputError } from '../../../core/errors.ts';
import type { KafkaAdmin, PartitionOffset, TopicDescription, TopicSpec } from '../types.ts';
import { connectWithin, hasType, mapError, RETRY, type ResolvedOptions } from './common.ts';
import { PartitionCounts } from './metadata.ts';

export class KafkajsAdmin implements KafkaAdmin {
  readonly #admin: Admin;
  readonly #counts: PartitionCounts;
  readonly #options: ResolvedOptions;
  #closed = false;

  private constructor(admin: Admin, options: ResolvedOptions) {
    this.#admin = admin;
    this.#counts = new PartitionCounts(admin);
    this.#options = options;
  }

  static async create(kafka: Kafka, options: ResolvedOptions): Promise<KafkajsAdmin> {
    const admin = kafka.admin({ retry: RETRY });
    await connectWithin(() => admin.connect(), options, () => admin.disconnect());
    return new KafkajsAdmin(admin, options);
  }

  async createTopics(topics: readonly TopicSpec[]): Promise<void> {
    const names = topics.map((t) => t.name);
    try {
      // Existing topics are skipped up front: kafkajs logs TOPIC_ALREADY_EXISTS as an error.
      const existing = new Set(await this.#admin.listTopics());
      const missing = topics.filter((t) => !existing.has(t.name));
      if (missing.length === 0) return;
      await this.#admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({
          topic: spec.name,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor ?? -1,
          configEntries: Object.entries(spec.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (error) {
      // Created concurrently by another process between listTopics and createTopics: fine.
      if (hasType(error, 'TOPIC_ALREADY_EXISTS')) return;
      throw this.#map(error, 'createTopics', names);
    }
  }

  async deleteTopics(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    try {
      await this.#admin.deleteTopics({ topics: [...names] });
    } catch (error) {
      throw this.#map(error, 'deleteTopics', names);
    }
  }

  async listTopics(): Promise<string[]> {
    try {
      return await this.#admin.listTopics();
    } catch (error) {
      throw this.#map(error, 'listTopics');
    }
  }

  async describeTopics(names: readonly string[]): Promise<TopicDescription[]> {
    if (names.length === 0) return [];
    try {
      const counts = await this.#counts.get(names, true);
      const described = await this.#admin.describeConfigs({
        includeSynonyms: false,
        resources: names.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
      });
      return names.map((name) => {
        const configs: Record<string, string> = {};
        for (const c of described.resources.find((r) => r.resourceName === name)?.configEntries ?? []) {
          if (c.configValue !== null && c.configValue !== undefined) configs[c.configName] = c.configValue;
        }
        return { name, partitions: counts.get(name)!, configs };
      });
    } catch (error) {
      throw this.#map(error, 'describeTopics', names);
    }
  }

  async listEndOffsets(topic: string): Promise<PartitionOffset[]> {
    try {
      await this.#counts.get([topic], true);
      const offsets = await this.#admin.fetchTopicOffsets(topic);
      return offsets.map((o) => ({ partition: o.partition, offset: Number(o.high) })).sort((a, b) => a.partition - b.partition);
    } catch (error) {
      throw this.#map(error, 'listEndOffsets', [topic]);
    }
  }

  async listOffsetsForTime(topic: string, timestampMs: number): Promise<PartitionOffset[]> {
    if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) throw new InvalidInputError('timestampMs', 'must be a non-negative integer (ms since the epoch)', { topic });
    try {
      await this.#counts.get([topic], true);
      // kafkajs already answers the high watermark for a partition without a record that recent.
      const offsets = await this.#admin.fetchTopicOffsetsByTimestamp(topic, timestampMs);
      const ends = new Map((await this.#admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
      return offsets
        .map((o) => ({ partition: o.partition, offset: Number(o.offset) >= 0 ? Number(o.offset) : (ends.get(o.partition) ?? 0) }))
        .sort((a, b) => a.partition - b.partition);
    } catch (error) {
      throw this.#map(error, 'listOffsetsForTime', [topic]);
    }
  }

  async listCommittedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]> {
    try {
      const partitions = (await this.#counts.get([topic], true)).get(topic)!;
      const answer = await this.#admin.fetchOffsets({ groupId, topics: [topic] });
      const committed = new Map<number, number>();
      for (const t of answer) {
        if (t.topic !== topic) continue;
        for (const p of t.partitions) committed.set(p.partition, Number(p.offset));
      }
      return Array.from({ length: partitions }, (_, partition) => ({ partition, offset: committed.get(partition) ?? -1 }));
    } catch (error) {
      throw this.#map(error, 'listCommittedOffsets', [topic]);
    }
  }

  async listGroups(): Promise<string[]> {
    try {
      return (await this.#admin.listGroups()).groups.map((g) => g.groupId);
    } catch (error) {
      throw this.#map(error, 'listGroups');
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#admin.disconnect();
  }

  #map(error: unknown, operation: string, topics?: readonly string[]): Error {
    return mapError(error, {
      brokers: this.#options.brokers,
      connectTimeoutMs: this.#options.connectTimeoutMs,
      ...(topics ? { topics } : {}),
      operation,
    });
  }
}
