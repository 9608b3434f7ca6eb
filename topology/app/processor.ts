/**
 * The processor's topology (DESIGN.md "Data flow", "Topics"):
 *
 *   tracking.events ─ validate-record ─ join-cookie-jar ─ route-record ┬ page-views ─ execute-tags ─ execution-outcome ┬ executed ┬ captured-requests → tracking.requests
 *            (table cookie-jars ⇐ tracking.cookies)                    │                                               │          └ live-views-only ─ next-jar → write-jar → tracking.cookies
 *                                                                      │                                               └ failed ─ executor-dead-letter → tracking.events.dlq
 *                                                                      ├ erasures ─ erase-jar → write-erased-jar → tracking.cookies (tombstone)
 *                                                                      └ jar-merges ─ merge-jar → write-merged-jar → tracking.cookies
 *
 * Every record of a visitor (page view or control record) goes through the same per-key lane and
 * the same store/changelog path, so a checkpoint never sees a half-applied jar and an event never
 * runs with one. A record that is not a valid event or control record fails `validate-record`
 * with ERR_INVALID_INPUT, which the stream runtime dead-letters at once (never retried).
 *
 * A replayed page view (`event.replay`, written by the `replay` command, docs/replay.md) takes the
 * same path with two differences: only the partners it names keep their requests (tagged
 * `replayedAt`, same idempotency keys as the first run), and `live-views-only` keeps the jar it
 * produced out of the store: a browser never lives a past page view again.
 *
 * The executor is injected (processors/executor in production, fakes in tests): the topology
 * neither depends on processors/ nor needs Chromium to be described or tested.
 */
import { hasCode } from '../../core/errors.ts';
import { retrying, withTimeout } from '../../core/async.ts';
import {
  DEFAULT_JAR_BUDGET,
  enforceJarBudget,
  eventDeadLetter,
  mergeCookies,
  parseEventsTopicValue,
  type CapturedRequest,
  type EraseRecord,
  type EventDeadLetter,
  type EventsTopicValue,
  type ExecuteResult,
  type JarBudget,
  type JarMergeRecord,
  type PageViewEvent,
  type RequestRecord,
  type StoredJar,
} from '../../core/contracts/index.ts';
import { InvalidInputError, RecordTooLargeError } from '../../core/errors.ts';
import { topology, type Topology } from '../dsl.ts';

/** Runs one event in the emulated browser with the visitor's jar (null for a first visit). */
export type Executor = (event: PageViewEvent, jar: StoredJar | null, signal: AbortSignal) => Promise<ExecuteResult>;

export interface ProcessorTopics {
  events: string;
  cookies: string;
  requests: string;
  eventsDlq: string;
}

export const DEFAULT_PROCESSOR_TOPICS: Readonly<ProcessorTopics> = Object.freeze({
  events: 'tracking.events',
  cookies: 'tracking.cookies',
  requests: 'tracking.requests',
  eventsDlq: 'tracking.events.dlq',
});

export const DEFAULT_COOKIE_STORE = 'cookie-jars';
/** The name of the step that runs the partners' tags (its concurrency is the browser tabs). */
export const EXECUTOR_NODE = 'execute-tags';

export interface ProcessorTopologyOptions {
  executor: Executor;
  topics?: Partial<ProcessorTopics>;
  /** Name of the jar store (and of its directory under the state dir). */
  cookieStore?: string;
  /** Simultaneous executions (browser pages) per instance. Default 4. */
  concurrency?: number;
  /**
   * Bound on one attempt; a timed-out attempt is aborted (its signal) and counts as a failure.
   * Default none: the partners' own timeoutMs bound the page run inside the executor.
   */
  executorTimeoutMs?: number;
  /**
   * Extra attempts after an executor failure before the event goes to the DLQ. Default 1. Not
   * applied to ERR_EXECUTOR_FAILED: the pool already retried that one (docs/processor.md "Retries").
   */
  retries?: number;
  /** First delay between attempts (exponential with jitter after it). Default 50 ms. */
  retryDelayMs?: number;
  /** What one visitor's jar may hold (core/contracts/jar-budget.ts); every stored jar is within it. */
  jarBudget?: JarBudget;
  /** A captured request with a larger body is not published: the events DLQ says why. Default 512 KiB. */
  maxRequestBodyBytes?: number;
  /** Clock for `updatedAt` and dead letters. Default Date.now. */
  now?: () => number;
}

export const DEFAULT_MAX_REQUEST_BODY_BYTES = 512 * 1024;

type Routed = EventsTopicValue & { jar: StoredJar | null };
type Outcome =
  | { ok: true; event: PageViewEvent; previous: StoredJar | null; result: ExecuteResult }
  | { ok: false; event: PageViewEvent; error: unknown; attempts: number };

