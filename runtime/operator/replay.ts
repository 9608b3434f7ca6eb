/**
 * `replay --from T --to T [--partner X …] [--dry-run]` (docs/replay.md), without the CLI around it.
 *
 * - The range's offsets per partition of tracking.events come from ListOffsets by time; the records
 *   are read outside any consumer group. Control records, events a replay published, duplicate
 *   eventIds and invalid values are skipped (counted).
 * - A replay re-publishes each page view to tracking.events with its key, its eventId and its
 *   timestamp, plus `replay: { partners, requestedAt }`. The processor runs it in the visitor's
 *   order with the visitor's current jar, for those partners only, publishes its requests with the
 *   first run's idempotency keys (so the dispatcher sends only what was not delivered), and does not
 *   store the jar it produced. With `wait`, it then waits for the processor group's commits to pass
 *   the replayed records and counts what they produced (requests, events dead-lettered).
 * - A dry run publishes nothing: each event runs in-process through the executor (dryRunEvent).
 */
import {
  parseEventDeadLetterValue,
  parseRequestRecordValue,
  runWithConcurrency,
} from './support.ts';
import type { PartnerConfig, ReplayMarker } from '../../core/contracts/index.ts';
import type { Settings } from '../config.ts';
import type { KafkaAdmin, KafkaClient, PartitionOffset, ProduceRecord } from '../kafka/types.ts';
import type { ExecutorPool } from '../roles/executor-adapter.ts';
import { dryRunEvent, type EventDryRun } from './dry-run.ts';
import { readCurrentJars, readOriginalRequests, rangeOffsets, scanRange, type RangeEvent, type RangeSkips } from './read.ts';
import { hasDifferences } from './request-diff.ts';
import type { TimeRange } from './time.ts';

/** What the command shows while it works: one phase at a time, with its total. */
export interface ReplayProgress {
  phase(name: string, total: number): void;
  advance(done: number): void;
}

export interface ReplayOptions {
  client: KafkaClient;
  settings: Pick<Settings, 'topics' | 'groups'>;
  range: TimeRange;
  /** The partners to replay; null = all. */
  partners: readonly string[] | null;
  dryRun: boolean;
  /** Dry run: the partner configurations and the executor that runs them. */
  partnerConfigs?: readonly PartnerConfig[];
  executor?: ExecutorPool;
  /** Dry run: events run at once (browser pages). Default 4. */
  concurrency?: number;
  /** Replay: wait for the processor to have processed the replayed events. Default true. */
  wait?: boolean;
  /** Replay: how long to wait for it. Default 10 minutes. */
  waitTimeoutMs?: number;
  progress?: ReplayProgress;
  now?: () => number;
  signal?: AbortSignal;
}

export interface PartnerTotals {
  /** Requests the replay produced (replay: published by the processor; dry run: would publish). */
  requests: number;
  /** Dry run: requests captured when the events first ran. */
  original?: number;
  added?: number;
  removed?: number;
  changed?: number;
  unchanged?: number;
}

export interface ReplayFailure {
  eventId: string;
  userId: string;
  error: string;
}

export interface ReplaySummary {
  mode: 'replay' | 'dry-run';
  from: string;
  to: string;
  partners: string[] | null;
  requestedAt: string;
  events: {
    /** Records of the range's offsets that were read. */
    records: number;
    /** Page views replayed (published, or run in the dry run). */
    replayed: number;
    skipped: RangeSkips;
  };
  perPartner: Record<string, PartnerTotals>;
  /** Dry run: added + removed + changed requests over every partner. */
  differences: number;
  failures: ReplayFailure[];
  /** Replay: whether the processor was seen to process every replayed event (null = not waited for). */
  processed: boolean | null;
  /** Dry run: the events whose requests differ (or that failed), each with its per-partner diff. */
  eventsWithDifferences: EventDryRun[];
}

