/**
 * The warm pool: `browsers` Chromium processes × `pagesPerBrowser` tabs, each tab in its own
 * browser context (cookies of concurrent visitors must not meet), reused across events — the
 * "refresh strategy": a browser is never launched per event. A tab is replaced after
 * `maxUsesPerPage` events or after any error, terminated script or hang; a browser that dies is
 * replaced, and the events that were on it are retried once on another tab.
 */
import { randomUUID } from 'node:crypto';
import puppeteer, { type Browser, type CDPSession, type Protocol } from 'puppeteer-core';
import { componentLogger, type Logger } from '../../core/log.ts';
import { BrowserCrashedError, ExecutorFailedError, ExecutorUnavailableError } from '../../core/errors.ts';
import { executorMetrics } from './metrics.ts';
import { BOOTSTRAP_INJECTION, frameStorageInjection, runOnSlot, WORKER_BINDING, workerHook, type Slot } from './page-run.ts';
import { ScriptCache, type ScriptCacheOptions } from './script-cache.ts';
import {
  consentGranted,
  parseEvent,
  parseJar,
  parsePartners,
  type ExecuteResult,
  type Jar,
  type JarInput,
  type PageViewEventInput,
  type PartnerConfigInput,
} from './schemas.ts';

/** Chromium refuses to start its sandbox as root (the CI and development machines here). */
export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export const HEADLESS_SHELL_PATH = '/usr/lib/chromium/chromium-headless-shell';
export const CHROMIUM_PATH = '/usr/bin/chromium';

export interface ExecutorOptions {
  /** Chromium processes (default 1). */
  browsers?: number;
  /** Tabs per browser, i.e. concurrent events per browser (default 2). */
  pagesPerBrowser?: number;
  /** A tab is replaced after this many events (default 200). */
  maxUsesPerPage?: number;
  /** `shell` = chromium-headless-shell (default, about half the CPU per view); `new` = Chromium's new headless. */
  headless?: 'shell' | 'new';
  executablePath?: string;
  /** Allow loopback/private/link-local targets for allowHosts loads (development and tests only). */
  allowPrivateNetwork?: boolean;
  /**
   * Chromium's OS sandbox around partner code (default: on, except as root, where Chromium
   * refuses to start with it). Turning it off as a non-root user removes a layer of defence.
   */
  sandbox?: boolean;
  /** Page time without a due timer or pending request after which an event ends (default 5000). */
  quietWindowMs?: number;
  /**
   * Page clock: `fake-timers` (default; injected, jumps to the next timer) or `cdp-virtual-time`
   * (experimental: Chromium's virtual time policy, kept for comparison).
   */
  clock?: 'fake-timers' | 'cdp-virtual-time';
  /** How long an event waits for a free tab before ExecutorUnavailableError (default 60000). */
  acquireTimeoutMs?: number;
  /** Real milliseconds the page must stay quiet before the event ends (default 15). */
  idleRealMs?: number;
  /** Extra Chromium flags, appended. */
  extraArgs?: string[];
  /** An existing cache to share, or options for the executor's own. */
  scriptCache?: ScriptCache | Omit<ScriptCacheOptions, 'allowPrivateNetwork' | 'logger'>;
  logger?: Logger;
  /**
   * Called with the tab's CDP session as each attempt of an event starts (fault injection in
   * tests, diagnostics); not on the common path unless set.
   */
  onAttempt?: (session: CDPSession, info: { eventId: string; attempt: number }) => void;
}

