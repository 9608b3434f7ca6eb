import type { Admin } from 'kafkajs';
import { UnknownTopicError } from '../../../core/errors.ts';

const MAX_AGE_MS = 5_000;

/**
 * Partition counts per topic, cached a few seconds (like the clients' own metadata caches).
 * A topic missing from the cluster is answered from listTopics first: kafkajs's metadata request
 * retries UNKNOWN_TOPIC_OR_PARTITION with backoff, which would delay a clear error by seconds.
 */
export class PartitionCounts {
  readonly #admin: Admin;
  readonly #cache = new Map<string, { partitions: number; at: number }>();

  constructor(admin: Admin) {
    this.#admin = admin;
  }

  async get(topics: readonly string[], fresh = false): Promise<Map<string, number>> {
    const now = Date.now();
    const missing = topics.filter((t) => {
      const entry = this.#cache.get(t);
      return fresh || !entry || now - entry.at > MAX_AGE_MS;
    });
    if (missing.length > 0) {
      const existing = new Set(await this.#admin.listTopics());
      for (const t of missing) if (!existing.has(t)) throw new UnknownTopicError(t, { client: 'kafkajs' });
      const metadata = await this.#admin.fetchTopicMetadata({ topics: [...new Set(missing)] });
      for (const t of metadata.topics) this.#cache.set(t.name, { partitions: t.partitions.length, at: now });
    }
    const out = new Map<string, number>();
    for (const t of topics) {
      const entry = this.#cache.get(t);
      if (!entry) throw new UnknownTopicError(t, { client: 'kafkajs' });
      out.set(t, entry.partitions);
    }
    return out;
  }
}
