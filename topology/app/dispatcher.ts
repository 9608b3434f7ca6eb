/**
 * The dispatcher's topology (DESIGN.md "The dispatcher", "Topics"):
 *
 *   tracking.requests ─ decode-request ─ join-delivered-keys ─ skip-delivered ─ deliver-request ─ delivery-outcome ┬ delivered ┬ record-delivered → write-delivered-key → tracking.requests.delivered
 *        (table delivered-keys ⇐ tracking.requests.delivered)                                                    │           └ partner-cookies → tracking.events (jar-merge)
 *                                                                                                                 ├ retry-later ─ retry-record → tracking.requests.retry
 *                                                                                                                 └ dead-letter ─ request-dead-letter → tracking.requests.dlq
 *
 * Records are keyed by the visitor (userId); the delivered keys of a visitor are one table row,
 * so a redelivered or replayed request meets its key in the store of its own partition (the
 * changelog is compacted and co-partitioned with tracking.requests). The key is written (store and
 * changelog, acknowledged) before the consumer commit of the record.
 *
 * A request to retry later leaves the topology: the retry consumer (runtime/roles/dispatcher-retry.ts,
 * a consumer group of its own) holds it until its `notBefore` and hands it back to
 * tracking.requests with its attempts (`retry`). So nothing here ever waits for a due time: a
 * partner that is down costs the others no slot, no buffer and no visitor lane.
 *
 * The delivery itself is injected (processors/dispatcher in production, fakes in tests): the
 * topology does not depend on processors/ and is described without a network.
 */
import { parseRequestRecord, type JarMergeRecord, type RequestDeadLetter, type RequestRecord } from '../../core/contracts/index.ts';
import type { Deliver, DeliveryOutcome, PendingDelivery, RetryRecord } from '../../core/contracts/delivery.ts';
import { topology, type Stream, type Topology } from '../dsl.ts';

export { retryRecordSchema, type Deliver, type DeliveryOutcome, type PendingDelivery, type RetryRecord } from '../../core/contracts/delivery.ts';

/** A visitor's delivered idempotency keys → epoch ms of the delivery (the table's value). */
export interface DeliveredKeys {
  keys: Record<string, number>;
}

export interface DispatcherTopics {
  requests: string;
  retry: string;
  delivered: string;
  requestsDlq: string;
  events: string;
}

export const DEFAULT_DISPATCHER_TOPICS: Readonly<DispatcherTopics> = Object.freeze({
  requests: 'tracking.requests',
  retry: 'tracking.requests.retry',
  delivered: 'tracking.requests.delivered',
  requestsDlq: 'tracking.requests.dlq',
  events: 'tracking.events',
});

export const DEFAULT_DELIVERED_STORE = 'delivered-keys';
export const DELIVER_NODE = 'deliver-request';

export interface DispatcherTopologyOptions {
  deliver: Deliver;
  topics?: Partial<DispatcherTopics>;
  deliveredStore?: string;
  /** Deliveries in flight per instance (the sum of the partners' bulkheads bounds it too). Default 256. */
  concurrency?: number;
  /** A delivered key is remembered this long (Meta's event_id window). Default 48 h. */
  dedupeWindowMs?: number;
  /** Keys kept per visitor (newest first); bounds the table row. Default 2000. */
  maxKeysPerVisitor?: number;
  /** Counts a request skipped as already delivered. */
  onDuplicate?: (request: RequestRecord) => void;
  now?: () => number;
}

type Joined = { pending: PendingDelivery; delivered: DeliveredKeys | null };
type Done = { joined: Joined; outcome: DeliveryOutcome };

