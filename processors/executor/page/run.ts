/**
 * One event on one pooled tab, through a lean CDP session (no Network domain: the prototypes
 * measured ~80 CDP messages per view with Puppeteer's Page against ~10 raw commands here, and
 * CDP traffic is most of the per-view cost).
 *
 * Sequence: emulation (only what changed since the tab's previous event) → the jar's cookies →
 * Page.navigate to event.page.url, whose request the router fulfills with the synthetic document
 * (document.ts) → the page settles (watchdog.ts) → the tab closes for real (leave.ts) → the jar is captured (capture.ts: the page's
 * report, partner frames' localStorage, cookies; what cannot be read keeps the jar's values and
 * the writes seen) → attribution and outcomes (attribution.ts) → after the result is returned,
 * the visitor's state is wiped from the tab. The pool applies the jar budget (jar-limits.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Protocol } from 'puppeteer-core';
import { TimeoutError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/log.ts';
import { emulationFor, type EmulationParams } from '../emulation.ts';
import type { ExecutorMetrics } from '../metrics.ts';
import type { ScriptCache } from '../script-cache.ts';
import { consentGranted, type ExecuteResult, type Jar, type PageViewEvent, type PartnerConfig } from '../schemas.ts';
import { onSlot, type Slot } from '../slot.ts';
import { attributeRequests, outcomes, singlePartner, type PageReport } from './attribution.ts';
import { captureJar } from './capture.ts';
import { bootConfig, synthesizeDocument } from './document.ts';
import { FrameExchange, type FrameStorage } from './frame-storage.ts';
import { NO_WRITERS, partialWarnings, withWarnings, type PartialRead, type Writers } from './jar-attribution.ts';
import { toCookieParam } from './jar.ts';
import { closeTab, resetHistory, showTab } from './leave.ts';
import { policyOf, Router, stripHash } from './router.ts';
import { StorageJournal } from './storage-journal.ts';
import { drainLoads, runVirtualTime, settlePage, Watchdog } from './watchdog.ts';

export interface RunSettings {
  /**
   * `fake-timers` (default): the injected clock of inject/bootstrap.js. `cdp-virtual-time`:
   * Chromium's virtual time policy (experimental, kept to compare both: docs/executor.md).
   */
  clock: 'fake-timers' | 'cdp-virtual-time';
  quietWindowMs: number;
  /** Real time the page must stay quiet before an event ends (promise chains outside timers). */
  idleRealMs: number;
  /** Plain fetch/sendBeacon sends are taken in the page (inject/capture.js). */
  inPageCapture: boolean;
  allowPrivateNetwork: boolean;
  cache: ScriptCache;
  logger: Logger;
  metrics: ExecutorMetrics;
}

export interface PageRun {
  result: ExecuteResult;
  /** Wipes the visitor's state from the tab; the pool calls it after handing out the result. */
  cleanup: () => Promise<void>;
  /** Who wrote the page's cookies and localStorage keys (the jar budget's attribution). */
  writers: Readonly<Writers>;
}

/** One visit's moving parts, made before the navigation. */
interface Visit {
  t0: number;
  runId: string;
  pageUrl: URL;
  leaveUrl: string;
  active: PartnerConfig[];
  activeIds: Set<string>;
  maxTimeout: number;
  emulation: EmulationParams;
  router: Router;
  frames: FrameExchange;
  watchdog: Watchdog;
  workerFetches: string[];
  journal: StorageJournal;
}

