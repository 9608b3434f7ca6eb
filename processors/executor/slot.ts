/**
 * One pooled tab: its own browser context (cookies of concurrent visitors must not meet), a
 * flat CDP session with request interception, the per-tab in-page scripts (in-page.ts), and
 * dedicated workers attached paused so their hook runs first.
 */
import { randomUUID } from 'node:crypto';
import type { CDPSession, Protocol } from 'puppeteer-core';
import { untilAborted, withTimeout } from '../../core/async.ts';
import { BrowserCrashedError, ExecutorUnavailableError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { BOOTSTRAP_INJECTION, frameStorageInjection, LEAVE_BINDING, WORKER_BINDING, workerHook } from './in-page.ts';
import type { WorkerEnv } from './inject/worker-hook.js';

export interface Slot {
  readonly id: string;
  readonly targetId: string;
  readonly browserContextId: string;
  readonly session: CDPSession;
  readonly browserSession: CDPSession;
  /** Aborted, with a BrowserCrashedError as reason, when the browser or this tab's renderer is lost. */
  readonly signal: AbortSignal;
  /** Emulation already applied to the tab, by kind, to skip identical commands. */
  readonly applied: Map<string, string>;
  handler: ((ev: Protocol.Fetch.RequestPausedEvent) => void) | null;
  uses: number;
  /** Must be replaced before its next event (error, terminated script, renderer hang). */
  dirty: boolean;
  /** BOOTSTRAP_INJECTION is registered on the tab: documents call it instead of inlining it. */
  bootstrapInjected: boolean;
  /** Called with the URL of each fetch() a dedicated worker of the current visit makes. */
  workerFetch: ((url: string) => void) | null;
  /** Secret path segment of the frame storage exchange (inject/frame-storage.js). */
  readonly frameToken: string;
  /** The current visit's navigator values for its workers. */
  workerEnv: WorkerEnv | null;
  /** Called with each Web Storage change the tab's renderer reports (page/storage-journal.ts). */
  storageChange: ((c: StorageChange) => void) | null;
  /** Called with each message of the page's leave binding (page/leave.ts). */
  leaveMessage: ((payload: string) => void) | null;
  /** Called with each send the page took itself (inject/capture.js, Router.fromPage). */
  pageCapture: ((payload: string) => void) | null;
  /** Visits end as a closed tab (page/leave.ts). */
  readonly trustedClose: boolean;
  /** The tab's window, minimized for good (-1: none; page/leave.ts cannot hide the page then). */
  windowId: number;
  /** The closing tab's window is minimized (page/leave.ts): shown again before the next visitor. */
  hiddenTab: boolean;
}

/**
 * One change of Web Storage as CDP DOMStorage reports it: after the task that made it, so a
 * later hang of the page cannot lose it (a hang in the same task can).
 */
export interface StorageChange {
  storageId: Protocol.DOMStorage.StorageId;
  change: 'set' | 'remove' | 'clear';
  key: string;
  value: string;
}

/** A slot as the pool holds it: `fail` marks it lost (its signal aborts with `err`). */
export interface OpenedSlot extends Slot {
  fail(err: Error): void;
}

/**
 * `p`, bounded by `ms` (TimeoutError) and by the loss of the tab (its BrowserCrashedError): a CDP
 * command to a dead renderer must not hold an event.
 */
export function onSlot<T>(slot: Pick<Slot, 'signal'>, what: string, ms: number, p: Promise<T>): Promise<T> {
  return withTimeout(what, Math.max(1, ms), () => untilAborted(p, slot.signal, what));
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

/** Opens a tab in a new browser context of the browser behind `bs` and makes it ready for events. */
/**
 * `trustedClose`: the tab can end a visit as a closed tab with trusted lifecycle events
 * (page/leave.ts): the Runtime domain for the leave binding, and the window minimized for good.
 * Off, a visit ends with the lifecycle events dispatched from script (untrusted), at less cost.
 */
export async function openSlot(bs: CDPSession, log: Logger, trustedClose = false, inPageCapture = false): Promise<OpenedSlot> {
  const { browserContextId } = await bs.send('Target.createBrowserContext', { disposeOnDetach: true });
  const { targetId } = await bs.send('Target.createTarget', { url: 'about:blank', browserContextId });
  const { sessionId } = await bs.send('Target.attachToTarget', { targetId, flatten: true });
  const session = bs.connection()?.session(sessionId);
  if (!session) throw new ExecutorUnavailableError('no CDP session for a new tab', { targetId });
  const lost = new AbortController();
  const slot: OpenedSlot = {
    id: randomUUID().slice(0, 8),
    targetId,
    browserContextId,
    session,
    browserSession: bs,
    signal: lost.signal,
    applied: new Map(),
    handler: null,
    uses: 0,
    dirty: false,
    bootstrapInjected: false,
    workerFetch: null,
    workerEnv: null,
    storageChange: null,
    leaveMessage: null,
    pageCapture: null,
    trustedClose,
    windowId: -1,
    hiddenTab: false,
    frameToken: randomUUID().replace(/-/g, ''),
    fail: (err) => lost.abort(err),
  };
  session.on('Fetch.requestPaused', (ev: Protocol.Fetch.RequestPausedEvent) => {
    if (slot.handler) {
      slot.handler(ev);
      return;
    }
    // Leftovers of a finished visit never leave.
    session.send('Fetch.failRequest', { requestId: ev.requestId, errorReason: 'BlockedByClient' }).catch(() => undefined);
  });
  watchStorage(slot);
  session.on('Runtime.bindingCalled', (b: Protocol.Runtime.BindingCalledEvent) => {
    if (b.name !== LEAVE_BINDING) return;
    // "c:…": a send taken in the page (inject/capture.js); anything else is the closing tab's.
    if (b.payload.startsWith('c:')) slot.pageCapture?.(b.payload.slice(2));
    else slot.leaveMessage?.(b.payload);
  });
  session.on('Target.attachedToTarget', (ev: Protocol.Target.AttachedToTargetEvent) => hookWorker(slot, ev));
  session.on('Inspector.targetCrashed', () => {
    slot.dirty = true;
    slot.fail(new BrowserCrashedError('renderer crashed', { slot: slot.id }));
  });
  await Promise.all([
    session.send('Fetch.enable', { patterns: [{ urlPattern: '*', requestStage: 'Request' }] }),
    injectScripts(slot, log),
    // Storage changes as they happen: what the jar keeps when the page cannot be read at the end.
    session.send('DOMStorage.enable'),
    // Bindings reach new documents only with the Runtime domain enabled.
    // The page's channel (trusted close, in-page capture): without it inject/capture.js stays off.
    trustedClose || inPageCapture ? enableBinding(session) : Promise.resolve(),
    // Minimized for good: focus emulation (below) keeps the page visible; page/leave.ts turns it
    // off to hide the page when the tab closes.
    trustedClose
      ? bs
          .send('Browser.getWindowForTarget', { targetId })
          .then((w) => bs.send('Browser.setWindowBounds', { windowId: w.windowId, bounds: { windowState: 'minimized' } }).then(() => w.windowId))
          .then((id) => {
            slot.windowId = id;
          })
          .catch((err: unknown) => log.warn({ err: String(err) }, 'no window to minimize: closing tabs fire visibilitychange after pagehide'))
      : Promise.resolve(),
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
      bs.send('Browser.setPermission', { permission: { name }, setting: 'denied', browserContextId }).catch(() => undefined),
    ),
  ]);
  return slot;
}

/**
 * The Runtime domain, for the page's binding. Enabled, it also makes V8 record a detailed stack
 * (up to 200 frames, with source positions) with every Error the page creates, for DevTools'
 * uncaught-exception reports, which the executor never reads; the tags' own Errors and the
 * attribution's (inject/context.js) paid it on every view. Size 0 turns that off for the tab's
 * renderer, as in a browser without DevTools. Measured (alternating rounds, in-page capture
 * off on both sides, bench/executor/results/ab-2026-12-02-runtime-stack-capture.txt): with
 * the capture, three SDKs 132 -> 109 ms CPU per view against no Runtime domain at all; with
 * size 0, 93 against 102.
 */
async function enableBinding(session: CDPSession): Promise<void> {
  await session.send('Runtime.enable');
  await session.send('Runtime.setMaxCallStackSizeToCapture', { size: 0 });
  await session.send('Runtime.addBinding', { name: LEAVE_BINDING });
}

/** Forwards the tab's DOMStorage events to the current visit (none between visits). */
function watchStorage(slot: Slot): void {
  const s = slot.session;
  const emit = (c: StorageChange): void => slot.storageChange?.(c);
  s.on('DOMStorage.domStorageItemAdded', (e: Protocol.DOMStorage.DomStorageItemAddedEvent) =>
    emit({ storageId: e.storageId, change: 'set', key: e.key, value: e.newValue }),
  );
  s.on('DOMStorage.domStorageItemUpdated', (e: Protocol.DOMStorage.DomStorageItemUpdatedEvent) =>
    emit({ storageId: e.storageId, change: 'set', key: e.key, value: e.newValue }),
  );
  s.on('DOMStorage.domStorageItemRemoved', (e: Protocol.DOMStorage.DomStorageItemRemovedEvent) =>
    emit({ storageId: e.storageId, change: 'remove', key: e.key, value: '' }),
  );
  s.on('DOMStorage.domStorageItemsCleared', (e: Protocol.DOMStorage.DomStorageItemsClearedEvent) =>
    emit({ storageId: e.storageId, change: 'clear', key: '', value: '' }),
  );
}

/**
 * Once per tab, not per view; without it documents inline the bootstrap (same behaviour). The
 * renderer runs such scripts only with the Page domain enabled: its events (a handful per
 * navigation) cost less than the inline bootstrap (measured: renderer 31-35 -> 25-28, whole tree
 * 64-72 -> 59-64 ms per view, small-tag workload, alternating runs).
 */
async function injectScripts(slot: Slot, log: Logger): Promise<void> {
  const { session } = slot;
  try {
    await session.send('Page.enable');
    await Promise.all([
      session.send('Page.addScriptToEvaluateOnNewDocument', { source: BOOTSTRAP_INJECTION }),
      // Partner frames' localStorage from and to the jar (page/frame-storage.ts); returns at
      // once in the top-level document.
      session.send('Page.addScriptToEvaluateOnNewDocument', { source: frameStorageInjection(slot.frameToken) }),
    ]);
    slot.bootstrapInjected = true;
  } catch (err) {
    log.warn({ err: String(err) }, 'bootstrap injection unavailable; inlining it');
  }
}

/**
 * Dedicated workers start paused (auto-attach): a hook marks their fetch() calls, which the Fetch
 * domain reports as XHR like the worker's real XHRs. Costs CDP messages only for a visit that
 * starts a worker.
 */
function hookWorker(slot: Slot, ev: Protocol.Target.AttachedToTargetEvent): void {
  const ws = slot.session.connection()?.session(ev.sessionId);
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
}
