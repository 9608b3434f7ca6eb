/**
 * Failure classes and retry timing of a delivery (DESIGN.md "The dispatcher"). Pure, so the
 * decisions are tested without a server:
 *
 * - 2xx/3xx: delivered (a redirect is not followed: a beacon's answer is not read by anyone);
 * - 429 (and Retry-After on 503): that partner is throttled until the date it gave;
 * - 5xx, 408, network errors, timeouts, an open breaker, a full queue: transient, retried;
 * - any other 4xx: permanent, dead-lettered at once with the status.
 */
export type StatusClass = 'delivered' | 'throttled' | 'transient' | 'permanent';

export function classifyStatus(status: number): StatusClass {
  if (status >= 200 && status < 400) return 'delivered';
  if (status === 429) return 'throttled';
  if (status === 408 || status >= 500) return 'transient';
  return 'permanent';
}

/** Retry-After (RFC 9110 §10.2.3): seconds or an HTTP date → ms from now; absent or junk → undefined. */
export function retryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

export interface Backoff {
  /** First delay. */
  baseMs: number;
  /** Upper bound of one delay. */
  maxMs: number;
}

/**
 * Exponential backoff with "full jitter" (AWS architecture blog): a random delay in
 * [base·2^n / 2, base·2^n], capped; half the range is kept so a retry never comes at once.
 */
export function backoffDelay(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** When the partner's retry window ends: from the event's own time (the contract), else the first attempt. */
export function windowEnd(eventTimestamp: string | undefined, firstAttemptMs: number, retryWindowMs: number): number {
  const event = eventTimestamp === undefined ? Number.NaN : Date.parse(eventTimestamp);
  const start = Number.isNaN(event) ? firstAttemptMs : Math.min(event, firstAttemptMs);
  return start + retryWindowMs;
}