export async function replay(options: ReplayOptions): Promise<ReplaySummary> {
  const now = options.now ?? Date.now;
  const marker: ReplayMarker = { partners: options.partners === null ? null : [...options.partners], requestedAt: new Date(now()).toISOString() };
  const { topics } = options.settings;
  const admin = await options.client.admin();
  try {
    const spans = await rangeOffsets(admin, topics.events, options.range);
    const summary: ReplaySummary = {
      mode: options.dryRun ? 'dry-run' : 'replay',
      from: new Date(options.range.fromMs).toISOString(),
      to: new Date(options.range.toMs).toISOString(),
      partners: marker.partners,
      requestedAt: marker.requestedAt,
      events: { records: 0, replayed: 0, skipped: { control: 0, replays: 0, duplicates: 0, invalid: 0 } },
      perPartner: {},
      differences: 0,
      failures: [],
      processed: null,
      eventsWithDifferences: [],
    };
    // Counted only when known: a replay that does not wait for the processor counts nothing.
    if (options.dryRun || options.wait !== false) for (const p of marker.partners ?? []) summary.perPartner[p] = { requests: 0 };
    if (options.dryRun) await dryRun(options, marker, spans, summary);
    else await republish(options, admin, marker, spans, summary);
    return summary;
  } finally {
    await admin.close();
  }
}

type Spans = Awaited<ReturnType<typeof rangeOffsets>>;

function totalRecords(spans: Spans): number {
  return spans.reduce((n, s) => n + (s.to - s.from), 0);
}

