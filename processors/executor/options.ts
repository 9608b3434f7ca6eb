/**
 * The pool's options and their defaults, in one place: validated-by-type at the edge, then
 * trusted inside (pool.ts works on PoolSettings only).
 */
import type { CDPSession } from 'puppeteer-core';
import type { Registry } from 'prom-client';
import { DEFAULT_JAR_BUDGET, jarBudgetSchema, type JarBudget } from '../../core/contracts/jar-budget.ts';
import { parseWith } from '../../core/contracts/parse.ts';
import type { Logger } from '../../core/log.ts';
import { CHROMIUM_PATH, HEADLESS_SHELL_PATH, runningAsRoot } from './browser.ts';
import type { ScriptCache, ScriptCacheOptions } from './script-cache.ts';

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
   * End each visit as a closed tab with trusted beforeunload → visibilitychange → pagehide → unload
   * (page/leave.ts), for SDKs that ignore untrusted lifecycle events. Default false: the events are
   * dispatched from script, at ~30% less CPU per view (docs/executor.md "When an event ends").
   */
  trustedClose?: boolean;
  /**
   * Plain `fetch` and `sendBeacon` sends to a partner's `captureHosts` are taken in the page from
   * the Request the browser builds and never enter Chromium's network stack (inject/capture.js);
   * the captured record is the same (docs/executor.md "In-page capture"). Default true.
   */
  inPageCapture?: boolean;
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
  /** An existing cache to share, or options for the executor's own (registered on `registry`). */
  scriptCache?: ScriptCache | Omit<ScriptCacheOptions, 'allowPrivateNetwork' | 'logger' | 'registry'>;
  logger?: Logger;
  /**
   * What a returned jar may hold (default DEFAULT_JAR_BUDGET): every jar `execute` returns is cut
   * to it, the entries dropped reported in the partners' outcome warnings (docs/executor.md).
   */
  jarBudget?: JarBudget;
  /** Where the executor's metrics are registered (default: prom-client's default `register`). */
  registry?: Registry;
  /**
   * Called with the tab's CDP session as each attempt of an event starts (fault injection in
   * tests, diagnostics); not on the common path unless set.
   */
  onAttempt?: (session: CDPSession, info: { eventId: string; attempt: number }) => void;
}


/** ExecutorOptions with every default applied. */
export type PoolSettings = Required<Omit<ExecutorOptions, 'scriptCache' | 'logger' | 'executablePath' | 'extraArgs' | 'onAttempt' | 'registry'>> & {
  executablePath: string;
  extraArgs: string[];
};

export function settingsOf(opts: ExecutorOptions): PoolSettings {
  const headless = opts.headless ?? 'shell';
  return {
    browsers: Math.max(1, opts.browsers ?? 1),
    pagesPerBrowser: Math.max(1, opts.pagesPerBrowser ?? 2),
    maxUsesPerPage: Math.max(1, opts.maxUsesPerPage ?? 200),
    headless,
    executablePath: opts.executablePath ?? (headless === 'shell' ? HEADLESS_SHELL_PATH : CHROMIUM_PATH),
    allowPrivateNetwork: opts.allowPrivateNetwork ?? false,
    sandbox: opts.sandbox ?? !runningAsRoot(),
    quietWindowMs: opts.quietWindowMs ?? 5000,
    trustedClose: opts.trustedClose ?? false,
    inPageCapture: opts.inPageCapture ?? true,
    clock: opts.clock ?? 'fake-timers',
    acquireTimeoutMs: opts.acquireTimeoutMs ?? 60_000,
    idleRealMs: opts.idleRealMs ?? 15,
    extraArgs: opts.extraArgs ?? [],
    // Validated here too: a pool built in code, not from the validated settings, gets the same
    // bounds (InvalidInputError naming the field).
    jarBudget: opts.jarBudget === undefined ? DEFAULT_JAR_BUDGET : parseWith(jarBudgetSchema, 'jarBudget', opts.jarBudget),
  };
}

