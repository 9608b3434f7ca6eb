/**
 * The dispatcher's settings (`dispatcher.*`, DISPATCHER_* variables; docs/dispatcher.md), apart from
 * the role so that runtime/config.ts can embed them without loading the dispatcher.
 */
import { z } from 'zod';
import { parseWith } from '../../core/contracts/parse.ts';

const topicName = z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/, 'must be a Kafka topic name');
const ms = (max: number) => z.number().int().min(0).max(max);

export const DispatcherSettingsSchema = z
  .object({
    /** `host:port=address:port` pairs (DISPATCHER_RESOLVE, like curl --resolve); TLS still verifies the host name. */
    resolve: z.union([z.string(), z.array(z.string())]).default([]).transform((v) => (typeof v === 'string' ? v.split(',') : v).map((s) => s.trim()).filter((s) => s !== '')),
    /** Let partner hosts resolve to loopback/private addresses (`run --allow-private-network`). */
    allowPrivateNetwork: z.boolean().default(false),
    /** A delivered idempotency key is remembered this long (DISPATCHER_DEDUPE_WINDOW_MS). */
    dedupeWindowMs: ms(30 * 24 * 3_600_000).default(48 * 3_600_000),
    /** Deliveries in flight per instance (also the runner's concurrency for this role). */
    concurrency: z.number().int().min(1).max(10_000).default(256),
    /** Connections per partner origin (undici pool). */
    connectionsPerHost: z.number().int().min(1).max(1024).default(32),
    /** Waiting requests per partner beyond its `delivery.concurrency`; default 4 × concurrency. */
    queueBound: z.number().int().min(0).max(100_000).optional(),
    /** Consecutive transient failures that open a partner's breaker. */
    breakerThreshold: z.number().int().min(1).max(1000).default(5),
    halfOpenAfterMs: ms(3_600_000).default(10_000),
    /** Attempts in memory (seconds) before the retry topic. */
    inMemoryAttempts: z.number().int().min(1).max(20).default(3),
    inMemoryBudgetMs: ms(600_000).default(5_000),
    inMemoryBaseDelayMs: ms(60_000).default(200),
    /** Backoff through the retry topic: first delay and cap (jittered). */
    retryBaseDelayMs: ms(24 * 3_600_000).default(30_000),
    retryMaxDelayMs: ms(24 * 3_600_000).default(15 * 60_000),
    /**
     * Retry records the retry consumer holds in memory until due, per instance; past it the retry
     * topic is read no further until some are due (docs/dispatcher.md "Retries").
     */
    retryBuffer: z.number().int().min(1).max(10_000).default(10_000),
    /** Keys remembered per visitor (bounds one row of the idempotency table). */
    maxKeysPerVisitor: z.number().int().min(1).max(100_000).default(2000),
    topics: z
      // Absent: derived from the requests topic (`<requests>.retry`, `<requests>.delivered`), which
      // gives DESIGN's tracking.requests.retry by default and keeps renamed deployments apart.
      .object({ retry: topicName.optional(), delivered: topicName.optional() })
      .strict()
      .prefault({}),
  })
  .strict();

export type DispatcherSettings = z.output<typeof DispatcherSettingsSchema>;
export type DispatcherSettingsInput = z.input<typeof DispatcherSettingsSchema>;

export function parseDispatcherSettings(value: unknown): DispatcherSettings {
  return parseWith(DispatcherSettingsSchema, 'dispatcher', value ?? {});
}

/** The dispatcher's own topics, derived from the requests topic unless set. */
export function dispatcherTopics(requestsTopic: string, dispatcher: Pick<DispatcherSettings, 'topics'>): { retry: string; delivered: string } {
  return { retry: dispatcher.topics.retry ?? `${requestsTopic}.retry`, delivered: dispatcher.topics.delivered ?? `${requestsTopic}.delivered` };
}

/** The retry consumer's group: its own, so its lag (records waiting for their time) is not the dispatcher's backlog. */
export function retryGroupOf(dispatcherGroup: string): string {
  return `${dispatcherGroup}-retry`;
}
