/** Topics, settings and a dispatcher on the real broker for the dispatcher's integration tests. */
import { Registry } from 'prom-client';
import type { PartnerConfigInput } from '../../core/contracts/index.ts';
import { parsePartners } from '../../core/contracts/index.ts';
import { loadSettings, type Settings } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { ConsumedRecord, KafkaClient } from '../../runtime/kafka/types.ts';
import { startDispatcher, type DispatcherHandle, type DispatcherSettingsInput } from '../../runtime/roles/dispatcher.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { readAll } from '../runner/helpers.ts';

export const PARTITIONS = 3;

export interface DispatcherTopics {
  requests: string;
  retry: string;
  delivered: string;
  dlq: string;
  events: string;
}

export function names(prefix = uniqueTopic('disp')): { topics: DispatcherTopics; group: string } {
  return {
    topics: { requests: `${prefix}-requests`, retry: `${prefix}-retry`, delivered: `${prefix}-delivered`, dlq: `${prefix}-dlq`, events: `${prefix}-events` },
    group: `${prefix}-dispatcher`,
  };
}

/** What the lead's `topics create` will make: retry and the idempotency changelog co-partitioned with requests, the changelog compacted. */
export async function createDispatcherTopics(client: KafkaClient, topics: DispatcherTopics): Promise<void> {
  const admin = await client.admin();
  try {
    await admin.createTopics([
      { name: topics.requests, partitions: PARTITIONS },
      { name: topics.retry, partitions: PARTITIONS },
      { name: topics.delivered, partitions: PARTITIONS, configs: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0' } },
      { name: topics.dlq, partitions: PARTITIONS },
      { name: topics.events, partitions: PARTITIONS },
    ]);
  } finally {
    await admin.close();
  }
}

export function dispatcherSettings(topics: DispatcherTopics, group: string): Settings {
  return loadSettings({
    env: {},
    flags: {
      topics: { requests: topics.requests, requestsDlq: topics.dlq, events: topics.events },
      groups: { dispatcher: group },
      state: { store: 'memory' },
      runner: { sessionTimeoutMs: 10_000 },
    },
  });
}

/** Fast retries for tests: seconds instead of minutes. */
export const FAST: DispatcherSettingsInput = {
  allowPrivateNetwork: true,
  inMemoryAttempts: 2,
  inMemoryBudgetMs: 1_000,
  inMemoryBaseDelayMs: 20,
  retryBaseDelayMs: 300,
  retryMaxDelayMs: 1_000,
  breakerThreshold: 3,
  halfOpenAfterMs: 500,
};

export class Harness {
  readonly clients: KafkaClient[] = [];
  readonly dispatchers: DispatcherHandle[] = [];

  client(): KafkaClient {
    const c = createKafkaClient('platformatic', { brokers: realBroker().brokers, clientId: 'dispatcher-test' });
    this.clients.push(c);
    return c;
  }

  async start(settings: Settings, partners: PartnerConfigInput[], dispatcher: DispatcherSettingsInput, ca: string): Promise<DispatcherHandle> {
    const d = await startDispatcher({ settings, dispatcher, client: this.client(), partners: parsePartners(partners), ca, registry: new Registry() });
    this.dispatchers.push(d);
    return d;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.dispatchers.map((d) => d.stop(2_000)));
    await Promise.allSettled(this.clients.map((c) => c.close()));
  }
}

export async function readJson<T>(client: KafkaClient, topic: string): Promise<Array<{ key: string | null; value: T }>> {
  const records: ConsumedRecord[] = await readAll(client, topic, PARTITIONS);
  return records.map((r) => ({ key: r.key === null ? null : r.key.toString(), value: JSON.parse(r.value?.toString('utf8') ?? 'null') as T }));
}
