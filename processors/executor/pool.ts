/**
 * The warm pool: `browsers` Chromium processes × `pagesPerBrowser` tabs, each tab in its own
 * browser context (slot.ts), reused across events — the "refresh strategy": a browser is never
 * launched per event. A tab is replaced after `maxUsesPerPage` events or after any error,
 * terminated script or hang; a browser that dies is replaced.
 *
 * Retries: an event whose page run failed (a crashed renderer or browser) gets one more page run
 * on a fresh tab; at most 2 page runs per call. After that `execute` rejects with
 * ExecutorFailedError (ERR_EXECUTOR_FAILED, `context.attempts`): callers must not retry it again.
 */
import type { Browser, CDPSession } from 'puppeteer-core';
import { register } from 'prom-client';
import { retrying } from '../../core/async.ts';
import { componentLogger, type Logger } from '../../core/log.ts';
import { BrowserCrashedError, ExecutorFailedError, ExecutorUnavailableError } from '../../core/errors.ts';
import { launchChromium } from './browser.ts';
import { limitJar } from './jar-limits.ts';
import { executorMetrics, knowPartners, type ExecutorMetrics } from './metrics.ts';
import { NO_WRITERS, type Writers } from './page/jar-attribution.ts';
import { settingsOf, type ExecutorOptions, type PoolSettings } from './options.ts';
import { runOnSlot, type RunSettings } from './page/run.ts';
import { ScriptCache } from './script-cache.ts';
import { openSlot, type OpenedSlot } from './slot.ts';
import {
  consentGranted,
  parseEvent,
  parseJar,
  parsePartners,
  type ExecuteResult,
  type Jar,
  type JarInput,
  type PageViewEvent,
  type PageViewEventInput,
  type PartnerConfig,
  type PartnerConfigInput,
} from './schemas.ts';

export { chromiumArgs, CHROMIUM_PATH, HEADLESS_SHELL_PATH, runningAsRoot } from './browser.ts';
export type { ExecutorOptions } from './options.ts';

/** Page runs per `execute` call at most: the first and one retry after a crash. */
const MAX_PAGE_RUNS = 2;

interface BrowserHandle {
  id: number;
  browser: Browser;
  session: CDPSession;
  slots: Set<PooledSlot>;
  dead: boolean;
}

interface PooledSlot extends OpenedSlot {
  owner: BrowserHandle;
}

export interface PoolStats {
  browsers: number;
  slots: number;
  idle: number;
  waiting: number;
  executed: number;
  retried: number;
  browsersReplaced: number;
  pagesRecycled: number;
}

