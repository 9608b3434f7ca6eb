/**
 * Isolation per partner (DESIGN.md "The dispatcher": one partner down never slows the others),
 * composed from cockatiel as core/async.ts prescribes, never hand-written:
 *
 * - a bulkhead: at most `delivery.concurrency` requests in flight to the partner, at most
 *   `queueBound` waiting; beyond that a request is refused at once (BulkheadRejectedError) and goes
 *   to the retry topic instead of holding a runner slot;
 * - a circuit breaker: after `breakerThreshold` consecutive transient failures (5xx, 408, network,
 *   timeout) it opens for `halfOpenAfterMs`; while open, requests fail at once (BrokenCircuitError),
 *   so a partner that stalls costs one timeout per threshold, not one per request;
 * - a throttle date from 429/Retry-After: that partner's requests wait for it, nobody else's.
 */
import { BrokenCircuitError, BulkheadRejectedError } from 'cockatiel';
import { bulkhead, circuitBreaker, ConsecutiveBreaker, handleWhen, wrap, type IPolicy } from '../../core/async.ts';
import type { PartnerConfig } from '../../core/contracts/index.ts';
import { hasCode } from '../../core/errors.ts';

export interface PolicyOptions {
  /** Waiting requests per partner beyond its concurrency. Default 4 × concurrency. */
  queueBound?: number;
  /** Consecutive transient failures that open the breaker. Default 5. */
  breakerThreshold?: number;
  /** How long an open breaker refuses before letting one request test the partner. Default 10 s. */
  halfOpenAfterMs?: number;
}

export interface PartnerPolicy {
  readonly partner: string;
  /** Runs `work` inside the partner's bulkhead and breaker. */
  execute<T>(work: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** Epoch ms before which this partner asked not to be called (429 / Retry-After), or 0. */
  throttledUntil(): number;
  throttle(untilMs: number): void;
  /** Breaker state for metrics and readiness-free diagnostics. */
  breakerState(): 'closed' | 'open' | 'half-open' | 'isolated';
  /** In flight and queued in the bulkhead. */
  load(): { executing: number; queued: number };
}

/**
 * Whether a failure counts against the partner's breaker (the partner's fault, not ours): a
 * transient answer (5xx, 408: deliver.ts throws ERR_DISPATCH_STATUS inside the breaker only for
 * those), a timeout, a network error. A partner answering 503 to everything trips it as a stalled
 * one does, so its requests stop taking delivery slots for their in-memory attempts.
 */
export function breakerCounts(error: unknown): boolean {
  return hasCode(error, 'ERR_DISPATCH_STATUS') || hasCode(error, 'ERR_EXECUTOR_UPSTREAM') || hasCode(error, 'ERR_TIMEOUT') || isNetworkError(error);
}

/** A socket-level failure (refused, reset, TLS, DNS, undici's own timeouts) rather than an answer. */
export function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (/^(E[A-Z]+|UND_ERR_[A-Z_]+|ERR_TLS_[A-Z_]+|ERR_SSL_[A-Z_]+|CERT_[A-Z_]+|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_[A-Z_]+)$/.test(code));
}

export const isBrokenCircuit = (error: unknown): boolean => error instanceof BrokenCircuitError;
export const isBulkheadFull = (error: unknown): boolean => error instanceof BulkheadRejectedError;

export class PartnerPolicies {
  private readonly policies = new Map<string, PartnerPolicy>();

  constructor(private readonly options: PolicyOptions = {}) {}

  for(partner: PartnerConfig): PartnerPolicy {
    let policy = this.policies.get(partner.id);
    if (policy === undefined) {
      policy = this.create(partner);
      this.policies.set(partner.id, policy);
    }
    return policy;
  }

  get halfOpenAfterMs(): number {
    return this.options.halfOpenAfterMs ?? 10_000;
  }

  private create(partner: PartnerConfig): PartnerPolicy {
    const concurrency = partner.delivery.concurrency;
    const limiter = bulkhead(concurrency, this.options.queueBound ?? concurrency * 4);
    const breaker = circuitBreaker(handleWhen(breakerCounts), {
      halfOpenAfter: this.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(this.options.breakerThreshold ?? 5),
    });
    const policy: IPolicy = wrap(limiter, breaker);
    let until = 0;
    const states = ['closed', 'open', 'half-open', 'isolated'] as const;
    return {
      partner: partner.id,
      execute: (work, signal) => policy.execute(({ signal: s }) => work(s), signal),
      throttledUntil: () => until,
      throttle: (untilMs) => {
        until = Math.max(until, untilMs);
      },
      breakerState: () => states[breaker.state] ?? 'closed',
      load: () => ({ executing: concurrency - limiter.executionSlots, queued: limiter.queueSlots === 0 ? 0 : (this.options.queueBound ?? concurrency * 4) - limiter.queueSlots }),
    };
  }
}
