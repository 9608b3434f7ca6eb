/**
 * The console's memory (DESIGN.md "The console"): the last `size` events with what the executor
 * and the dispatcher reported about them (runtime/roles/observers.ts), per-partner counters per
 * minute, and the hosts tags tried to reach that no partner declares. Bounded in events, minutes
 * and hosts; everything an operator sees is computed from here on demand.
 */
import type { DeliveryAttempt, DeliveryOutcome, ExecuteResult, PageViewEvent, PartnerConfig, RequestRecord, StoredJar, TrackerOutcome } from '../../core/contracts/index.ts';
import { TagstreamError } from '../../core/errors.ts';
import { indexPartners, routeRequest, type PartnerIndex } from '../../processors/dispatcher/index.ts';
import { maskIp } from '../roles/collector/client-ip.ts';
import type { ExecutionReport } from '../roles/observers.ts';
import { decodeRequest, type DecodedRequest } from './decode.ts';
import { diffJars, type JarDiff } from './jar-diff.ts';

export interface ConsoleBufferOptions {
  /** Events kept; the oldest goes first. */
  size: number;
  partners: readonly PartnerConfig[];
  /** Minutes of counters kept. Default 15. */
  minutes?: number;
  /** Distinct undeclared hosts kept. Default 200. */
  maxHosts?: number;
  now?: () => number;
}

/** What the dispatcher decided for one captured request, as the console shows it. */
export interface DispatchView {
  state: 'pending' | 'delivered' | 'retry' | 'dead' | 'not-sent';
  status?: number;
  reason?: string;
  error?: string;
  notBefore?: string;
  attempts: DeliveryAttempt[];
  at: string;
}

export interface EventSummary {
  /** The trace's id: the eventId, with `~replay-<requestedAt>` for a replayed run of it. */
  id: string;
  eventId: string;
  userId: string;
  type: string;
  at: string;
  url: string;
  title?: string | null;
  replayed: boolean;
  error?: string;
  partners: { partner: string; status: TrackerOutcome['status'] }[];
  requests: number;
  delivered: number;
  failed: number;
}

export interface RequestView {
  key: string;
  partner: string | null;
  method: string;
  url: string;
  transport: string;
  decoded: DecodedRequest;
  bodyBytes: number;
  dispatch: DispatchView;
}

export interface EventTrace {
  id: string;
  eventId: string;
  userId: string;
  type: string;
  at: string;
  replayed: boolean;
  visitor: {
    page: PageViewEvent['page'];
    device: PageViewEvent['device'];
    consent: PageViewEvent['consent'];
    /** Truncated (IPv4 /24, IPv6 /48), as the dispatcher forwards it by default. */
    ip?: string;
    data: PageViewEvent['data'];
  };
  execution: { startedAt: string; durationMs: number; attempts: number; error?: { code?: string; message: string } };
  partners: (TrackerOutcome & { requests: number })[];
  requests: RequestView[];
  jar: { before: Pick<StoredJar, 'cookies' | 'localStorage'> | null; after: ExecuteResult['jar'] | null; diff: JarDiff };
}

export interface PartnerCounts {
  ok: number;
  error: number;
  timeout: number;
  skipped: number;
  captured: number;
  delivered: number;
  retry: number;
  dead: number;
  notSent: number;
}

export interface CountersView {
  minutes: number;
  /** Minute starts (ISO), oldest first. */
  buckets: string[];
  partners: { partner: string; total: PartnerCounts; perMinute: PartnerCounts[] }[];
}

export interface HostView {
  host: string;
  partner: string | null;
  reason: string;
  count: number;
  lastSeen: string;
  example: string;
}

interface Stored {
  event: PageViewEvent;
  jarBefore: StoredJar | null;
  startedAt: number;
  durationMs: number;
  attempts: number;
  result?: ExecuteResult;
  error?: { code?: string; message: string };
  keys: string[];
  dispatch: Map<string, DispatchView>;
}

const emptyCounts = (): PartnerCounts => ({ ok: 0, error: 0, timeout: 0, skipped: 0, captured: 0, delivered: 0, retry: 0, dead: 0, notSent: 0 });
const MINUTE = 60_000;
const MAX_URL_EXAMPLE = 300;

export class ConsoleBuffer {
  readonly #size: number;
  readonly #minutes: number;
  readonly #maxHosts: number;
  readonly #now: () => number;
  readonly #partners: PartnerIndex;
  /** Insertion order = age: the first key is the oldest event. */
  readonly #events = new Map<string, Stored>();
  /** minute index → partner → counts */
  readonly #counters = new Map<number, Map<string, PartnerCounts>>();
  readonly #hosts = new Map<string, HostView>();

  constructor(options: ConsoleBufferOptions) {
    this.#size = options.size;
    this.#minutes = options.minutes ?? 15;
    this.#maxHosts = options.maxHosts ?? 200;
    this.#now = options.now ?? Date.now;
    this.#partners = indexPartners(options.partners);
  }

  get size(): number {
    return this.#events.size;
  }

