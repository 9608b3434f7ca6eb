/**
 * One captured request to its partner: route (captureHosts only), egress policy, the partner's
 * throttle, bulkhead and breaker, a few attempts in memory with backoff and jitter (seconds), then
 * the verdict the topology acts on: delivered (with the cookies the partner set), retry later
 * through the retry topic (`notBefore`), dead letter, or not sent at all (DESIGN.md "The dispatcher").
 *
 * The sender and the clock are injected, so every decision is tested without a network.
 */
import type { DeliveryAttempt, PartnerConfig, RequestRecord } from '../../core/contracts/index.ts';
import { untilAborted } from '../../core/async.ts';
import { DeliveryStatusError, hasCode, TagstreamError } from '../../core/errors.ts';
import type { Deliver, DeliveryOutcome } from '../../core/contracts/delivery.ts';
import { backoffDelay, classifyStatus, retryAfterMs, windowEnd, type Backoff } from './classify.ts';
import { cookiesFromResponse } from './cookies.ts';
import { deliveryBody, deliveryHeaders } from './headers.ts';
import { isBrokenCircuit, isBulkheadFull, type PartnerPolicies } from './policies.ts';
import { indexPartners, routeRequest } from './routing.ts';
import type { Sender, SendResponse } from './sender.ts';

export type { Deliver, DeliveryOutcome, NotSentReason, PendingDelivery } from '../../core/contracts/delivery.ts';

/** Explicit hooks for metrics and logs (the role wires prom-client and the logger). */
export interface DeliveryObserver {
  outcome?(partner: string | null, outcome: DeliveryOutcome): void;
  /** `seconds`: wall time of the attempt (the partner's latency, or how long until it failed). */
  attempt?(partner: string, attempt: DeliveryAttempt, seconds?: number): void;
  cookiesRejected?(partner: string, count: number): void;
}

export interface DeliverOptions {
  partners: readonly PartnerConfig[];
  sender: Sender;
  policies: PartnerPolicies;
  /** Attempts in memory before the retry topic. Default 3. */
  inMemoryAttempts?: number;
  /** Time the in-memory attempts (and a throttle wait) may take in all. Default 5 s. */
  inMemoryBudgetMs?: number;
  inMemoryBackoff?: Backoff;
  /** Delays through the retry topic (exponent: rounds). Default 30 s doubling up to 15 min. */
  topicBackoff?: Backoff;
  /** A 429 without Retry-After pauses the partner this long. Default 1 s. */
  defaultThrottleMs?: number;
  /** Attempts kept in the history of a request (the first and the latest). Default 20. */
  maxAttemptHistory?: number;
  now?: () => number;
  random?: () => number;
  observer?: DeliveryObserver;
}



type Tried = { response: SendResponse } | { error: unknown } | { throttled: true };