export function processorTopology(options: ProcessorTopologyOptions): Topology {
  const topics: ProcessorTopics = { ...DEFAULT_PROCESSOR_TOPICS, ...options.topics };
  const now = options.now ?? Date.now;
  const store = options.cookieStore ?? DEFAULT_COOKIE_STORE;
  const budget = options.jarBudget ?? DEFAULT_JAR_BUDGET;
  const maxBody = options.maxRequestBodyBytes ?? DEFAULT_MAX_REQUEST_BODY_BYTES;
  const b = topology();

  const records = b.stream<unknown>(topics.events, { name: 'events-source' });
  const jars = b.table<StoredJar>(topics.cookies, store, { name: 'cookie-jar-table', sourceName: 'cookies-source' });

  const [pageViews, erasures, merges] = records
    .mapValues((value, ctx) => validateRecord(value, ctx.key), { name: 'validate-record' })
    .leftJoin(jars, (value, jar): Routed => ({ ...value, jar }), { name: 'join-cookie-jar' })
    .branch([(r) => r.kind === 'event', (r) => r.kind === 'erase', (r) => r.kind === 'jar-merge'], { name: 'route-record', childNames: ['page-views', 'erasures', 'jar-merges'] }) as [
    ReturnType<typeof records.mapValues<Routed>>,
    ReturnType<typeof records.mapValues<Routed>>,
    ReturnType<typeof records.mapValues<Routed>>,
  ];

  const outcomes = pageViews.process<Outcome>(
    EXECUTOR_NODE,
    async (routed, ctx) => {
      if (routed.kind !== 'event') throw new Error('branch invariant: a control record reached execute-tags');
      return execute(options, routed.event, routed.jar, ctx.signal);
    },
    { concurrency: options.concurrency ?? 4, perKeyOrder: true },
  );
  const [executed, failed] = outcomes.branch([(o) => o.ok, (o) => !o.ok], { name: 'execution-outcome', childNames: ['executed', 'failed'] }) as [typeof outcomes, typeof outcomes];

  executed
    .flatMapValues((o) => requestRecords(executedOnly(o)).filter((r) => bodyBytes(r) <= maxBody), { name: 'captured-requests' })
    .to(topics.requests, { name: 'requests-sink' });
  // A body over the limit would make a record the requests topic may refuse, and no partner
  // endpoint expects megabytes from a tag: the request is not published, the DLQ says so.
  executed
    .flatMapValues((o, ctx): EventDeadLetter[] => {
      const done = executedOnly(o);
      return requestRecords(done)
        .filter((r) => bodyBytes(r) > maxBody)
        .map((r) =>
          eventDeadLetter({
            reason: 'output-too-large',
            error: new RecordTooLargeError(topics.requests, bodyBytes(r), maxBody, {
              subject: `the body of request ${r.idempotencyKey} (partner ${r.partner ?? 'unattributed'}, ${r.method} ${hostOf(r.url)})`,
              limitName: 'limits.requestBodyBytes',
              partner: r.partner,
              idempotencyKey: r.idempotencyKey,
            }),
            attempts: 1,
            source: { topic: ctx.topic, partition: ctx.partition, offset: ctx.offset, timestamp: ctx.timestamp },
            value: JSON.stringify(done.event),
            now,
          }),
        );
    }, { name: 'oversize-requests' })
    .to(topics.eventsDlq, { name: 'oversize-requests-dlq-sink' });
  executed
    .filter((o) => !(o.ok && o.event.replay !== undefined), { name: 'live-views-only' })
    .mapValues((o): StoredJar => {
      const done = executedOnly(o);
      // The executor keeps its jars within the budget; this holds it for any executor.
      const { jar } = enforceJarBudget(done.result.jar, budget);
      return { ...jar, version: (done.previous?.version ?? 0) + 1, updatedAt: new Date(now()).toISOString() };
    }, { name: 'next-jar' })
    .toTable(jars, { name: 'write-jar', sinkName: 'jar-changelog-sink' });
  failed
    .mapValues((o, ctx): EventDeadLetter => {
      if (o.ok) throw new Error('branch invariant: an executed outcome reached the dead-letter branch');
      return eventDeadLetter({
        reason: 'executor-failed',
        error: o.error,
        attempts: o.attempts,
        source: { topic: ctx.topic, partition: ctx.partition, offset: ctx.offset, timestamp: ctx.timestamp },
        value: JSON.stringify(o.event),
        now,
      });
    }, { name: 'executor-dead-letter' })
    .to(topics.eventsDlq, { name: 'events-dlq-sink' });

  // An erasure empties the jar: a tombstone in the store and on the compacted changelog.
  erasures.mapValues((): StoredJar | null => null, { name: 'erase-jar' }).toTable(jars, { name: 'write-erased-jar', sinkName: 'erased-jar-changelog-sink' });
  merges
    .mapValues((r): StoredJar => {
      if (r.kind !== 'jar-merge') throw new Error('branch invariant: not a jar-merge record');
      return mergedJar(r.jar, r.record, now(), budget);
    }, { name: 'merge-jar' })
    .toTable(jars, { name: 'write-merged-jar', sinkName: 'merged-jar-changelog-sink' });

  return b.build();
}

