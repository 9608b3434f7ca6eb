/**
 * The stream runtime's own metrics (the runner's are in runtime/runner/metrics.ts): the size of
 * each state store partition this member holds, and the records sent to a dead-letter topic.
 * Once per registry; every stream application on it (processor, dispatcher) adds its stores.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { once } from './registry.ts';

export interface StoreSizes {
  group: string;
  sizes(): ReadonlyArray<{ store: string; partition: number; entries: number }>;
}

export interface StreamsMetrics {
  /** Sources of `tagstream_store_entries`: add at start, delete at close. */
  stores: Set<StoreSizes>;
  /** Records written to a dead-letter topic, by group, dead-letter topic and reason. */
  deadLetters: Counter<'group' | 'topic' | 'reason'>;
}

const byRegistry = new WeakMap<Registry, StreamsMetrics>();

export function streamsMetrics(registry: Registry): StreamsMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const stores = new Set<StoreSizes>();
  once(registry, 'tagstream_store_entries', () => new Gauge({
    name: 'tagstream_store_entries',
    help: 'Entries of a local state store partition held by this member (cookie jars, delivered keys)',
    labelNames: ['group', 'store', 'partition'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const source of stores) for (const s of source.sizes()) this.set({ group: source.group, store: s.store, partition: String(s.partition) }, s.entries);
    },
  }));
  const deadLetters = once(registry, 'tagstream_dead_letters_total', () => new Counter({
    name: 'tagstream_dead_letters_total',
    help: 'Records written to a dead-letter topic, by group, topic and reason (executor-failed, output-too-large, permanent-failure, retry-window-exhausted, invalid-request, ...)',
    labelNames: ['group', 'topic', 'reason'] as const,
    registers: [registry],
  }));
  const metrics = { stores, deadLetters };
  byRegistry.set(registry, metrics);
  return metrics;
}

/** The `reason` of a dead letter (core/contracts/dead-letter.ts), read from its JSON value; `unknown` otherwise. */
export function deadLetterReason(value: unknown): string {
  if (value === null || value === undefined) return 'unknown';
  try {
    const parsed = JSON.parse(typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : String(value)) as { reason?: unknown };
    return typeof parsed.reason === 'string' ? parsed.reason.slice(0, 64) : 'unknown';
  } catch {
    return 'unknown';
  }
}