export function createDeliver(options: DeliverOptions): Deliver {
  const partners = indexPartners(options.partners);
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const inMemoryAttempts = options.inMemoryAttempts ?? 3;
  const budgetMs = options.inMemoryBudgetMs ?? 5_000;
  const memoryBackoff = options.inMemoryBackoff ?? { baseMs: 200, maxMs: 2_000 };
  const topicBackoff = options.topicBackoff ?? { baseMs: 30_000, maxMs: 15 * 60_000 };
  const history = options.maxAttemptHistory ?? 20;
  const observer = options.observer ?? {};

  const report = (partner: string | null, outcome: DeliveryOutcome): DeliveryOutcome => {
    observer.outcome?.(partner, outcome);
    return outcome;
  };

  return async (pending, signal) => {
    const { request } = pending;
    const route = routeRequest(partners, request.partner, request.url);
    if (!route.ok) return report(route.partner, { kind: 'not-sent', partner: route.partner, reason: route.reason, host: route.host });
    const partner = route.partner;
    const policy = options.policies.for(partner);
    const attempts = [...pending.attempts];
    const started = now();
    const firstAttemptMs = pending.firstAttemptAt === undefined ? started : Date.parse(pending.firstAttemptAt);
    const end = windowEnd(request.eventTimestamp, firstAttemptMs, partner.delivery.retryWindowMs);
    const deadline = started + budgetMs;
    const rounds = pending.rounds ?? 0;

    const later = (notBefore: number, last: DeliveryAttempt | undefined): DeliveryOutcome => {
      const kept = trimHistory(attempts, history);
      if (notBefore > end) {
        return report(partner.id, { kind: 'dead', partner: partner.id, reason: 'retry-window-exhausted', code: 'ERR_DISPATCH_WINDOW_SPENT', error: `retry window of ${partner.delivery.retryWindowMs} ms spent${last?.error === undefined ? '' : `; last: ${last.error}`}`, attempts: kept });
      }
      return report(partner.id, { kind: 'retry', partner: partner.id, attempts: kept, firstAttemptAt: new Date(firstAttemptMs).toISOString(), notBefore: new Date(notBefore).toISOString(), rounds: rounds + 1 });
    };

    let last: DeliveryAttempt | undefined;
    // `waits` bounds the loop when the partner keeps throttling (each wait is at least 1 ms).
    for (let i = 0, waits = 0; i < inMemoryAttempts && waits <= inMemoryAttempts * 4; ) {
      const wait = policy.throttledUntil() - now();
      if (wait > 0) {
        if (now() + wait > deadline) return later(policy.throttledUntil(), last);
        waits += 1;
        await sleep(wait, signal);
      }
      const sentAt = performance.now();
      const tried = await tryOnce(options.sender, policy, partner, request, signal, now, options.defaultThrottleMs ?? 1_000);
      const seconds = (performance.now() - sentAt) / 1000;
      // Throttled while it waited in the bulkhead queue: wait outside it, no attempt was made.
      if ('throttled' in tried) continue;
      i += 1;
      const at = new Date(now()).toISOString();
      if ('error' in tried) {
        if (signal.aborted) throw tried.error;
        if (hasCode(tried.error, 'ERR_EGRESS_DENIED')) return report(partner.id, { kind: 'not-sent', partner: partner.id, reason: 'egress-denied', host: route.host });
        last = { at, ...errorFacts(tried.error) };
        attempts.push(last);
        observer.attempt?.(partner.id, last, seconds);
        // An open breaker or a full queue: no point in waiting here, the retry topic holds it.
        if (isBrokenCircuit(tried.error)) return later(now() + options.policies.halfOpenAfterMs, last);
        if (isBulkheadFull(tried.error)) return later(now() + backoffDelay(0, memoryBackoff, random), last);
      } else {
        const { status } = tried.response;
        last = { at, status };
        attempts.push(last);
        observer.attempt?.(partner.id, last, seconds);
        const cls = classifyStatus(status);
        if (cls === 'delivered') {
          const { cookies, rejected } = await cookiesFromResponse(tried.response.setCookie, request.url, now(), refererOf(request));
          if (rejected > 0) observer.cookiesRejected?.(partner.id, rejected);
          return report(partner.id, { kind: 'delivered', partner: partner.id, status, attempts: trimHistory(attempts, history), cookies });
        }
        if (cls === 'permanent') {
          return report(partner.id, { kind: 'dead', partner: partner.id, reason: 'permanent-failure', code: 'ERR_DISPATCH_STATUS', error: `${partner.id} answered ${status}`, attempts: trimHistory(attempts, history) });
        }
        // tryOnce already throttled the partner (429, Retry-After): the next turn waits for it.
        if (cls === 'throttled' || retryAfterMs(tried.response.retryAfter, now()) !== undefined) continue;
      }
      const delay = backoffDelay(i - 1, memoryBackoff, random);
      if (i >= inMemoryAttempts || now() + delay > deadline) break;
      await sleep(delay, signal);
    }
    return later(Math.max(policy.throttledUntil(), now() + backoffDelay(rounds, topicBackoff, random)), last);
  };
}

/** One attempt inside the partner's bulkhead and breaker; a transient status counts against the breaker. */
async function tryOnce(sender: Sender, policy: ReturnType<PartnerPolicies['for']>, partner: PartnerConfig, request: RequestRecord, signal: AbortSignal, now: () => number, defaultThrottleMs: number): Promise<Tried> {
  try {
    const response = await policy.execute(async (s) => {
      // Checked again inside: requests queued in the bulkhead when the 429 came must not go out.
      if (policy.throttledUntil() > now()) throw new StillThrottled();
      const res = await sender.send({ method: request.method, url: request.url, headers: deliveryHeaders(request, partner.delivery.forwardIp), body: deliveryBody(request), timeoutMs: partner.delivery.timeoutMs }, s);
      // Throttle before the bulkhead slot is released, or the next queued request goes out at once.
      const after = retryAfterMs(res.retryAfter, now());
      if (res.status === 429 || (after !== undefined && classifyStatus(res.status) !== 'delivered')) policy.throttle(now() + (after ?? defaultThrottleMs));
      if (classifyStatus(res.status) === 'transient') throw new TransientStatus(res);
      return res;
    }, signal);
    return { response };
  } catch (error) {
    if (error instanceof TransientStatus) return { response: error.response };
    if (error instanceof StillThrottled) return { throttled: true };
    return { error };
  }
}

/** Carries a 5xx/408 answer through the breaker as a failure (it counts), then back as an answer. */
class TransientStatus extends DeliveryStatusError {
  constructor(readonly response: SendResponse) {
    super('(partner endpoint)', response.status);
  }
}

/** Not a failure of the partner (no code: the breaker does not count it). */
class StillThrottled extends Error {}

/** What an attempt record keeps of an error: its code and message, never a value. */
function errorFacts(error: unknown): { code: string; error: string } {
  if (error instanceof TagstreamError) return { code: error.code, error: error.message };
  const code = (error as { code?: unknown } | null)?.code;
  const name = error instanceof Error ? error.name : 'Error';
  return { code: typeof code === 'string' ? code : name, error: error instanceof Error ? error.message : String(error) };
}

/** The page a captured request was sent from, as its Referer says (header names as captured). */
function refererOf(request: RequestRecord): string | undefined {
  for (const [name, value] of Object.entries(request.headers)) if (name.toLowerCase() === 'referer') return value;
  return undefined;
}

function trimHistory(attempts: DeliveryAttempt[], max: number): DeliveryAttempt[] {
  if (attempts.length <= max) return attempts;
  return [attempts[0] as DeliveryAttempt, ...attempts.slice(attempts.length - (max - 1))];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return untilAborted(done, signal, 'delivery wait').finally(() => clearTimeout(timer));
}
