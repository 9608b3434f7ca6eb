/**
 * Hooks that let something in the same process watch the pipeline without being part of it (the
 * console, docs/console.md): what the executor did with each event, and what each delivery
 * decided. Explicit and typed, like @platformatic/kafka's diagnostics; an observer that throws is
 * ignored, so watching can never fail an event.
 */
import type { DeliveryOutcome, ExecuteResult, PageViewEvent, RequestRecord, StoredJar } from '../../core/contracts/index.ts';
import type { Deliver } from '../../core/contracts/delivery.ts';
import type { Executor } from '../../topology/app/processor.ts';

/** One executor attempt on one event (an event retried after a failure reports each attempt). */
export interface ExecutionReport {
  event: PageViewEvent;
  /** The visitor's jar the page started with (null: first visit). */
  jarBefore: StoredJar | null;
  /** Wall time (ms since the epoch) the attempt started. */
  startedAt: number;
  durationMs: number;
  /** Present when the attempt ran (whatever each partner's own outcome). */
  result?: ExecuteResult;
  /** Present when the executor itself failed. */
  error?: unknown;
}

export type ExecutionObserver = (report: ExecutionReport) => void;

/** One delivery decision: delivered, retry later, dead letter or not sent (with its attempts). */
export type DeliveryObserver = (request: RequestRecord, outcome: DeliveryOutcome) => void;

/** The executor, reporting each attempt to `observer` (unchanged when there is none). */
export function observedExecutor(executor: Executor, observer: ExecutionObserver | undefined, now: () => number = Date.now): Executor {
  if (observer === undefined) return executor;
  return async (event, jar, signal) => {
    const startedAt = now();
    try {
      const result = await executor(event, jar, signal);
      notify(() => observer({ event, jarBefore: jar, startedAt, durationMs: now() - startedAt, result }));
      return result;
    } catch (error) {
      notify(() => observer({ event, jarBefore: jar, startedAt, durationMs: now() - startedAt, error }));
      throw error;
    }
  };
}

/** The delivery function, reporting each outcome to `observer` (unchanged when there is none). */
export function observedDeliver(deliver: Deliver, observer: DeliveryObserver | undefined): Deliver {
  if (observer === undefined) return deliver;
  return async (pending, signal) => {
    const outcome = await deliver(pending, signal);
    notify(() => observer(pending.request, outcome));
    return outcome;
  };
}

function notify(call: () => void): void {
  try {
    call();
  } catch {
    // An observer's bug must not fail an event or a delivery: it only loses what it watched.
  }
}