// Flags every browser runs with. The fixed set comes from the operator's brief (closed network,
// no background traffic); the rest from the prototype findings in issue 4.
export function chromiumArgs(opts: { headless: 'shell' | 'new'; sandbox?: boolean }): string[] {
  const args = [
    // The sandbox stays on where Chromium allows it: partner JavaScript is untrusted.
    ...(opts.sandbox ?? !runningAsRoot() ? [] : ['--no-sandbox']),
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
    // Hidden WebUI renderers per profile/context cost ~160 MB each and up to 2.8x CPU per view.
    // LocalNetworkAccessChecks: every request is answered by us; our own policy decides.
    // RenderDocument: with it every navigation of a pooled tab builds a new RenderFrame (and
    // WebView) in the renderer, swaps it in, detaches the old one and re-attaches DevTools to it;
    // without it the frame is reused and each visit still gets a new document and window.
    // Measured (bench/executor/trace.ts): renderer main thread 29 -> 24 ms, browser main thread
    // 17 -> 13 ms per view.
    '--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup,LocalNetworkAccessChecks,Translate,MediaRouter,OptimizationHints,BackForwardCache,AutofillServerCommunication,RenderDocument',
    // No preload scanner: it fetched each parser-inserted partner script in no-cors mode, then
    // the bootstrap's CORS mode made the script fetch it again, and the two entries kept evicting
    // each other from the renderer's memory cache: two intercepted requests per script per view
    // instead of none (small-tag workload: 8 -> 4 Fetch pauses per view; CPU per view 55-58 ->
    // 41-47 ms in alternating runs, network service 5 -> 3.4 ms). The tags see no difference.
    '--blink-settings=doHtmlPreloadScanning=false',
    '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
    '--disable-dev-shm-usage',
    '--disable-extensions',
    '--disable-default-apps',
    '--disable-breakpad',
    '--mute-audio',
    '--password-store=basic',
    // Defence in depth: whatever escapes interception (workers, preconnect, popups, WebRTC)
    // finds no proxy, no DNS and no UDP.
    '--proxy-server=http://127.0.0.1:9',
    '--proxy-bypass-list=<-loopback>',
    '--host-resolver-rules=MAP * ~NOTFOUND',
    '--force-webrtc-ip-handling-policy=disable_non_proxied_udp',
  ];
  // New headless with 2+ pages kept killing and restarting a spare renderer on every view.
  if (opts.headless === 'new') args.push('--disable-site-isolation-trials');
  return args;
}

const DENIED_PERMISSIONS = [
  'geolocation',
  'notifications',
  'midi',
  'camera',
  'microphone',
  'clipboard-read',
  'clipboard-write',
  'display-capture',
  'idle-detection',
  'storage-access',
  'top-level-storage-access',
  'local-fonts',
  'window-management',
];

interface BrowserHandle {
  id: number;
  browser: Browser;
  session: CDPSession;
  slots: Set<PooledSlot>;
  dead: boolean;
  loseAll: (err: Error) => void;
}

interface PooledSlot extends Slot {
  owner: BrowserHandle;
  fail: (err: Error) => void;
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

export class Executor {
  readonly #onAttempt: ExecutorOptions['onAttempt'];
  readonly #opts: Required<Omit<ExecutorOptions, 'scriptCache' | 'logger' | 'executablePath' | 'extraArgs' | 'onAttempt'>> & {
    executablePath: string;
    extraArgs: string[];
  };
  readonly #log: Logger;
  readonly #cache: ScriptCache;
  readonly #ownsCache: boolean;
  readonly #browsers = new Set<BrowserHandle>();
  readonly #idle: PooledSlot[] = [];
  readonly #waiters: ((s: PooledSlot) => void)[] = [];
  #closed = false;
  #nextBrowserId = 1;
  readonly #stats = { executed: 0, retried: 0, browsersReplaced: 0, pagesRecycled: 0 };

