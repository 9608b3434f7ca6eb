/**
 * The one implementation of timeouts, aborts and retries (cockatiel for the policies: the
 * dispatcher composes its retry, circuit breaker, bulkhead and timeout from the same library).
 *
 * - `withTimeout(what, ms, work, parent?)`: runs `work(signal)`; past `ms` it rejects with a
 *   TimeoutError and aborts `signal` (after rejecting, so work that settles on abort cannot win);
 * - `untilAborted(promise, signal, what)`: stop waiting when `signal` fires (the work goes on);
 * - `settledWithin(promise, ms)`: true when it settled in time, false otherwise (never rejects);
 * - `retrying(options)`: exponential backoff with decorrelated jitter for errors `retryable` accepts.
 */
import { ExponentialBackoff, handleWhen, retry, type RetryPolicy } from 'cockatiel';
import { AbortedError, TimeoutError } from './errors.ts';

export async function withTimeout<T>(what: string, timeoutMs: number, work: (signal: AbortSignal) => Promise<T>, parent?: AbortSignal): Promise<T> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(parent?.reason);
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work(controller.signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const error = new TimeoutError(what, timeoutMs);
          reject(error);
          controller.abort(error);
        }, timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onAbort);
  }
}

/** Settles like `promise`, or rejects (the signal's reason, else an AbortedError) once `signal` fires. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, what = 'operation'): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(reasonOf(signal, what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reasonOf(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** The abort's own error when it has one (a TimeoutError…); the platform's default AbortError becomes ours. */
function reasonOf(signal: AbortSignal, what: string): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name !== 'AbortError') return reason;
  return new AbortedError(what, { cause: reason });
}

/** Resolves true when `promise` settled (either way) within `ms`, false on timeout. */
export async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface RetryOptions {
  /** Total attempts, the first included (1 = no retry). */
  maxAttempts: number;
  /** First delay before a retry; later ones grow exponentially with decorrelated jitter. Default 100 ms. */
  initialDelayMs?: number;
  /** Upper bound of one delay. Default 10 s. */
  maxDelayMs?: number;
  /** Which failures are worth another attempt; others fail at once. Default: every error. */
  retryable?: (error: unknown) => boolean;
}

/** A cockatiel retry policy: `await retrying({ maxAttempts: 3 }).execute(({ attempt }) => work(), signal)`. */
export function retrying(options: RetryOptions): RetryPolicy {
  const attempts = Math.max(1, Math.floor(options.maxAttempts));
  return retry(handleWhen(options.retryable ?? (() => true)), {
    maxAttempts: attempts - 1,
    backoff: new ExponentialBackoff({ initialDelay: options.initialDelayMs ?? 100, maxDelay: options.maxDelayMs ?? 10_000 }),
  });
}

export { ExponentialBackoff, bulkhead, circuitBreaker, ConsecutiveBreaker, SamplingBreaker, handleAll, handleWhen, timeout, TimeoutStrategy, wrap } from 'cockatiel';
export type { IPolicy, RetryPolicy, CircuitBreakerPolicy, BulkheadPolicy } from 'cockatiel';