export function dispatcherTopology(options: DispatcherTopologyOptions): Topology {
  const topics: DispatcherTopics = { ...DEFAULT_DISPATCHER_TOPICS, ...options.topics };
  const now = options.now ?? Date.now;
  const windowMs = options.dedupeWindowMs ?? 48 * 60 * 60 * 1000;
  const maxKeys = options.maxKeysPerVisitor ?? 2000;
  const b = topology();

  const delivered = b.table<DeliveredKeys>(topics.delivered, options.deliveredStore ?? DEFAULT_DELIVERED_STORE, { name: 'delivered-keys-table', sourceName: 'delivered-keys-source' });
  const done = b
    .stream<unknown>(topics.requests, { name: 'requests-source' })
    .mapValues((v): PendingDelivery => pendingOf(parseRequestRecord(v)), { name: 'decode-request' })
    .leftJoin(delivered, (pending, keys): Joined => ({ pending, delivered: keys }), { name: 'join-delivered-keys' })
    .filter((j) => {
      const at = j.delivered?.keys[j.pending.request.idempotencyKey];
      const duplicate = at !== undefined && now() - at < windowMs;
      if (duplicate) options.onDuplicate?.(j.pending.request);
      return !duplicate;
    }, { name: 'skip-delivered' })
    .process<Done>(DELIVER_NODE, async (joined, ctx) => ({ joined, outcome: await options.deliver(joined.pending, ctx.signal) }), { concurrency: options.concurrency ?? 256, perKeyOrder: true });

  const kinds = ['delivered', 'retry', 'dead'] as const;
  const [ok, retry, dead] = done.branch(kinds.map((k) => (d: Done) => d.outcome.kind === k), { name: 'delivery-outcome', childNames: ['delivered', 'retry-later', 'dead-letter'] }) as [Stream<Done>, Stream<Done>, Stream<Done>];

  ok.mapValues((d): DeliveredKeys => rememberKey(d.joined, now(), windowMs, maxKeys), { name: 'record-delivered' }).toTable(delivered, { name: 'write-delivered-key', sinkName: 'delivered-keys-changelog-sink' });
  ok.flatMapValues((d): JarMergeRecord[] => {
    const o = d.outcome;
    if (o.kind !== 'delivered' || o.cookies.length === 0) return [];
    return [{ type: 'jar-merge', cookies: o.cookies, partner: o.partner, eventId: d.joined.pending.request.eventId }];
  }, { name: 'partner-cookies' }).to(topics.events, { name: 'jar-merge-sink' });

  retry.mapValues((d): RetryRecord => {
    const o = d.outcome;
    if (o.kind !== 'retry') throw new Error('branch invariant: not a retry outcome');
    return { request: d.joined.pending.request, attempts: o.attempts, firstAttemptAt: o.firstAttemptAt, notBefore: o.notBefore, rounds: o.rounds };
  }, { name: 'retry-record' }).to(topics.retry, { name: 'retry-sink' });

  dead.mapValues((d, ctx): RequestDeadLetter => {
    const o = d.outcome;
    if (o.kind !== 'dead') throw new Error('branch invariant: not a dead outcome');
    const request = d.joined.pending.request;
    // A redriven request (`dlq redrive`) keeps the attempts of its earlier dead letters and says
    // how often it was redriven, so the command can stop at its --max-redrives.
    const redrive = request.redrive;
    return {
      reason: o.reason,
      code: o.code,
      error: o.error,
      source: { topic: ctx.topic, partition: ctx.partition, offset: ctx.offset, timestamp: ctx.timestamp },
      attempts: redrive === undefined ? o.attempts : [...redrive.attempts, ...o.attempts],
      request,
      value: Buffer.from(JSON.stringify(request), 'utf8').toString('base64'),
      valueEncoding: 'base64',
      failedAt: new Date(now()).toISOString(),
      partner: o.partner,
      ...(redrive === undefined ? {} : { redrives: redrive.count }),
    };
  }, { name: 'request-dead-letter' }).to(topics.requestsDlq, { name: 'requests-dlq-sink' });

  return b.build();
}

/** The visitor's keys with this one added; expired ones and the oldest beyond the bound dropped. */
function rememberKey(joined: Joined, nowMs: number, windowMs: number, maxKeys: number): DeliveredKeys {
  const entries = Object.entries(joined.delivered?.keys ?? {}).filter(([, at]) => nowMs - at < windowMs);
  entries.push([joined.pending.request.idempotencyKey, nowMs]);
  entries.sort((a, b) => b[1] - a[1]);
  return { keys: Object.fromEntries(entries.slice(0, maxKeys)) };
}

/**
 * A request as the delivery sees it: one the retry consumer handed back carries its attempts,
 * first attempt and rounds in `retry`; the request itself goes on without that marker (the retry
 * topic and the dead letters carry the attempts in their own fields).
 */
export function pendingOf(request: RequestRecord): PendingDelivery {
  const { retry, ...rest } = request;
  if (retry === undefined) return { request, attempts: [] };
  return { request: rest, attempts: retry.attempts, firstAttemptAt: retry.firstAttemptAt, rounds: retry.rounds };
}

/** The delivery `topology describe` uses: describing never sends anything. */
export const describeOnlyDeliver: Deliver = () => Promise.reject(new Error('no sender wired: this topology instance is for describe() only'));