/** The whole record checked before anything runs; the key is the visitor (DESIGN.md "Topics"). */
function validateRecord(value: unknown, key: string | null): EventsTopicValue {
  if (key === null) throw new InvalidInputError('record key', 'must be the visitor id (userId); the record has none');
  const parsed = parseEventsTopicValue(value);
  if (parsed.kind === 'event' && parsed.event.userId !== key) {
    throw new InvalidInputError('event.userId', 'differs from the record key (records of tracking.events are keyed by userId)');
  }
  return parsed;
}

/** The executor's attempts: bounded by `retries`, each by `executorTimeoutMs`; failures become an outcome. */
async function execute(options: ProcessorTopologyOptions, event: PageViewEvent, jar: StoredJar | null, signal: AbortSignal): Promise<Outcome> {
  let attempts = 0;
  let poolRuns = 0;
  const policy = retrying({
    maxAttempts: (options.retries ?? 1) + 1,
    initialDelayMs: options.retryDelayMs ?? 50,
    maxDelayMs: 2_000,
    // ERR_EXECUTOR_FAILED comes after the pool's own retry; a shutdown is not the event's fault.
    retryable: (error) => !hasCode(error, 'ERR_EXECUTOR_FAILED') && !signal.aborted,
  });
  try {
    const result = await policy.execute(() => {
      attempts += 1;
      const run = (s: AbortSignal): Promise<ExecuteResult> => options.executor(event, jar, s);
      return options.executorTimeoutMs === undefined ? run(signal) : withTimeout('executor attempt', options.executorTimeoutMs, run, signal);
    });
    return { ok: true, event, previous: jar, result };
  } catch (error) {
    // Shutting down: let the record fail so that it is processed again by the next owner.
    if (signal.aborted) throw error;
    if (hasCode(error, 'ERR_EXECUTOR_FAILED') && typeof error.context.attempts === 'number') poolRuns = error.context.attempts;
    return { ok: false, event, error, attempts: Math.max(attempts, poolRuns) };
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'an unparsable URL';
  }
}

function bodyBytes(r: RequestRecord): number {
  if (r.body === null) return 0;
  return r.bodyEncoding === 'base64' ? Buffer.byteLength(r.body, 'base64') : Buffer.byteLength(r.body, 'utf8');
}

// The branch predicates guarantee it; the check keeps a wrong edit from writing a null jar (a delete).
function executedOnly(o: Outcome): Extract<Outcome, { ok: true }> {
  if (!o.ok) throw new Error('branch invariant: a failed outcome reached the executed branch');
  return o;
}

function requestRecords(done: Extract<Outcome, { ok: true }>): RequestRecord[] {
  return eventRequestRecords(done.event, done.result);
}

/**
 * What the processor publishes on the requests topic for one executed event (also `replay
 * --dry-run`): the event's requests with their idempotency keys `<eventId>:<partner>:<n>`: n counts each
 * partner's own requests in capture order, so a partner's keys do not depend on which other
 * partners ran (a replay for some partners only gets the keys of the first run). A replay keeps
 * only the requests of the partners it names; unattributed ones (`-`) are numbered across every
 * partner that ran, so a partial replay cannot match them to the first run and drops them.
 */
export function eventRequestRecords(event: PageViewEvent, result: Pick<ExecuteResult, 'requests'>): RequestRecord[] {
  const replay = event.replay;
  const only = replay?.partners === null || replay === undefined ? null : new Set(replay.partners);
  const perPartner = new Map<string, number>();
  const visitor = {
    ...(event.client?.ip === undefined ? {} : { ip: event.client.ip }),
    userAgent: event.device.userAgent,
  };
  return result.requests
    .map((request: CapturedRequest): RequestRecord => {
      const partner = request.partner ?? '-';
      const n = perPartner.get(partner) ?? 0;
      perPartner.set(partner, n + 1);
      return {
        ...request,
        eventId: event.eventId,
        userId: event.userId,
        idempotencyKey: `${event.eventId}:${partner}:${n}`,
        eventTimestamp: event.timestamp,
        ...(replay === undefined ? {} : { replayedAt: replay.requestedAt }),
        visitor,
      };
    })
    .filter((r) => only === null || (r.partner !== null && only.has(r.partner)));
}

/** Partner cookies from an HTTP response, stored as the browser would (DESIGN.md "The dispatcher"). */
function mergedJar(previous: StoredJar | null, record: JarMergeRecord, nowMs: number, budget: JarBudget): StoredJar {
  const base = previous ?? { cookies: [], localStorage: {}, version: 0, updatedAt: new Date(nowMs).toISOString() };
  const { jar: merged } = enforceJarBudget(mergeCookies(base, record.cookies, Math.floor(nowMs / 1000)), budget);
  return { ...merged, version: base.version + 1, updatedAt: new Date(nowMs).toISOString() };
}

export type { EraseRecord, JarMergeRecord };

/** The executor `topology describe` uses: describing never executes anything. */
export const describeOnlyExecutor: Executor = () => Promise.reject(new Error('no executor wired: this topology instance is for describe() only'));
