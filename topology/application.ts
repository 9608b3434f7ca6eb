/**
 * The application topology of DESIGN.md:
 *
 *   tracking.events ⋈ table(tracking.cookies) → executor → tracking.requests (one record per request)
 *                                                         → tracking.cookies (the new jar, via the store)
 *                                               executor failure (after retries) → tracking.events.dlq
 *
 * The executor is injected: the types below are this module's own minimal view of the browser
 * executor's contract (DESIGN.md "Contracts"), so the topology neither depends on processors/ nor
 * needs Chromium to be described or tested.
 */
import { topology, type Topology } from './dsl.ts';

export interface PageViewEvent {
  eventId: string;
  userId: string;
  timestamp: string;
  type?: string;
  [field: string]: unknown;
}

export interface JarCookie {
  name: string;
  value: string;
  domain: string;
  path: string;
  /** Seconds since the epoch, -1 for a session cookie. */
  expires: number;
  httpOnly: boolean;
  secure: boolean;
  sameSite: 'Strict' | 'Lax' | 'None';
}

export interface Jar {
  cookies: JarCookie[];
  /** origin → key → value */
  localStorage: Record<string, Record<string, string>>;
}

/** The value of tracking.cookies: the jar plus what the processor adds. */
export interface StoredJar extends Jar {
  /** 1 for the first jar of a user, +1 per executed event. */
  version: number;
  /** ISO 8601. */
  updatedAt: string;
}

export interface CapturedRequest {
  partner: string | null;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | null;
  bodyEncoding?: 'utf8' | 'base64';
  transport: string;
}

export interface TrackerOutcome {
  partner: string;
  status: 'ok' | 'timeout' | 'error' | 'skipped';
  durationMs: number;
  error: string | null;
}

export interface ExecutionResult {
  requests: CapturedRequest[];
  jar: Jar;
  trackers: TrackerOutcome[];
}

/** Runs one event in the emulated browser with the user's jar (null for a first visit). */
export type Executor = (event: PageViewEvent, jar: StoredJar | null, signal: AbortSignal) => Promise<ExecutionResult>;

/** Value of tracking.requests: the captured request plus what the dispatcher needs. */
export interface RequestRecord extends CapturedRequest {
  eventId: string;
  userId: string;
  /** `<eventId>:<partner>:<n>`: stable across reprocessing of the event, so the dispatcher can dedupe. */
  idempotencyKey: string;
}

/** Value of tracking.events.dlq for an event the executor failed on. */
export interface EventDeadLetter {
  reason: 'executor-failed';
  error: string;
  attempts: number;
  event: PageViewEvent;
}

export interface ApplicationTopics {
  events: string;
  cookies: string;
  requests: string;
  eventsDlq: string;
}

export const DEFAULT_TOPICS: Readonly<ApplicationTopics> = Object.freeze({
  events: 'tracking.events',
  cookies: 'tracking.cookies',
  requests: 'tracking.requests',
  eventsDlq: 'tracking.events.dlq',
});

export const DEFAULT_COOKIE_STORE = 'cookie-jars';
export const EXECUTOR_NODE = 'executor';

export interface ApplicationTopologyOptions {
  executor: Executor;
  topics?: Partial<ApplicationTopics>;
  /** Name of the jar store (and of its directory under the state dir). */
  cookieStore?: string;
  /** Simultaneous executions (browser pages) per instance. Default 4. */
  concurrency?: number;
  /**
   * Bound on one attempt; a timed-out attempt is aborted (its signal) and counts as a failure.
   * Default none: the partners' own timeoutMs bound the page run inside the executor.
   */
  executorTimeoutMs?: number;
  /** Extra attempts after an executor failure before the event goes to the DLQ. Default 1. */
  retries?: number;
  /** Clock for `updatedAt`. Default Date.now. */
  now?: () => number;
}

type Outcome =
  | { ok: true; event: PageViewEvent; previous: StoredJar | null; result: ExecutionResult }
  | { ok: false; event: PageViewEvent; error: string; attempts: number };

export function applicationTopology(options: ApplicationTopologyOptions): Topology {
  const topics: ApplicationTopics = { ...DEFAULT_TOPICS, ...options.topics };
  const retries = options.retries ?? 1;
  const now = options.now ?? Date.now;
  const b = topology();

  const events = b.stream<PageViewEvent>(topics.events);
  const jars = b.table<StoredJar>(topics.cookies, options.cookieStore ?? DEFAULT_COOKIE_STORE);

  const outcomes = events
    .leftJoin(jars, (event, jar) => ({ event, jar }))
    .process<Outcome>(
      EXECUTOR_NODE,
      async ({ event, jar }, ctx) => {
        let lastError = '';
        let attempts = 0;
        while (attempts <= retries) {
          attempts += 1;
          try {
            const result = await attempt(options.executor, event, jar, ctx.signal, options.executorTimeoutMs);
            return { ok: true, event, previous: jar, result };
          } catch (err) {
            lastError = err instanceof Error ? err.message : String(err);
            // Shutting down: not the event's fault, let the record fail so it is processed again.
            if (ctx.signal.aborted) throw err;
          }
        }
        return { ok: false, event, error: lastError, attempts };
      },
      { concurrency: options.concurrency ?? 4, perKeyOrder: true },
    );

  const [executed, failed] = outcomes.branch([(o) => o.ok, (o) => !o.ok]) as [typeof outcomes, typeof outcomes];

  executed
    .flatMapValues((o) => {
      const done = executedOnly(o);
      return requestRecords(done.event, done.result.requests);
    })
    .to(topics.requests);

  executed
    .mapValues((o): StoredJar => {
      const done = executedOnly(o);
      return { ...done.result.jar, version: (done.previous?.version ?? 0) + 1, updatedAt: new Date(now()).toISOString() };
    })
    .toTable(jars);

  failed
    .mapValues((o): EventDeadLetter => {
      if (o.ok) throw new Error('branch invariant: an executed outcome reached the dead-letter branch');
      return { reason: 'executor-failed', error: o.error, attempts: o.attempts, event: o.event };
    })
    .to(topics.eventsDlq);

  return b.build();
}

/** One executor call, aborted after `timeoutMs` (or with the step's own signal). */
async function attempt(
  executor: Executor,
  event: PageViewEvent,
  jar: StoredJar | null,
  parent: AbortSignal,
  timeoutMs: number | undefined,
): Promise<ExecutionResult> {
  if (timeoutMs === undefined) return executor(event, jar, parent);
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      executor(event, jar, controller.signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const err = new Error(`executor attempt took more than ${timeoutMs} ms`);
          reject(err);
          controller.abort(err);
        }, timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    parent.removeEventListener('abort', onAbort);
  }
}

// The branch predicates guarantee it; the check keeps a wrong edit from writing a null jar (a delete).
function executedOnly(o: Outcome): Extract<Outcome, { ok: true }> {
  if (!o.ok) throw new Error('branch invariant: a failed outcome reached the executed branch');
  return o;
}

function requestRecords(event: PageViewEvent, requests: readonly CapturedRequest[]): RequestRecord[] {
  const perPartner = new Map<string, number>();
  return requests.map((request) => {
    const partner = request.partner ?? '-';
    const n = perPartner.get(partner) ?? 0;
    perPartner.set(partner, n + 1);
    return { ...request, eventId: event.eventId, userId: event.userId, idempotencyKey: `${event.eventId}:${partner}:${n}` };
  });
}

/** The executor `topology describe` uses: describing never executes anything. */
export const describeOnlyExecutor: Executor = () =>
  Promise.reject(new Error('no executor wired: this topology instance is for describe() only'));
