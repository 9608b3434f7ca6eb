/**
 * Helpers of the KafkaClient contract suite (test/kafka/contract.test.ts).
 */
import { createServer } from 'node:net';
import type { ConsumedRecord, ConsumerListener, KafkaConsumer, TopicPartition } from '../../../runtime/kafka/types.ts';

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` (for conditions that span several consumers) until it holds or time runs out. */
export async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Records everything a consumer delivers; `waitFor` resolves once a condition holds. */
export class Collector implements ConsumerListener {
  readonly records: ConsumedRecord[] = [];
  readonly assigned: TopicPartition[][] = [];
  readonly revoked: TopicPartition[][] = [];
  #waiters: { check: () => boolean; resolve: () => void }[] = [];
  #onBatch: ((records: ConsumedRecord[]) => Promise<void> | void) | undefined;

  constructor(onBatch?: (records: ConsumedRecord[]) => Promise<void> | void) {
    this.#onBatch = onBatch;
  }

  async onRecords(records: ConsumedRecord[]): Promise<void> {
    this.records.push(...records);
    await this.#onBatch?.(records);
    this.#poll();
  }

  onAssigned(partitions: TopicPartition[]): void {
    this.assigned.push(partitions);
    this.#poll();
  }

  onRevoked(partitions: TopicPartition[]): void {
    this.revoked.push(partitions);
    this.#poll();
  }

  values(): string[] {
    return this.records.map((r) => r.value?.toString() ?? 'null');
  }

  async waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (check()) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#waiters.push({ check, resolve })),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (got ${this.records.length} records)`)),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  }

  waitForCount(n: number, timeoutMs: number): Promise<void> {
    return this.waitFor(() => this.records.length >= n, timeoutMs, `${n} records`);
  }

  #poll(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }
}

/** Commits, per partition, the offset after the highest record seen. */
export async function commitAll(consumer: KafkaConsumer, records: readonly ConsumedRecord[]): Promise<void> {
  const next = new Map<string, { topic: string; partition: number; offset: number }>();
  for (const r of records) {
    const k = `${r.topic}/${r.partition}`;
    const seen = next.get(k);
    if (!seen || seen.offset < r.offset + 1) next.set(k, { topic: r.topic, partition: r.partition, offset: r.offset + 1 });
  }
  await consumer.commit([...next.values()]);
}

/** Resolves with the error `fn` rejects with (fails if it resolves), and how long it took. */
export async function rejection(fn: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    await fn();
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
  throw new Error('expected a rejection, got a result');
}