  /** The processor's observer: one executor attempt on one event. */
  recordExecution(report: ExecutionReport): void {
    const { event } = report;
    const id = traceId(event.eventId, event.replay?.requestedAt);
    const previous = this.#events.get(id);
    this.#events.delete(id); // re-inserted last: a retried event is the newest
    const stored: Stored = {
      event,
      jarBefore: report.jarBefore,
      startedAt: report.startedAt,
      durationMs: report.durationMs,
      attempts: (previous?.attempts ?? 0) + 1,
      keys: [],
      dispatch: previous?.dispatch ?? new Map(),
      ...(report.result === undefined ? {} : { result: report.result }),
      ...(report.error === undefined ? {} : { error: errorView(report.error) }),
    };
    if (report.result !== undefined) {
      stored.keys = idempotencyKeys(event.eventId, report.result);
      const counts = this.#bucket();
      for (const t of report.result.trackers) partnerCounts(counts, t.partner)[t.status] += 1;
      report.result.requests.forEach((r) => {
        partnerCounts(counts, r.partner ?? '-').captured += 1;
        const route = routeRequest(this.#partners, r.partner, r.url);
        if (!route.ok && route.reason !== 'invalid-url' && route.reason !== 'unknown-partner') this.#host(route.host, route.partner, route.reason, r.url);
      });
    }
    this.#events.set(id, stored);
    while (this.#events.size > this.#size) {
      const oldest = this.#events.keys().next().value;
      if (oldest === undefined) break;
      this.#events.delete(oldest);
    }
  }

  /** The dispatcher's observer: one delivery decision. */
  recordDelivery(request: RequestRecord, outcome: DeliveryOutcome): void {
    const counts = partnerCounts(this.#bucket(), outcome.partner ?? request.partner ?? '-');
    if (outcome.kind === 'not-sent') counts.notSent += 1;
    else counts[outcome.kind] += 1;
    if (outcome.kind === 'not-sent' && outcome.reason === 'egress-denied') this.#host(outcome.host, outcome.partner, outcome.reason, request.url);
    const stored = this.#events.get(traceId(request.eventId, request.replayedAt));
    if (stored === undefined) return; // older than the buffer, or executed by another process
    stored.dispatch.set(request.idempotencyKey, dispatchView(outcome, new Date(this.#now()).toISOString()));
  }

  /** The newest first. */
  list(limit = 100): EventSummary[] {
    const out: EventSummary[] = [];
    for (const [id, s] of [...this.#events.entries()].reverse()) {
      if (out.length >= limit) break;
      const views = [...s.dispatch.values()];
      out.push({
        id,
        eventId: s.event.eventId,
        userId: s.event.userId,
        type: s.event.type,
        at: s.event.timestamp,
        url: s.event.page.url,
        ...(s.event.page.title === undefined ? {} : { title: s.event.page.title }),
        replayed: s.event.replay !== undefined,
        ...(s.error === undefined ? {} : { error: s.error.message }),
        partners: (s.result?.trackers ?? []).map((t) => ({ partner: t.partner, status: t.status })),
        requests: s.result?.requests.length ?? 0,
        delivered: views.filter((v) => v.state === 'delivered').length,
        failed: views.filter((v) => v.state === 'dead' || v.state === 'not-sent').length,
      });
    }
    return out;
  }

  trace(id: string): EventTrace | undefined {
    const s = this.#events.get(id);
    if (s === undefined) return undefined;
    const { event, result } = s;
    const requests: RequestView[] = (result?.requests ?? []).map((r, i) => {
      const key = s.keys[i] ?? `${event.eventId}:?:${i}`;
      return {
        key,
        partner: r.partner,
        method: r.method,
        url: r.url,
        transport: r.transport,
        decoded: decodeRequest(r.url, r.body, r.bodyEncoding, headerValue(r.headers, 'content-type')),
        bodyBytes: r.body === null ? 0 : r.bodyEncoding === 'base64' ? Buffer.byteLength(r.body, 'base64') : Buffer.byteLength(r.body, 'utf8'),
        dispatch: s.dispatch.get(key) ?? { state: 'pending', attempts: [], at: new Date(s.startedAt + s.durationMs).toISOString() },
      };
    });
    const before = s.jarBefore === null ? null : { cookies: s.jarBefore.cookies, localStorage: s.jarBefore.localStorage };
    const after = result?.jar ?? null;
    const ip = maskIp(event.client?.ip);
    return {
      id,
      eventId: event.eventId,
      userId: event.userId,
      type: event.type,
      at: event.timestamp,
      replayed: event.replay !== undefined,
      visitor: { page: event.page, device: event.device, consent: event.consent, data: event.data, ...(ip === undefined ? {} : { ip }) },
      execution: { startedAt: new Date(s.startedAt).toISOString(), durationMs: s.durationMs, attempts: s.attempts, ...(s.error === undefined ? {} : { error: s.error }) },
      partners: (result?.trackers ?? []).map((t) => ({ ...t, requests: (result?.requests ?? []).filter((r) => r.partner === t.partner).length })),
      requests,
      jar: { before, after, diff: after === null ? { cookies: [], localStorage: [], unchanged: 0 } : diffJars(before, after) },
    };
  }

  /** The event as the executor saw it (the replay action runs it again). */
  event(id: string): { event: PageViewEvent; jarBefore: StoredJar | null; result?: ExecuteResult } | undefined {
    const s = this.#events.get(id);
    return s === undefined ? undefined : { event: s.event, jarBefore: s.jarBefore, ...(s.result === undefined ? {} : { result: s.result }) };
  }

  /** The jar the visitor's most recent buffered page view left (what a replay starts from); undefined when none. */
  latestJar(userId: string): StoredJar | undefined {
    for (const s of [...this.#events.values()].reverse()) {
      if (s.event.userId !== userId || s.result === undefined || s.event.replay !== undefined) continue;
      return { ...s.result.jar, version: (s.jarBefore?.version ?? 0) + 1, updatedAt: new Date(s.startedAt + s.durationMs).toISOString() };
    }
    return undefined;
  }

  counters(): CountersView {
    const current = Math.floor(this.#now() / MINUTE);
    const minutes = Array.from({ length: this.#minutes }, (_, i) => current - this.#minutes + 1 + i);
    const names = new Set<string>(this.#partners.keys());
    for (const m of minutes) for (const p of this.#counters.get(m)?.keys() ?? []) names.add(p);
    return {
      minutes: this.#minutes,
      buckets: minutes.map((m) => new Date(m * MINUTE).toISOString()),
      partners: [...names].map((partner) => {
        const perMinute = minutes.map((m) => ({ ...(this.#counters.get(m)?.get(partner) ?? emptyCounts()) }));
        const total = emptyCounts();
        for (const c of perMinute) for (const k of Object.keys(total) as (keyof PartnerCounts)[]) total[k] += c[k];
        return { partner, total, perMinute };
      }),
    };
  }

  undeclaredHosts(): HostView[] {
    return [...this.#hosts.values()].sort((a, b) => b.count - a.count);
  }

  #bucket(): Map<string, PartnerCounts> {
    const minute = Math.floor(this.#now() / MINUTE);
    let bucket = this.#counters.get(minute);
    if (bucket === undefined) {
      bucket = new Map();
      this.#counters.set(minute, bucket);
      for (const m of this.#counters.keys()) if (m <= minute - this.#minutes) this.#counters.delete(m);
    }
    return bucket;
  }

  #host(host: string, partner: string | null, reason: string, url: string): void {
    const key = `${partner ?? '-'}\u0000${host}\u0000${reason}`;
    const at = new Date(this.#now()).toISOString();
    const known = this.#hosts.get(key);
    if (known !== undefined) {
      known.count += 1;
      known.lastSeen = at;
      return;
    }
    // Tags can reach any host: past the bound, new hosts are not tracked (the metric says "other").
    if (this.#hosts.size >= this.#maxHosts) return;
    this.#hosts.set(key, { host, partner, reason, count: 1, lastSeen: at, example: url.length > MAX_URL_EXAMPLE ? `${url.slice(0, MAX_URL_EXAMPLE)}…` : url });
  }
}

/** A replayed run of an event is its own trace: the first run stays visible beside it. */
function traceId(eventId: string, replayedAt: string | undefined): string {
  return replayedAt === undefined ? eventId : `${eventId}~replay-${replayedAt}`;
}

function partnerCounts(bucket: Map<string, PartnerCounts>, partner: string): PartnerCounts {
  let c = bucket.get(partner);
  if (c === undefined) {
    c = emptyCounts();
    bucket.set(partner, c);
  }
  return c;
}

/**
 * The idempotency keys the processor gives the event's requests (topology/app/processor.ts
 * `requestRecords`: `<eventId>:<partner or ->:<n>`, n counting each partner's requests in capture
 * order): how a delivery finds its captured request here.
 */
export function idempotencyKeys(eventId: string, result: Pick<ExecuteResult, 'requests'>): string[] {
  const perPartner = new Map<string, number>();
  return result.requests.map((r) => {
    const partner = r.partner ?? '-';
    const n = perPartner.get(partner) ?? 0;
    perPartner.set(partner, n + 1);
    return `${eventId}:${partner}:${n}`;
  });
}

function dispatchView(o: DeliveryOutcome, at: string): DispatchView {
  switch (o.kind) {
    case 'delivered':
      return { state: 'delivered', status: o.status, attempts: o.attempts, at };
    case 'retry':
      return { state: 'retry', notBefore: o.notBefore, attempts: o.attempts, at, ...lastStatus(o.attempts) };
    case 'dead':
      return { state: 'dead', reason: o.reason, error: o.error, attempts: o.attempts, at, ...lastStatus(o.attempts) };
    case 'not-sent':
      return { state: 'not-sent', reason: `${o.reason} (${o.host})`, attempts: [], at };
  }
}

function lastStatus(attempts: DeliveryAttempt[]): { status?: number } {
  const s = attempts[attempts.length - 1]?.status;
  return s === undefined ? {} : { status: s };
}

function errorView(error: unknown): { code?: string; message: string } {
  if (error instanceof TagstreamError) return { code: error.code, message: error.message };
  return { message: error instanceof Error ? error.message : String(error) };
}

function headerValue(headers: Record<string, string>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}