function prepare(slot: Slot, event: PageViewEvent, jar: Jar, partners: readonly PartnerConfig[], settings: RunSettings): Visit {
  const t0 = Date.now();
  const active = partners.filter((p) => consentGranted(p, event.consent));
  const runId = randomUUID();
  const pageUrl = new URL(event.page.url);
  const barrierUrl = `${pageUrl.origin}/__tagstream_barrier__/${runId}`;
  const leaveUrl = `${pageUrl.origin}/__tagstream_leave__/${runId}`;
  const emulation = emulationFor(event);
  const config = bootConfig({
    runId,
    event,
    emulation,
    active,
    jar,
    barrierUrl,
    idleRealMs: settings.idleRealMs,
    inPageCapture: settings.inPageCapture,
    trustedClose: slot.trustedClose,
    cdpTime: settings.clock === 'cdp-virtual-time',
  });
  const frames = new FrameExchange(slot.frameToken, jar);
  const router = new Router({
    slot,
    active,
    policy: policyOf(active),
    navUrl: stripHash(pageUrl.href),
    barrierUrl,
    leaveUrl,
    documentHtml: Buffer.from(synthesizeDocument(event, active, config, slot.bootstrapInjected), 'utf8'),
    frames,
    userAgent: event.device.userAgent,
    cache: settings.cache,
    log: settings.logger,
    onPageCapture: (transport) => settings.metrics.inPageCaptured.inc({ transport }),
  });
  // The main thread is considered stuck when it does not answer a ping for the tightest budget
  // of the page's partners; the code that was running is identified after termination.
  const blockedMs = Math.min(...active.map((p) => p.timeoutMs));
  const watchdog = new Watchdog(slot, runId, blockedMs, settings.logger, settings.metrics);
  const workerFetches: string[] = [];
  slot.workerEnv = { hardwareConcurrency: emulation.hardwareConcurrency, deviceMemory: emulation.deviceMemory };
  slot.workerFetch = (url) => {
    if (workerFetches.length < 2000) workerFetches.push(url);
  };
  slot.handler = router.handle;
  slot.pageCapture = router.fromPage;
  const journal = new StorageJournal();
  slot.storageChange = journal.record;
  const maxTimeout = Math.max(...active.map((p) => p.timeoutMs));
  const activeIds = new Set(active.map((p) => p.id));
  return { t0, runId, pageUrl, leaveUrl, active, activeIds, maxTimeout, emulation, router, frames, watchdog, workerFetches, journal };
}

/** Runs one event; throws only when the tab or its browser is lost (the pool retries then). */
export async function runOnSlot(
  slot: Slot,
  event: PageViewEvent,
  jar: Jar,
  partners: readonly PartnerConfig[],
  settings: RunSettings,
): Promise<PageRun> {
  const v = prepare(slot, event, jar, partners, settings);
  const log = settings.logger;
  // Normally restored by the previous visit's wipe; a hidden page must not start a visit.
  if (slot.hiddenTab) await onSlot(slot, 'showing the tab', 5000, showTab(slot));
  await applyEmulation(slot, v.emulation);
  if (jar.cookies.length > 0) {
    const cookies = jar.cookies.map(toCookieParam);
    await onSlot(slot, 'Storage.setCookies', 5000, slot.browserSession.send('Storage.setCookies', { cookies, browserContextId: slot.browserContextId }));
  }
  const navError = await navigate(slot, event, log);
  if (settings.clock === 'cdp-virtual-time' && !navError) await runVirtualTime(slot, Date.parse(event.timestamp), v.maxTimeout);
  const quietMs = settings.clock === 'cdp-virtual-time' ? 0 : Math.min(settings.quietWindowMs, v.maxTimeout);
  const settled = navError ? null : await settlePage(v.watchdog, { runId: v.runId, quietMs, maxMs: v.maxTimeout, deadline: v.t0 + v.maxTimeout });
  const report =
    settled === 'armed' ? await closeTab(slot, v.router, v.frames, { leaveUrl: v.leaveUrl, hideWallMs: 800, pageOrigin: v.pageUrl.origin }) : settled;
  await drainLoads(() => v.router.inflightLoads);

  const hung = v.watchdog.hung;
  const captured = await captureJar({
    slot,
    pageUrl: v.pageUrl,
    jar,
    report,
    hung,
    navError,
    frameOrigins: v.router.frameOrigins,
    snapshots: v.frames.snapshots,
    journal: v.journal,
    active: v.active,
    log,
  }).finally(() => {
    slot.handler = null;
    slot.pageCapture = null;
    slot.workerFetch = null;
    slot.storageChange = null;
  });
  if (hung || !report) slot.dirty = true;

  const result = resultOf(v, partners, report, navError, captured.jar, captured.partial);
  log.debug(
    { eventId: event.eventId, requests: result.requests.length, ms: Date.now() - v.t0, terminations: v.watchdog.terminations, hung },
    'event executed',
  );
  const cookiesInBrowser = jar.cookies.length > 0 || captured.cookiesMayChange;
  const writers = report?.writers ?? NO_WRITERS;
  return { result, writers, cleanup: () => wipe(slot, v, report, captured.frames, cookiesInBrowser, settled === 'armed') };
}

