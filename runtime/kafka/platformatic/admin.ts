import { Admin, ConfigResourceTypes } from '@platformatic/kafka';
import { InvalidInputError, KafkaClientError, UnknownTopicError } from '../../../core/errors.ts';
import type { KafkaAdmin, PartitionOffset, TopicDescription, TopicSpec } from '../types.ts';
import { baseOptions, probe, type ResolvedOptions } from './common.ts';
import { hasApiId, mapError } from './errors.ts';

export class PlatformaticAdmin implements KafkaAdmin {
  readonly #admin: Admin;
  readonly #options: ResolvedOptions;
  #closed = false;

  private constructor(admin: Admin, options: ResolvedOptions) {
    this.#admin = admin;
    this.#options = options;
  }

  static async create(options: ResolvedOptions): Promise<PlatformaticAdmin> {
    const admin = new Admin(baseOptions(options, `${options.clientId}-admin`));
    await probe(admin, options);
    return new PlatformaticAdmin(admin, options);
  }

  async createTopics(topics: readonly TopicSpec[]): Promise<void> {
    // One request per topic: the library applies `partitions` and `configs` to every topic of a
    // request, while specs differ (compacted cookies topic next to plain ones).
    await Promise.all(
      topics.map(async (spec) => {
        try {
          await this.#admin.createTopics({
            topics: [spec.name],
            partitions: spec.partitions,
            replicas: spec.replicationFactor ?? -1,
            configs: Object.entries(spec.configs ?? {}).map(([name, value]) => ({ name, value })),
          });
        } catch (error) {
          if (hasApiId(error, 'TOPIC_ALREADY_EXISTS')) return;
          throw this.#map(error, 'createTopics', [spec.name]);
        }
      }),
    );
    await this.#waitForLeaders(topics.map((t) => t.name));
  }

  /**
   * CreateTopics returns before every broker's metadata cache knows the topic; a produce right
   * after would fail with UNKNOWN_TOPIC_OR_PARTITION. Wait (bounded) until leaders are known.
   */
  async #waitForLeaders(names: readonly string[]): Promise<void> {
    const deadline = Date.now() + this.#options.requestTimeoutMs;
    for (;;) {
      try {
        const metadata = await this.#admin.metadata({ topics: [...names], forceUpdate: true });
        const ready = names.every((n) => {
          const t = metadata.topics.get(n);
          return t !== undefined && t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0);
        });
        if (ready) return;
      } catch (error) {
        if (Date.now() > deadline) throw this.#map(error, 'createTopics', names);
      }
      if (Date.now() > deadline) {
        throw new KafkaClientError('created topics have no leader in time', { topics: [...names], client: 'platformatic' });
      }
      await new Promise((r) => setTimeout(r, 100));
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
      const counts = await this.#partitionCounts(names);
      const described = await this.#admin.describeConfigs({
        resources: names.map((name) => ({ resourceType: ConfigResourceTypes.TOPIC, resourceName: name })),
      });
      return names.map((name) => {
        const configs: Record<string, string> = {};
        for (const c of described.find((d) => d.resourceName === name)?.configs ?? []) {
          if (c.value !== null && c.value !== undefined) configs[c.name] = c.value;
        }
        return { name, partitions: counts.get(name)!, configs };
      });
    } catch (error) {
      throw this.#map(error, 'describeTopics', names);
    }
  }

  async listEndOffsets(topic: string): Promise<PartitionOffset[]> {
    try {
      const partitions = (await this.#partitionCounts([topic])).get(topic)!;
      const listed = await this.#admin.listOffsets({
        topics: [
          { name: topic, partitions: Array.from({ length: partitions }, (_, i) => ({ partitionIndex: i, timestamp: -1n })) },
        ],
      });
      return (listed.find((t) => t.name === topic)?.partitions ?? [])
        .map((p) => ({ partition: p.partitionIndex, offset: Number(p.offset) }))
        .sort((a, b) => a.partition - b.partition);
    } catch (error) {
      throw this.#map(error, 'listEndOffsets', [topic]);
    }
  }

  async listOffsetsForTime(topic: string, timestampMs: number): Promise<PartitionOffset[]> {
    if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) throw new InvalidInputError('timestampMs', 'must be a non-negative integer (ms since the epoch)', { topic });
    try {
      const partitions = (await this.#partitionCounts([topic])).get(topic)!;
      const ask = async (timestamp: bigint): Promise<Map<number, number>> => {
        const listed = await this.#admin.listOffsets({
          topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, i) => ({ partitionIndex: i, timestamp })) }],
        });
        return new Map((listed.find((t) => t.name === topic)?.partitions ?? []).map((p) => [p.partitionIndex, Number(p.offset)]));
      };
      const byTime = await ask(BigInt(timestampMs));
      // The broker answers -1 when no record is that recent: that is the end offset.
      const ends = [...byTime.values()].some((o) => o < 0) ? await ask(-1n) : new Map<number, number>();
      return Array.from({ length: partitions }, (_, partition) => {
        const offset = byTime.get(partition) ?? -1;
        return { partition, offset: offset >= 0 ? offset : (ends.get(partition) ?? 0) };
      });
    } catch (error) {
      throw this.#map(error, 'listOffsetsForTime', [topic]);
    }
  }

  async listCommittedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]> {
    try {
      const partitions = (await this.#partitionCounts([topic])).get(topic)!;
      const groups = await this.#admin.listConsumerGroupOffsets({
        groups: [{ groupId, topics: [{ name: topic, partitionIndexes: Array.from({ length: partitions }, (_, i) => i) }] }],
      });
      const committed = new Map<number, number>();
      for (const t of groups.find((g) => g.groupId === groupId)?.topics ?? []) {
        if (t.name !== topic) continue;
        for (const p of t.partitions) committed.set(p.partitionIndex, Number(p.committedOffset));
      }
      // The broker answers -1 for a partition without a commit; keep that, and fill any gap with it.
      return Array.from({ length: partitions }, (_, partition) => ({ partition, offset: committed.get(partition) ?? -1 }));
    } catch (error) {
      throw this.#map(error, 'listCommittedOffsets', [topic]);
    }
  }

  async listGroups(): Promise<string[]> {
    try {
      return [...(await this.#admin.listGroups()).keys()];
    } catch (error) {
      throw this.#map(error, 'listGroups');
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#admin.close();
  }

  async #partitionCounts(names: readonly string[]): Promise<Map<string, number>> {
    // Fresh metadata: admin calls are rare, and a cached entry would hide a deleted topic. One
    // retry only: the library retries UNKNOWN_TOPIC_OR_PARTITION, which would delay the answer.
    const metadata = await this.#admin.metadata({ topics: [...names], forceUpdate: true, retries: 1 });
    const counts = new Map<string, number>();
    for (const name of names) {
      const t = metadata.topics.get(name);
      if (!t) throw new UnknownTopicError(name, { client: 'platformatic' });
      counts.set(name, t.partitionsCount);
    }
    return counts;
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