/** Readiness of the pool, cheap enough for every probe. */
export interface ExecutorHealth {
  up: boolean;
  /** Why it is not up, one short line. */
  reason?: string;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class Executor {
  readonly #onAttempt: ExecutorOptions['onAttempt'];
  readonly #opts: PoolSettings;
  readonly #log: Logger;
  readonly #metrics: ExecutorMetrics;
  readonly #cache: ScriptCache;
  readonly #ownsCache: boolean;
  readonly #run: RunSettings;
  readonly #browsers = new Set<BrowserHandle>();
  readonly #idle: PooledSlot[] = [];
  readonly #waiters: ((s: PooledSlot) => void)[] = [];
  #started = false;
  #closed = false;
  /** Browsers being launched after a loss. */
  #relaunching = 0;
  #nextBrowserId = 1;
  readonly #stats = { executed: 0, retried: 0, browsersReplaced: 0, pagesRecycled: 0 };

  private constructor(opts: ExecutorOptions) {
    this.#opts = settingsOf(opts);
    this.#log = componentLogger(opts.logger, 'executor');
    this.#onAttempt = opts.onAttempt;
    const registry = opts.registry ?? register;
    this.#metrics = executorMetrics(registry);
    if (opts.scriptCache instanceof ScriptCache) {
      this.#cache = opts.scriptCache;
      this.#ownsCache = false;
    } else {
      this.#cache = new ScriptCache({
        ...(opts.scriptCache ?? {}),
        allowPrivateNetwork: this.#opts.allowPrivateNetwork,
        logger: this.#log,
        registry,
      });
      this.#ownsCache = true;
    }
    this.#run = {
      clock: this.#opts.clock,
      quietWindowMs: this.#opts.quietWindowMs,
      idleRealMs: this.#opts.idleRealMs,
      inPageCapture: this.#opts.inPageCapture,
      allowPrivateNetwork: this.#opts.allowPrivateNetwork,
      cache: this.#cache,
      logger: this.#log,
      metrics: this.#metrics,
    };
  }

  /** Starts the pool; resolves once every browser and tab is warm. */
  static async start(opts: ExecutorOptions = {}): Promise<Executor> {
    const ex = new Executor(opts);
    try {
      await Promise.all(Array.from({ length: ex.#opts.browsers }, () => ex.#launch()));
    } catch (err) {
      await ex.close();
      throw new ExecutorUnavailableError(`cannot start Chromium: ${errorText(err)}`, { executablePath: ex.#opts.executablePath }, { cause: err });
    }
    ex.#started = true;
    ex.#metrics.pools.add(ex);
    return ex;
  }

  get scriptCache(): ScriptCache {
    return this.#cache;
  }

  stats(): PoolStats {
    let slots = 0;
    for (const b of this.#browsers) slots += b.slots.size;
    return { browsers: this.#browsers.size, slots, idle: this.#idle.length, waiting: this.#waiters.length, ...this.#stats };
  }

  /**
   * Up when the pool is started, not closed, and at least one of its browsers is connected. The
   * pool never starts a browser on demand for a call: a lost browser is replaced in the background
   * (with backoff), and until one is connected again this says why it is down.
   */
  health(): ExecutorHealth {
    if (this.#closed) return { up: false, reason: 'executor: closed' };
    if (!this.#started) return { up: false, reason: 'executor: starting' };
    for (const b of this.#browsers) if (!b.dead && b.browser.connected) return { up: true };
    return { up: false, reason: this.#relaunching > 0 ? 'executor: no browser connected (replacing a lost one)' : 'executor: no browser connected' };
  }

  /** Process ids of the browsers (for benchmarks that measure the process tree). */
  browserPids(): number[] {
    const pids: number[] = [];
    for (const b of this.#browsers) {
      const pid = b.browser.process()?.pid;
      if (pid !== undefined) pids.push(pid);
    }
    return pids;
  }

  /**
   * Executes one page view: `event` and `partners` as in DESIGN.md, `jar` the visitor's jar from
   * their previous event (or null). Inputs are validated (InvalidInputError naming the field).
   * The jar returned is within the pool's `jarBudget` (what it cut is in the partners' outcome
   * warnings), and keeps the values passed in for whatever could not be read at the end.
   * Partner outcomes are in `trackers`; this rejects only when the executor itself failed after
   * its one retry (ExecutorFailedError, `context.attempts` page runs made) or is closed
   * (ExecutorUnavailableError).
   */
  async execute(
    event: PageViewEventInput | unknown,
    jar: JarInput | Jar | null,
    partners: readonly (PartnerConfigInput | unknown)[],
  ): Promise<ExecuteResult> {
    const ev = parseEvent(event);
    const ps = parsePartners(partners);
    const j = jar === null || jar === undefined ? parseJar({}) : parseJar(jar);
    if (!ps.some((p) => consentGranted(p, ev.consent))) {
      // Nothing to run: no tab, no change to the jar (but a jar over the budget is cut all the same).
      const skipped: ExecuteResult = { requests: [], jar: j, trackers: ps.map((p) => ({ partner: p.id, status: 'skipped', durationMs: 0, error: null })) };
      return this.#limit(skipped, ev, ps, NO_WRITERS);
    }
    this.#cache.attribute(ps);
    knowPartners(this.#metrics, ps);
    const endTimer = this.#metrics.duration.startTimer();
    let lastErr: unknown;
    let attempts = 0;
    while (attempts < MAX_PAGE_RUNS && !this.#closed) {
      const slot = await this.#acquire();
      const attempt = attempts++;
      try {
        const result = await this.#runOn(slot, ev, j, ps, attempt);
        endTimer();
        this.#metrics.events.inc({ result: attempt === 0 ? 'ok' : 'retried' });
        return result;
      } catch (err) {
        lastErr = err;
        slot.dirty = true;
        slot.handler = null;
        slot.storageChange = null;
        this.#release(slot);
        if (attempts < MAX_PAGE_RUNS && !this.#closed) {
          this.#stats.retried++;
          this.#log.warn({ eventId: ev.eventId, err: errorText(err) }, 'event retried on another tab');
        }
      }
    }
    if (this.#closed) throw new ExecutorUnavailableError('executor closed');
    this.#metrics.events.inc({ result: 'failed' });
    throw new ExecutorFailedError(
      `executing event ${ev.eventId} failed after a retry: ${errorText(lastErr)}`,
      { eventId: ev.eventId, attempts },
      { cause: lastErr },
    );
  }

  /** One page run on `slot`; the tab is wiped and released after the caller has the result. */
  async #runOn(slot: PooledSlot, ev: PageViewEvent, jar: Jar, ps: PartnerConfig[], attempt: number): Promise<ExecuteResult> {
    this.#onAttempt?.(slot.session, { eventId: ev.eventId, attempt });
    const run = await runOnSlot(slot, ev, jar, ps, this.#run);
    const { cleanup } = run;
    const result = this.#limit(run.result, ev, ps, run.writers);
    this.#stats.executed++;
    for (const t of result.trackers) this.#metrics.outcomes.inc({ partner: t.partner, status: t.status });
    for (const q of result.requests) this.#metrics.captured.inc({ partner: q.partner ?? '', transport: q.transport });
    cleanup().then(
      () => this.#release(slot),
      (err: unknown) => {
        slot.dirty = true;
        if (this.#closed) return;
        this.#log.warn({ err: String(err), slot: slot.id }, 'wiping a tab failed; replacing it');
        this.#release(slot);
      },
    );
    return result;
  }

  /** `result` within the pool's jar budget, what it dropped reported (jar-limits.ts). */
  #limit(result: ExecuteResult, ev: PageViewEvent, ps: readonly PartnerConfig[], writers: Readonly<Writers>): ExecuteResult {
    return limitJar(result, {
      budget: this.#opts.jarBudget,
      eventId: ev.eventId,
      pageOrigin: new URL(ev.page.url).origin,
      active: ps.filter((p) => consentGranted(p, ev.consent)),
      writers,
      metrics: this.#metrics,
      log: this.#log,
    });
  }

  /** Closes every browser; pending and later calls fail with ExecutorUnavailableError. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#metrics.pools.delete(this);
    const browsers = [...this.#browsers];
    this.#browsers.clear();
    for (const b of browsers) b.dead = true;
    await Promise.all(browsers.map((b) => b.browser.close().catch(() => b.browser.process()?.kill('SIGKILL'))));
    if (this.#ownsCache) await this.#cache.close();
  }

  async #acquire(): Promise<PooledSlot> {
    if (this.#closed) throw new ExecutorUnavailableError('executor closed');
    const s = this.#idle.shift();
    if (s) return s;
    // Bounded: with every browser gone and relaunches failing, callers get an error to
    // dead-letter on instead of waiting forever.
    return new Promise<PooledSlot>((resolve, reject) => {
      const waiter = (slot: PooledSlot): void => {
        clearTimeout(timer);
        resolve(slot);
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new ExecutorUnavailableError(`no browser tab free within ${this.#opts.acquireTimeoutMs} ms`, { ...this.stats() }));
      }, this.#opts.acquireTimeoutMs);
      this.#waiters.push(waiter);
    });
  }

  #offer(slot: PooledSlot): void {
    const w = this.#waiters.shift();
    if (w) w(slot);
    else this.#idle.push(slot);
  }

  #release(slot: PooledSlot): void {
    slot.uses++;
    if (slot.owner.dead || this.#closed) return;
    if (!slot.dirty && slot.uses < this.#opts.maxUsesPerPage) {
      this.#offer(slot);
      return;
    }
    this.#stats.pagesRecycled++;
    this.#metrics.pagesRecycled.inc();
    slot.owner.slots.delete(slot);
    const owner = slot.owner;
    slot.fail(new BrowserCrashedError('tab recycled'));
    void owner.session
      .send('Target.disposeBrowserContext', { browserContextId: slot.browserContextId })
      .catch(() => undefined)
      .then(() => this.#replaceSlot(owner));
  }

  /** A new tab for `owner`, tried 4 times with backoff while its browser lives. */
  async #replaceSlot(owner: BrowserHandle): Promise<void> {
    const gone = (): boolean => owner.dead || this.#closed;
    const s = await retrying({ maxAttempts: 4, initialDelayMs: 500, maxDelayMs: 2000, retryable: () => !gone() })
      .execute(async ({ attempt }) => {
        try {
          return await this.#newSlot(owner);
        } catch (err) {
          if (!gone()) this.#log.error({ err: String(err), attempt }, 'replacing a tab failed');
          throw err;
        }
      })
      .catch(() => null);
    if (s && !gone()) this.#offer(s);
  }

  async #launch(): Promise<void> {
    const id = this.#nextBrowserId++;
    const o = this.#opts;
    const browser = await launchChromium({ executablePath: o.executablePath, headless: o.headless, sandbox: o.sandbox, extraArgs: o.extraArgs });
    if (this.#closed) {
      // A relaunch that finished after close(): nobody would close this one.
      await browser.close().catch(() => browser.process()?.kill('SIGKILL'));
      throw new ExecutorUnavailableError('executor closed');
    }
    const session = await browser.target().createCDPSession();
    const handle: BrowserHandle = { id, browser, session, slots: new Set(), dead: false };
    this.#browsers.add(handle);
    browser.on('disconnected', () => this.#onBrowserLost(handle));
    await session.send('Browser.setDownloadBehavior', { behavior: 'deny' }).catch(() => undefined);
    const slots = await Promise.all(Array.from({ length: o.pagesPerBrowser }, () => this.#newSlot(handle)));
    for (const s of slots) this.#offer(s);
    this.#log.info({ browser: id, chromiumPid: browser.process()?.pid, pages: slots.length, headless: o.headless }, 'browser started');
  }

  async #newSlot(owner: BrowserHandle): Promise<PooledSlot> {
    const slot: PooledSlot = Object.assign(await openSlot(owner.session, this.#log, this.#opts.trustedClose, this.#opts.inPageCapture), { owner });
    owner.slots.add(slot);
    return slot;
  }

  #onBrowserLost(handle: BrowserHandle): void {
    if (handle.dead) return;
    handle.dead = true;
    this.#browsers.delete(handle);
    const err = new BrowserCrashedError('browser disconnected', { browser: handle.id });
    for (const s of handle.slots) s.fail(err);
    for (let i = this.#idle.length - 1; i >= 0; i--) if (this.#idle[i]?.owner === handle) this.#idle.splice(i, 1);
    if (this.#closed) return;
    this.#stats.browsersReplaced++;
    this.#metrics.browsersReplaced.inc();
    this.#log.error({ browser: handle.id }, 'browser lost; replacing it');
    handle.browser.process()?.kill('SIGKILL');
    this.#relaunching++;
    void this.#relaunch().finally(() => this.#relaunching--);
  }

  /** A replacement browser, tried 6 times with backoff (1 s growing to 30 s) until closed. */
  async #relaunch(): Promise<void> {
    await retrying({ maxAttempts: 6, initialDelayMs: 1000, maxDelayMs: 30_000, retryable: () => !this.#closed })
      .execute(async ({ attempt }) => {
        try {
          await this.#launch();
        } catch (err) {
          if (!this.#closed) this.#log.error({ err: String(err), attempt }, 'relaunching a browser failed');
          throw err;
        }
      })
      .catch(() => undefined);
  }
}

/** Starts a pool (see ExecutorOptions); close it with `executor.close()`. */
export function createExecutor(opts: ExecutorOptions = {}): Promise<Executor> {
  return Executor.start(opts);
}
