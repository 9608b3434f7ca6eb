/**
 * When a page run ends, and what happens to code that does not yield.
 *
 * The page settles itself (inject/bootstrap.js `runAll`: load, page time until no request is
 * pending and no timer is due within the quiet window, bounded by the largest `timeoutMs` in page
 * time; then the tab closes: page/leave.ts, or a dispatched hidden + pagehide after a
 * termination). The executor only waits for it, under a wall
 * budget: a main thread that stops answering pings for the tightest partner budget is terminated
 * (Runtime.terminateExecution), the page names the code that was running, and the run goes on
 * step by step; a page that does not answer even then is `hung` (its tab is replaced).
 */
import type { Logger } from '../../../core/log.ts';
import { TimeoutError } from '../../../core/errors.ts';
import { untilAborted } from '../../../core/async.ts';
import type { ExecutorMetrics } from '../metrics.ts';
import { onSlot, type Slot } from '../slot.ts';
import type { PageReport } from './attribution.ts';

const sleep = (ms: number): Promise<'sleep'> => new Promise((r) => setTimeout(() => r('sleep'), Math.max(1, ms)));

/** Evaluations in the page under a wall budget; records terminations and what they named. */
export class Watchdog {
  readonly #slot: Slot;
  readonly #runId: string;
  readonly #blockedMs: number;
  readonly #log: Logger;
  readonly #metrics: ExecutorMetrics;
  /** Partners the page named as running when a script was terminated. */
  readonly suspects = new Set<string>();
  /** Wall times of the terminations. */
  readonly terminatedAt: number[] = [];
  terminations = 0;
  /** The page did not answer even after a termination: the tab is lost for this run. */
  hung = false;

  /**
   * @param blockedMs how long the main thread may leave a ping unanswered before it is considered
   *   stuck: the tightest `timeoutMs` of the page's partners
   */
  constructor(slot: Slot, runId: string, blockedMs: number, log: Logger, metrics: ExecutorMetrics) {
    this.#slot = slot;
    this.#runId = runId;
    this.#blockedMs = blockedMs;
    this.#log = log;
    this.#metrics = metrics;
  }

