/**
 * Shared pieces of the runner suites: the same scenarios run on the embedded client (fast, unit)
 * and on the real broker (platformatic by default).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsumedRecord, KafkaClient, PartitionReader, TopicSpec } from '../../runtime/kafka/types.ts';
import type { ChangelogBinding } from '../../runtime/runner/index.ts';

export interface RunnerTestEnv {
  readonly name: string;
  /** A client for one member (runners close what they open; the env closes the clients). */
  client(): KafkaClient;
  createTopics(specs: readonly TopicSpec[]): Promise<void>;
  /** Unique names: tests share one broker. */
  topic(prefix: string): string;
  close(): Promise<void>;
}

/** Polls `check` until it returns true; fails with `what` after `timeoutMs`. Bounded by design. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface TestEvent {
  user: string;
  seq: number;
}

export function eventRecord(topic: string, user: string, seq: number): { topic: string; key: string; value: string } {
  return { topic, key: user, value: JSON.stringify({ user, seq } satisfies TestEvent) };
}

export function parseEvent(record: ConsumedRecord): TestEvent {
  return JSON.parse((record.value ?? Buffer.from('null')).toString('utf8')) as TestEvent;
}

/**
 * A minimal state store per partition, restored from the changelog like the state/ module will:
 * a Map per partition, tombstones delete. Records which partitions are open, for the
 * co-partitioning assertions.
 */
export class MapChangelog implements ChangelogBinding {
  readonly stores = new Map<number, Map<string, string>>();
  /** Every partition restored (completed), in order. */
  readonly restored: number[] = [];
  readonly closed: number[] = [];
  restoreDelayMs = 0;

  constructor(readonly topic: string) {}

  async restore(partition: number, reader: PartitionReader, signal: AbortSignal): Promise<void> {
    const store = new Map<string, string>();
    await reader.read(this.topic, partition, 0, (records) => {
      for (const r of records) {
        if (r.key === null) continue;
        if (r.value === null) store.delete(r.key.toString());
        else store.set(r.key.toString(), r.value.toString());
      }
    });
    if (this.restoreDelayMs > 0) await sleep(this.restoreDelayMs, undefined, { signal }).catch(() => undefined);
    if (signal.aborted) return; // revoked meanwhile: the store is not opened
    this.stores.set(partition, store);
    this.restored.push(partition);
  }

  close(partition: number): void {
    this.stores.delete(partition);
    this.closed.push(partition);
  }

  /** Partitions whose store is open now. */
  open(): number[] {
    return [...this.stores.keys()].sort((a, b) => a - b);
  }
}

export function sorted(values: Iterable<number>): number[] {
  return [...values].sort((a, b) => a - b);
}

/** Reads a whole topic (all partitions) with a PartitionReader. */
export async function readAll(client: KafkaClient, topic: string, partitions: number): Promise<ConsumedRecord[]> {
  const reader = client.reader();
  const out: ConsumedRecord[] = [];
  try {
    for (let p = 0; p < partitions; p += 1) {
      await reader.read(topic, p, 0, (records) => {
        out.push(...records);
      });
    }
  } finally {
    await reader.close();
  }
  return out;
}
