/**
 * One event of `replay --dry-run` (docs/replay.md): the event runs through the browser executor
 * with the visitor's current jar, for the replayed partners, exactly as the processor would run a
 * replayed event, and the requests it would publish are compared with those captured when the
 * event first ran. Nothing is published, no jar is written.
 *
 * `dryRunEvent` is the unit (the console calls it for one event); `dryRunStoredEvent` reads the
 * visitor's jar and the original requests from the topics first.
 */
import {
  type PageViewEvent,
  type PartnerConfig,
  type ReplayMarker,
  type RequestRecord,
  type StoredJar,
  type TrackerOutcome,
} from '../../core/contracts/index.ts';
import { eventRequestRecords } from '../../topology/app/processor.ts';
import type { KafkaClient } from '../kafka/types.ts';
import { partitionForKey } from '../kafka/partitioner.ts';
import { poolExecutor, type ExecutorPool } from '../roles/executor-adapter.ts';
import { readCurrentJars, readOriginalRequests } from './read.ts';
import { diffRequests, type PartnerDiff } from './request-diff.ts';

export interface DryRunEventInput {
  /** The page view as it was read from tracking.events. */
  event: PageViewEvent;
  /** The visitor's current jar (latest record of tracking.cookies); null = none or erased. */
  jar: StoredJar | null;
  /** The requests captured when the event first ran (tracking.requests, records without `replayedAt`). */
  original: readonly RequestRecord[];
  /** The partner configurations as they are now (the ones the processor would run). */
  partners: readonly PartnerConfig[];
  /** The partners to replay; null or absent = all (their consent still applies). */
  only?: readonly string[] | null;
  /** The browser executor (processors/executor `createExecutor()`), or anything with its `execute`. */
  executor: ExecutorPool;
  signal?: AbortSignal;
  /** The replay's `requestedAt` (ISO 8601) put on the would-be requests; default now. */
  requestedAt?: string;
}

export interface EventDryRun {
  eventId: string;
  userId: string;
  /** The event's own timestamp. */
  timestamp: string;
  /** Per partner: added, removed and changed requests (endpoints, parameters, idempotency keys). */
  partners: PartnerDiff[];
  /** Each partner's outcome in this run (ok, error, timeout, skipped). */
  trackers: TrackerOutcome[];
  /** What a replay would publish to tracking.requests (same idempotency keys as the first run). */
  requests: RequestRecord[];
  /** The executor's failure, when the event could not run (then `partners` compares with nothing). */
  error: string | null;
}

/** Runs one event as a replay would and compares its requests with the original ones. Throws only when `signal` aborts. */
export async function dryRunEvent(input: DryRunEventInput): Promise<EventDryRun> {
  const only = input.only === undefined || input.only === null || input.only.length === 0 ? null : [...input.only];
  const marker: ReplayMarker = { partners: only, requestedAt: input.requestedAt ?? new Date().toISOString() };
  const event: PageViewEvent = { ...input.event, replay: marker };
  // The original side holds what a replay could match: a partial replay drops unattributed requests (processor.ts).
  const original = input.original.filter((r) => only === null || (r.partner !== null && only.includes(r.partner)));
  const base = { eventId: event.eventId, userId: event.userId, timestamp: event.timestamp };
  const signal = input.signal ?? new AbortController().signal;
  try {
    const result = await poolExecutor(input.executor, input.partners)(event, input.jar, signal);
    const requests = eventRequestRecords(event, result);
    return { ...base, partners: diffRequests(original, requests), trackers: result.trackers, requests, error: null };
  } catch (error) {
    if (signal.aborted) throw error;
    return { ...base, partners: diffRequests(original, []), trackers: [], requests: [], error: error instanceof Error ? error.message : String(error) };
  }
}

export interface DryRunStoredEventInput extends Omit<DryRunEventInput, 'jar' | 'original'> {
  client: KafkaClient;
  topics: { cookies: string; requests: string };
}

/**
 * `dryRunEvent` for an event of tracking.events: reads the visitor's current jar (its partition of
 * the co-partitioned cookie topic) and the requests captured since the event's timestamp.
 */
export async function dryRunStoredEvent(input: DryRunStoredEventInput): Promise<EventDryRun> {
  const { client, topics, event } = input;
  const admin = await client.admin();
  let partitions: number;
  try {
    partitions = (await admin.describeTopics([topics.cookies]))[0]!.partitions;
  } finally {
    await admin.close();
  }
  const jars = await readCurrentJars(client, topics.cookies, new Map([[event.userId, partitionForKey(event.userId, partitions)]]));
  // A minute of slack: the record's Kafka timestamp is the producer's, the event's the collector's.
  const since = Math.max(0, Date.parse(event.timestamp) - 60_000);
  const originals = await readOriginalRequests(client, topics.requests, new Set([event.eventId]), since);
  return dryRunEvent({ ...input, jar: jars.get(event.userId) ?? null, original: originals.get(event.eventId) ?? [] });
}