  #send(expression: string, awaitPromise: boolean): Promise<unknown> {
    return this.#slot.session
      .send('Runtime.evaluate', { expression, awaitPromise, returnByValue: true })
      .then((r) => (r.exceptionDetails ? { exception: r.exceptionDetails.exception?.description ?? r.exceptionDetails.text } : r.result.value));
  }

  /**
   * The value of `expression` (awaited), or `{ slow: true }` when a responsive page did not settle
   * within `budgetMs`, `{ terminated: true }` after terminating a script that did not yield, or
   * `{ hung: true }`. Rejects when the tab is lost.
   */
  async evaluate(expression: string, budgetMs: number): Promise<unknown> {
    const step = this.#send(expression, true).then((v) => ({ v }));
    step.catch(() => undefined);
    const outcome = await this.#wait(step, Date.now() + budgetMs);
    if (typeof outcome === 'object') return outcome.v;
    if (outcome === 'budget') {
      // Responsive page, slow promise (a pending load): stop waiting, do not terminate.
      try {
        await onSlot(this.#slot, 'ping', 250, this.#send('1', false));
        return { slow: true };
      } catch (err) {
        if (!(err instanceof TimeoutError)) throw err;
      }
    }
    return this.#terminate();
  }

  /** Waits for `step`, pinging the page: `'blocked'` when a ping went unanswered, `'budget'` at `until`. */
  async #wait(step: Promise<{ v: unknown }>, until: number): Promise<{ v: unknown } | 'blocked' | 'budget'> {
    const signal = this.#slot.signal;
    for (;;) {
      const first = await untilAborted(Promise.race([step, sleep(Math.min(300, until - Date.now()))]), signal);
      if (first !== 'sleep') return first;
      if (Date.now() >= until) return 'budget';
      const ping = this.#send('1', false).then(() => 'pong' as const);
      ping.catch(() => undefined);
      const answered = await untilAborted(Promise.race([step, ping, sleep(Math.min(this.#blockedMs, until - Date.now()))]), signal);
      if (answered === 'pong') continue;
      if (answered !== 'sleep') return answered;
      return 'blocked';
    }
  }

  async #terminate(): Promise<unknown> {
    this.terminations++;
    this.#metrics.terminations.inc();
    this.#slot.dirty = true;
    const terminateAt = Date.now();
    try {
      await onSlot(this.#slot, 'Runtime.terminateExecution', 1000, this.#slot.session.send('Runtime.terminateExecution'));
      const runId = JSON.stringify(this.#runId);
      const ids = await onSlot(
        this.#slot,
        'naming the terminated script',
        1000,
        this.#send(`window.__tagstream && window.__tagstream.runId === ${runId} ? window.__tagstream.terminated() : null`, false),
      );
      if (Array.isArray(ids)) for (const id of ids) if (typeof id === 'string') this.suspects.add(id);
      this.terminatedAt.push(terminateAt);
      this.#log.warn({ partners: Array.isArray(ids) ? ids : [], blockedMs: this.#blockedMs }, 'terminated a script that did not yield');
      return { terminated: true };
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      this.hung = true;
      return { hung: true };
    }
  }
}

export interface SettlePlan {
  runId: string;
  /** Page time without a due timer or pending request that ends the event (0 with CDP time). */
  quietMs: number;
  /** The largest `timeoutMs` of the page's partners: the page-time bound. */
  maxMs: number;
  /** Wall time by which the run should be over (start + maxMs). */
  deadline: number;
}

const isTerminated = (v: unknown): boolean => typeof v === 'object' && v !== null && 'terminated' in v;

/**
 * Runs the page to its end and returns what it reports, or null when it could not say (hung,
 * stale, or past the deadline); `armed` when the page settled and waits for the tab to close
 * (page/leave.ts). One round trip in the common case; step by step after a termination (the
 * page's promise chain died with the terminated script) or a slow page.
 */
export async function settlePage(wd: Watchdog, plan: SettlePlan): Promise<PageReport | 'armed' | null> {
  const left = (min: number): number => Math.max(min, plan.deadline - Date.now());
  const runId = JSON.stringify(plan.runId);
  const runAll = (wall: number): string =>
    `(function(){var t=window.__tagstream;if(!t||t.runId!==${runId})return 'stale';` +
    `return t.runAll(${plan.quietMs}, ${plan.maxMs}, ${Math.max(50, wall - 100)}, 800)})()`;
  for (; !wd.hung; ) {
    const wall = left(500);
    const v = await wd.evaluate(runAll(wall), wall + 1500);
    if (v === 'armed') return v;
    if (typeof v === 'string' && v !== 'stale') return JSON.parse(v) as PageReport;
    // A script was terminated (the promise chain died with it) or the page is slow.
    if (v !== 'stale') return settleInSteps(wd, plan);
    if (Date.now() > plan.deadline) return null;
    await sleep(2);
  }
  return null;
}

async function settleInSteps(wd: Watchdog, plan: SettlePlan): Promise<PageReport | null> {
  const left = (min: number): number => Math.max(min, plan.deadline - Date.now());
  // 1. the document's load (partner html runs while it parses)
  for (let i = 0; !wd.hung && i < 4; i++) {
    if (!isTerminated(await wd.evaluate('window.__tagstream.loaded()', left(500)))) break;
  }
  // 2. page time until quiet (bounded by the largest timeoutMs, in page time)
  for (let i = 0; !wd.hung && i < 4; i++) {
    const wall = left(300);
    const v = await wd.evaluate(`window.__tagstream.settle(${plan.quietMs}, ${plan.maxMs}, ${Math.max(50, wall - 100)})`, wall);
    if (!isTerminated(v)) break;
  }
  // 3. the tab closes, dispatched from script: a page that needed terminating is not closed for
  //    real (its tab is replaced anyway): visibilitychange + pagehide, what they send, the barrier
  if (!wd.hung) await wd.evaluate('window.__tagstream.hide(800)', 1500);
  // 4. collect what the page kept
  if (wd.hung) return null;
  const v = await wd.evaluate('window.__tagstream.collect()', 1500);
  return typeof v === 'string' ? (JSON.parse(v) as PageReport) : null;
}

/**
 * The experimental clock: Chromium's virtual time must be set again after each navigation
 * (prototype finding); page time runs until the budget is spent, pausing while fetches are
 * pending.
 */
export async function runVirtualTime(slot: Slot, startMs: number, budgetMs: number): Promise<void> {
  const s = slot.session;
  const expired = new Promise<void>((resolve) => s.once('Emulation.virtualTimeBudgetExpired', () => resolve()));
  await s.send('Emulation.setVirtualTimePolicy', { policy: 'pauseIfNetworkFetchesPending', budget: budgetMs, initialVirtualTime: startMs / 1000 });
  await onSlot(slot, 'virtual time budget', budgetMs + 2000, expired).catch((err: unknown) => {
    if (!(err instanceof TimeoutError)) throw err;
  });
  await s.send('Emulation.setVirtualTimePolicy', { policy: 'advance' });
}

/** allowHosts loads still in flight get a few milliseconds more, not longer. */
export async function drainLoads(inflight: () => number): Promise<void> {
  for (let i = 0; inflight() > 0 && i < 50; i++) await sleep(2);
}