/** Page.navigate to the visitor's URL (the router fulfills it); the failure's text, if any. */
async function navigate(slot: Slot, event: PageViewEvent, log: Logger): Promise<string | undefined> {
  const params: Protocol.Page.NavigateRequest = { url: event.page.url };
  if (event.page.referrer) {
    params.referrer = event.page.referrer;
    params.referrerPolicy = 'unsafeUrl';
  }
  const nav = await onSlot(slot, 'Page.navigate', 10_000, slot.session.send('Page.navigate', params)).catch((err: unknown) => {
    if (err instanceof TimeoutError) return { errorText: 'navigation timed out' } as Protocol.Page.NavigateResponse;
    throw err;
  });
  if (!nav.errorText) return undefined;
  slot.dirty = true;
  log.warn({ errorText: nav.errorText }, 'synthetic navigation failed');
  return nav.errorText;
}

function resultOf(
  v: Visit,
  partners: readonly PartnerConfig[],
  report: PageReport | null,
  navError: string | undefined,
  jar: Jar,
  partial: readonly PartialRead[],
): ExecuteResult {
  const { requests, lastAt } = attributeRequests(v.router.captured, report?.hints ?? [], v.workerFetches, v.activeIds, singlePartner(v.active));
  const trackers = outcomes(partners, v.activeIds, {
    t0: v.t0,
    end: Date.now(),
    report,
    lastAt,
    terminatedAt: v.watchdog.terminatedAt,
    suspects: v.watchdog.suspects,
    hung: v.watchdog.hung,
    navError,
  });
  const capture = partialWarnings(partial, policyOf(v.active), v.pageUrl.origin, [...v.activeIds]);
  return { requests, jar, trackers: withWarnings(trackers, capture) };
}

/**
 * localStorage, sessionStorage and window.name were cleared in the page by collect() and are
 * cleared again by the next visitor's bootstrap; the rest is wiped here, only if touched (each
 * CDP command costs).
 */
async function wipe(slot: Slot, v: Visit, report: PageReport | null, frames: FrameStorage, cookiesInBrowser: boolean, closed: boolean): Promise<void> {
  if (slot.dirty) return; // the tab is discarded anyway
  const s = slot.session;
  const origins = v.router.frameOrigins;
  const jobs: Promise<unknown>[] = [];
  if (cookiesInBrowser) jobs.push(slot.browserSession.send('Storage.clearCookies', { browserContextId: slot.browserContextId }));
  if (!report || report.storageUsed || origins.size > 1) {
    for (const origin of origins) jobs.push(s.send('Storage.clearDataForOrigin', { origin, storageTypes: 'all' }));
  }
  // Partner frames' partitioned storage (loaded this visit or restored from the jar).
  for (const storageKey of frames.keys.values()) jobs.push(s.send('Storage.clearDataForStorageKey', { storageKey, storageTypes: 'all' }));
  // Every visit adds its page and the closing tab's document (leave.ts) to the tab's history:
  // history.length would count the visitors before.
  jobs.push(resetHistory(slot, closed ? v.leaveUrl : null));
  if (slot.hiddenTab) jobs.push(showTab(slot));
  if (jobs.length > 0) await onSlot(slot, 'wiping the tab', 5000, Promise.all(jobs));
}

/** Applies the visitor's device, skipping what the tab already has from its previous event. */
async function applyEmulation(slot: Slot, emu: EmulationParams): Promise<void> {
  const s = slot.session;
  const jobs: Promise<unknown>[] = [];
  const once = (kind: string, value: unknown, apply: () => Promise<unknown>): void => {
    const key = JSON.stringify(value);
    if (slot.applied.get(kind) === key) return;
    slot.applied.set(kind, key);
    jobs.push(apply());
  };
  once('ua', emu.userAgent, () => s.send('Emulation.setUserAgentOverride', emu.userAgent));
  once('metrics', emu.metrics, () => s.send('Emulation.setDeviceMetricsOverride', emu.metrics));
  once('tz', emu.timezoneId, async () => {
    try {
      await s.send('Emulation.setTimezoneOverride', { timezoneId: emu.timezoneId });
    } catch {
      // An unknown zone id must not fail the visit: fall back to UTC and let the next event retry.
      slot.applied.delete('tz');
      await s.send('Emulation.setTimezoneOverride', { timezoneId: 'UTC' }).catch(() => undefined);
    }
  });
  once('locale', emu.locale, async () => {
    try {
      await s.send('Emulation.setLocaleOverride', { locale: emu.locale });
    } catch {
      slot.applied.delete('locale');
    }
  });
  if (jobs.length > 0) await onSlot(slot, 'emulation', 5000, Promise.all(jobs));
}