  private constructor(opts: ExecutorOptions) {
    const headless = opts.headless ?? 'shell';
    this.#opts = {
      browsers: Math.max(1, opts.browsers ?? 1),
      pagesPerBrowser: Math.max(1, opts.pagesPerBrowser ?? 2),
      maxUsesPerPage: Math.max(1, opts.maxUsesPerPage ?? 200),
      headless,
      executablePath: opts.executablePath ?? (headless === 'shell' ? HEADLESS_SHELL_PATH : CHROMIUM_PATH),
      allowPrivateNetwork: opts.allowPrivateNetwork ?? false,
      sandbox: opts.sandbox ?? !runningAsRoot(),
      quietWindowMs: opts.quietWindowMs ?? 5000,
      clock: opts.clock ?? 'fake-timers',
      acquireTimeoutMs: opts.acquireTimeoutMs ?? 60_000,
      idleRealMs: opts.idleRealMs ?? 15,
      extraArgs: opts.extraArgs ?? [],
    };
    this.#log = componentLogger(opts.logger, 'executor');
    this.#onAttempt = opts.onAttempt;
    if (opts.scriptCache instanceof ScriptCache) {
      this.#cache = opts.scriptCache;
      this.#ownsCache = false;
    } else {
      this.#cache = new ScriptCache({
        ...(opts.scriptCache ?? {}),
        allowPrivateNetwork: this.#opts.allowPrivateNetwork,
        logger: this.#log,
      });
      this.#ownsCache = true;
    }
  }

  /** Starts the pool; resolves once every browser and tab is warm. */
  static async start(opts: ExecutorOptions = {}): Promise<Executor> {
    const ex = new Executor(opts);
    try {
      await Promise.all(Array.from({ length: ex.#opts.browsers }, () => ex.#launch()));
    } catch (err) {
      await ex.close();
      throw new ExecutorUnavailableError(`cannot start Chromium: ${err instanceof Error ? err.message : String(err)}`, {
        executablePath: ex.#opts.executablePath,
      }, { cause: err });
    }
    return ex;
  }

  get scriptCache(): ScriptCache {
    return this.#cache;
  }

  stats(): PoolStats {
    let slots = 0;
    for (const b of this.#browsers) slots += b.slots.size;
    return {
      browsers: this.#browsers.size,
      slots,
      idle: this.#idle.length,
      waiting: this.#waiters.length,
      ...this.#stats,
    };
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
   * Partner outcomes are in `trackers`; this rejects only when the executor itself failed after
   * one retry (ExecutorFailedError) or is closed (ExecutorUnavailableError).
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
      // Nothing to run: no tab, no change to the jar.
      return { requests: [], jar: j, trackers: ps.map((p) => ({ partner: p.id, status: 'skipped', durationMs: 0, error: null })) };
    }
    const m = executorMetrics();
    const endTimer = m.duration.startTimer();
    let lastErr: unknown;
    for (let attempt = 0; attempt < 2; attempt++) {
      const slot = await this.#acquire();
      try {
        this.#onAttempt?.(slot.session, { eventId: ev.eventId, attempt });
        const { result, cleanup } = await runOnSlot(slot, ev, j, ps, {
          clock: this.#opts.clock,
          quietWindowMs: this.#opts.quietWindowMs,
          idleRealMs: this.#opts.idleRealMs,
          allowPrivateNetwork: this.#opts.allowPrivateNetwork,
          cache: this.#cache,
          logger: this.#log,
        });
        this.#stats.executed++;
        endTimer();
        m.events.inc({ result: attempt === 0 ? 'ok' : 'retried' });
        for (const t of result.trackers) m.outcomes.inc({ partner: t.partner, status: t.status });
        for (const q of result.requests) m.captured.inc({ partner: q.partner ?? '' });
        // The caller gets the result now; the tab is wiped before anyone else gets it.
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
      } catch (err) {
        lastErr = err;
        slot.dirty = true;
        slot.handler = null;
        this.#release(slot);
        if (this.#closed) break;
        if (attempt === 0) {
          this.#stats.retried++;
          this.#log.warn({ eventId: ev.eventId, err: err instanceof Error ? err.message : String(err) }, 'event retried on another tab');
        }
      }
    }
    if (this.#closed) throw new ExecutorUnavailableError('executor closed');
    m.events.inc({ result: 'failed' });
    throw new ExecutorFailedError(
      `executing event ${ev.eventId} failed after a retry: ${lastErr instanceof Error ? lastErr.message : String(lastErr)}`,
      { eventId: ev.eventId },
      { cause: lastErr },
    );
  }

  /** Closes every browser; pending and later calls fail with ExecutorUnavailableError. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
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
      const waiter = (slot: PooledSlot) => {
        clearTimeout(timer);
        resolve(slot);
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new ExecutorUnavailableError(`no browser tab free within ${this.#opts.acquireTimeoutMs} ms`, this.stats() as unknown as Record<string, unknown>));
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
    executorMetrics().pagesRecycled.inc();
    slot.owner.slots.delete(slot);
    const owner = slot.owner;
    slot.fail(new BrowserCrashedError('tab recycled'));
    void owner.session
      .send('Target.disposeBrowserContext', { browserContextId: slot.browserContextId })
      .catch(() => undefined)
      .then(() => this.#replaceSlot(owner, 0));
  }

  async #replaceSlot(owner: BrowserHandle, attempt: number): Promise<void> {
    try {
      const s = await this.#newSlot(owner);
      if (owner.dead || this.#closed) return;
      this.#offer(s);
    } catch (err) {
      if (owner.dead || this.#closed) return;
      this.#log.error({ err: String(err), attempt }, 'replacing a tab failed');
      if (attempt < 3) {
        await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
        return this.#replaceSlot(owner, attempt + 1);
      }
    }
  }

  async #launch(): Promise<void> {
    const id = this.#nextBrowserId++;
    const browser = await puppeteer.launch({
      executablePath: this.#opts.executablePath,
      headless: this.#opts.headless === 'shell' ? 'shell' : true,
      pipe: true,
      args: [...chromiumArgs({ headless: this.#opts.headless, sandbox: this.#opts.sandbox }), ...this.#opts.extraArgs],
      // navigator.webdriver is the visitor's (false); the automation banner flag is not needed.
      ignoreDefaultArgs: ['--enable-automation'],
      defaultViewport: null,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      protocolTimeout: 60_000,
    });
    const session = await browser.target().createCDPSession();
    const handle: BrowserHandle = {
      id,
      browser,
      session,
      slots: new Set(),
      dead: false,
      loseAll: (err) => {
        for (const s of handle.slots) s.fail(err);
      },
    };
    this.#browsers.add(handle);
    browser.on('disconnected', () => this.#onBrowserLost(handle));
    // Popups (target=_blank links, window.open through a frame) are closed at once.
    browser.on('targetcreated', (t) => {
      if (t.type() === 'page' && t.opener()) {
        t.createCDPSession()
          .then((s) => s.send('Page.close'))
          .catch(() => undefined);
      }
    });
    await session.send('Browser.setDownloadBehavior', { behavior: 'deny' }).catch(() => undefined);
    const slots = await Promise.all(Array.from({ length: this.#opts.pagesPerBrowser }, () => this.#newSlot(handle)));
    for (const s of slots) this.#offer(s);
    this.#log.info({ browser: id, chromiumPid: browser.process()?.pid, pages: slots.length, headless: this.#opts.headless }, 'browser started');
  }

  #onBrowserLost(handle: BrowserHandle): void {
    if (handle.dead) return;
    handle.dead = true;
    this.#browsers.delete(handle);
    handle.loseAll(new BrowserCrashedError('browser disconnected', { browser: handle.id }));
    for (let i = this.#idle.length - 1; i >= 0; i--) if (this.#idle[i]?.owner === handle) this.#idle.splice(i, 1);
    if (this.#closed) return;
    this.#stats.browsersReplaced++;
    executorMetrics().browsersReplaced.inc();
    this.#log.error({ browser: handle.id }, 'browser lost; replacing it');
    handle.browser.process()?.kill('SIGKILL');
    void this.#relaunch(0);
  }

  async #relaunch(attempt: number): Promise<void> {
    try {
      await this.#launch();
    } catch (err) {
      this.#log.error({ err: String(err), attempt }, 'relaunching a browser failed');
      if (this.#closed || attempt >= 5) return;
      await new Promise((r) => setTimeout(r, 1000 * 2 ** attempt));
      return this.#relaunch(attempt + 1);
    }
  }

  async #newSlot(owner: BrowserHandle): Promise<PooledSlot> {
    const bs = owner.session;
    const { browserContextId } = await bs.send('Target.createBrowserContext', { disposeOnDetach: true });
    const { targetId } = await bs.send('Target.createTarget', { url: 'about:blank', browserContextId });
    const { sessionId } = await bs.send('Target.attachToTarget', { targetId, flatten: true });
    const session = bs.connection()?.session(sessionId);
    if (!session) throw new ExecutorUnavailableError('no CDP session for a new tab', { targetId });
    let fail!: (err: Error) => void;
    const lost = new Promise<never>((_, reject) => {
      fail = reject;
    });
    lost.catch(() => undefined); // observed by runs through Promise.race only
    const slot: PooledSlot = {
      id: randomUUID().slice(0, 8),
      targetId,
      browserContextId,
      session,
      browserSession: bs,
      lost,
      applied: new Map(),
      handler: null,
      uses: 0,
      dirty: false,
      bootstrapInjected: false,
      workerFetch: null,
      workerEnv: null,
      frameToken: randomUUID().replace(/-/g, ''),
      owner,
      fail: (err) => fail(err),
    };
    session.on('Fetch.requestPaused', (ev: Protocol.Fetch.RequestPausedEvent) => {
      if (slot.handler) {
        slot.handler(ev);
        return;
      }
      // Leftovers of a finished visit never leave.
      session.send('Fetch.failRequest', { requestId: ev.requestId, errorReason: 'BlockedByClient' }).catch(() => undefined);
    });
    // Dedicated workers start paused (auto-attach below): a hook marks their fetch() calls, which
    // the Fetch domain reports as XHR like the worker's real XHRs. Costs CDP messages only for a
    // visit that starts a worker.
    session.on('Target.attachedToTarget', (ev: Protocol.Target.AttachedToTargetEvent) => {
      const ws = session.connection()?.session(ev.sessionId);
      if (!ws) return;
      if (ev.targetInfo.type !== 'worker') {
        ws.send('Runtime.runIfWaitingForDebugger').catch(() => undefined);
        return;
      }
      ws.on('Runtime.bindingCalled', (b: Protocol.Runtime.BindingCalledEvent) => {
        if (b.name === WORKER_BINDING) slot.workerFetch?.(b.payload);
      });
      void ws
        .send('Runtime.addBinding', { name: WORKER_BINDING })
        .then(() => ws.send('Runtime.evaluate', { expression: workerHook(slot.workerEnv) }))
        .catch(() => undefined)
        .finally(() => ws.send('Runtime.runIfWaitingForDebugger').catch(() => undefined));
    });
    session.on('Inspector.targetCrashed', () => {
      slot.dirty = true;
      fail(new BrowserCrashedError('renderer crashed', { slot: slot.id }));
    });
    await Promise.all([
      session.send('Fetch.enable', { patterns: [{ urlPattern: '*', requestStage: 'Request' }] }),
      // Once per tab, not per view; without it documents inline the bootstrap (same behaviour).
      // The renderer runs such scripts only with the Page domain enabled: its events (a handful
      // per navigation) cost less than the inline bootstrap (measured: renderer 31-35 -> 25-28,
      // whole tree 64-72 -> 59-64 ms per view, small-tag workload, alternating runs).
      session
        .send('Page.enable')
        .then(() =>
          Promise.all([
            session.send('Page.addScriptToEvaluateOnNewDocument', { source: BOOTSTRAP_INJECTION }),
            // Partner frames' localStorage from and to the jar (page-run.ts); returns at once
            // in the top-level document.
            session.send('Page.addScriptToEvaluateOnNewDocument', { source: frameStorageInjection(slot.frameToken) }),
          ]),
        )
        .then(
        () => {
          slot.bootstrapInjected = true;
        },
        (err: unknown) => this.#log.warn({ err: String(err) }, 'bootstrap injection unavailable; inlining it'),
      ),
      session.send('Inspector.enable'),
      session.send('Target.setAutoAttach', {
        autoAttach: true,
        waitForDebuggerOnStart: true,
        flatten: true,
        filter: [{ type: 'worker', exclude: false }, { exclude: true }],
      }),
      session.send('Emulation.setFocusEmulationEnabled', { enabled: true }).catch(() => undefined),
      bs.send('Browser.setDownloadBehavior', { behavior: 'deny', browserContextId }).catch(() => undefined),
      ...DENIED_PERMISSIONS.map((name) =>
        bs
          .send('Browser.setPermission', { permission: { name }, setting: 'denied', browserContextId })
          .catch(() => undefined),
      ),
    ]);
    owner.slots.add(slot);
    return slot;
  }
}

/** Starts a pool (see ExecutorOptions); close it with `executor.close()`. */
export function createExecutor(opts: ExecutorOptions = {}): Promise<Executor> {
  return Executor.start(opts);
}