async function dryRun(options: ReplayOptions, marker: ReplayMarker, spans: Spans, summary: ReplaySummary): Promise<void> {
  const { executor, partnerConfigs } = options;
  if (executor === undefined || partnerConfigs === undefined) throw new Error('replay --dry-run needs the partner configurations and an executor');
  const { topics } = options.settings;
  const events: RangeEvent[] = [];
  options.progress?.phase('reading events', totalRecords(spans));
  summary.events.skipped = await scanRange(options.client, topics.events, spans, options.range, (batch, consumed) => {
    events.push(...batch);
    summary.events.records += consumed;
    options.progress?.advance(summary.events.records);
  });
  options.progress?.phase('reading jars and captured requests', events.length);
  const visitors = new Map(events.map((e) => [e.event.userId, e.partition]));
  const jars = await readCurrentJars(options.client, topics.cookies, visitors);
  const originals = await readOriginalRequests(options.client, topics.requests, new Set(events.map((e) => e.event.eventId)), options.range.fromMs);
  options.progress?.phase('running events (dry run)', events.length);
  let done = 0;
  await runWithConcurrency(events, options.concurrency ?? 4, async ({ event }) => {
    const result = await dryRunEvent({
      event,
      jar: jars.get(event.userId) ?? null,
      original: originals.get(event.eventId) ?? [],
      partners: partnerConfigs,
      only: marker.partners,
      executor,
      requestedAt: marker.requestedAt,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    summary.events.replayed += 1;
    if (result.error !== null) summary.failures.push({ eventId: event.eventId, userId: event.userId, error: result.error });
    for (const d of result.partners) {
      const t = (summary.perPartner[d.partner] ??= { requests: 0 });
      t.requests += d.after;
      t.original = (t.original ?? 0) + d.before;
      t.added = (t.added ?? 0) + d.added.length;
      t.removed = (t.removed ?? 0) + d.removed.length;
      t.changed = (t.changed ?? 0) + d.changed.length;
      t.unchanged = (t.unchanged ?? 0) + d.unchanged;
      summary.differences += d.added.length + d.removed.length + d.changed.length;
    }
    if (result.error !== null || result.partners.some(hasDifferences)) summary.eventsWithDifferences.push(result);
    done += 1;
    options.progress?.advance(done);
  });
  summary.eventsWithDifferences.sort((a, b) => a.timestamp.localeCompare(b.timestamp) || a.eventId.localeCompare(b.eventId));
}

async function republish(options: ReplayOptions, admin: KafkaAdmin, marker: ReplayMarker, spans: Spans, summary: ReplaySummary): Promise<void> {
  const { topics, groups } = options.settings;
  // Where the outputs stand before the replay: what comes after is this replay's (or live traffic's).
  const [requestsBefore, dlqBefore] = await Promise.all([admin.listEndOffsets(topics.requests), admin.listEndOffsets(topics.eventsDlq)]);
  const published = new Map<number, number[]>();
  const replayed = new Map<string, { userId: string }>();
  const producer = await options.client.producer();
  try {
    options.progress?.phase('publishing replayed events', totalRecords(spans));
    summary.events.skipped = await scanRange(options.client, topics.events, spans, options.range, async (batch, consumed) => {
      if (batch.length > 0) {
        const records: ProduceRecord[] = batch.map(({ event, raw }) => {
          // A replay is a first delivery again: an earlier redrive's marker does not carry over.
          const { redrive: _redrive, replay: _replay, ...value } = raw;
          return { topic: topics.events, key: event.userId, value: JSON.stringify({ ...value, replay: marker }) };
        });
        const metadata = await producer.send(records);
        for (const m of metadata) published.set(m.partition, [...(published.get(m.partition) ?? []), m.offset]);
        for (const { event } of batch) replayed.set(event.eventId, { userId: event.userId });
        summary.events.replayed += batch.length;
      }
      summary.events.records += consumed;
      options.progress?.advance(summary.events.records);
    });
  } finally {
    await producer.close();
  }
  if (options.wait === false) return;
  if (summary.events.replayed === 0) {
    summary.processed = true; // nothing to wait for
    return;
  }
  summary.processed = await waitForProcessor(options, admin, groups.processor, topics.events, published);
  await countOutputs(options, marker, requestsBefore, dlqBefore, replayed, summary);
}

/** Polls the processor group's commits until they pass every replayed record (or the wait ends). */
async function waitForProcessor(options: ReplayOptions, admin: KafkaAdmin, group: string, topic: string, published: Map<number, number[]>): Promise<boolean> {
  const total = [...published.values()].reduce((n, l) => n + l.length, 0);
  const deadline = (options.now ?? Date.now)() + (options.waitTimeoutMs ?? 600_000);
  options.progress?.phase('waiting for the processor', total);
  for (;;) {
    const committed = new Map((await admin.listCommittedOffsets(group, topic)).map((p: PartitionOffset) => [p.partition, p.offset]));
    let done = 0;
    for (const [partition, offsets] of published) {
      const c = committed.get(partition) ?? -1;
      done += offsets.filter((o) => o < c).length;
    }
    options.progress?.advance(done);
    if (done >= total) return true;
    if ((options.now ?? Date.now)() >= deadline || options.signal?.aborted === true) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The requests and dead letters that the replayed events produced (tagged with this replay's requestedAt). */
async function countOutputs(
  options: ReplayOptions,
  marker: ReplayMarker,
  requestsBefore: PartitionOffset[],
  dlqBefore: PartitionOffset[],
  replayed: Map<string, { userId: string }>,
  summary: ReplaySummary,
): Promise<void> {
  const { topics } = options.settings;
  const reader = options.client.reader();
  try {
    for (const { partition, offset } of requestsBefore) {
      await reader.read(topics.requests, partition, offset, (records) => {
        for (const r of records) {
          const request = parseRequestRecordValue(r.value);
          if (request?.replayedAt !== marker.requestedAt || !replayed.has(request.eventId)) continue;
          const t = (summary.perPartner[request.partner ?? '-'] ??= { requests: 0 });
          t.requests += 1;
        }
      });
    }
    for (const { partition, offset } of dlqBefore) {
      await reader.read(topics.eventsDlq, partition, offset, (records) => {
        for (const r of records) {
          const letter = parseEventDeadLetterValue(r.value);
          if (letter === undefined || letter.event?.replay?.requestedAt !== marker.requestedAt) continue;
          summary.failures.push({ eventId: letter.event.eventId, userId: replayed.get(letter.event.eventId)?.userId ?? letter.event.userId, error: `${letter.reason}: ${letter.error}` });
        }
      });
    }
  } finally {
    await reader.close();
  }
}
