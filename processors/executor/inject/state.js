/**
 * What every in-page module of the bootstrap shares: the visit's config, the page's record for
 * the executor (`window.__tagstream`), and the browser's own functions taken before any tag runs.
 *
 * Rules for the files of inject/ (in-page.ts concatenates them into one function scope): only
 * imports from './x.js' and function declarations at the top level, each function name unique
 * across the folder; plain ES2020, no template literals.
 */
/** @import { ContextRef } from './context.js' */

/**
 * What the executor tells the page about one visit (built by page/document.ts).
 * @typedef {object} BootConfig
 * @property {string} runId
 * @property {number} startMs page time at the start: the event's timestamp
 * @property {unknown} data `event.data`, the first `dataLayer` entry
 * @property {string} referrer
 * @property {{ width: number, height: number, colorDepth: number }} screen
 * @property {{ width: number, height: number }} viewport
 * @property {boolean} mobile
 * @property {string[]} languages
 * @property {string | undefined} language
 * @property {boolean} noUserAgentData the user agent is not Chromium's: no navigator.userAgentData
 * @property {number} hardwareConcurrency
 * @property {number | null} deviceMemory null: the browser has none (Firefox, Safari)
 * @property {Record<string, string>} localStorage the page origin's entry of the jar
 * @property {{ partner: string, entry: string, kind: 'allow' | 'capture' }[]} policy every active partner's allowHosts and captureHosts
 * @property {boolean} trustedClose the executor closes the tab for real (page/leave.ts): the page arms its leave report
 * @property {boolean} inPageCapture plain fetch and sendBeacon sends are taken in the page (capture.js)
 * @property {string[]} responsePrefixes URL prefixes of partners' configured responses (those sends go through the browser)
 * @property {number} realTimerMaxMs timers up to this delay also run on real time
 * @property {number} pendingExpiryMs an in-flight request older than this stops holding the page open
 * @property {number} idleRealMs real time the page must stay quiet (promise chains outside timers)
 * @property {number} hideQuietMs page time after pagehide for what it sends
 * @property {string} barrierUrl
 * @property {boolean} cdpTime the experimental CDP virtual-time clock drives Date and timers
 */

/**
 * @typedef {{ url: string, partner: string | null, transport: string }} Hint
 * @typedef {{ begin: number, beginPerf: number, end: number }} Mark
 * @typedef {{ ctx: string | null, start: number }} Running
 * @typedef {'cookieStoreUsed' | 'storageUsed' | 'historyUsed'} TouchFlag
 */

/**
 * `window.__tagstream`: what the page records for the executor (page/attribution.ts reads it).
 * @typedef {object} PageState
 * @property {string} runId
 * @property {string | null} current the partner whose document section the parser is in
 * @property {Running | null} running the timer or listener callback being run, and by whom
 * @property {{ partner: string | null, message: string }[]} errors
 * @property {Record<string, Mark>} marks
 * @property {Hint[]} hints
 * @property {{ kind: string, start: number }[]} pending
 * @property {boolean} killed
 * @property {Record<string, boolean>} dead partners whose code was terminated: their timers never run again
 * @property {Record<string, boolean>} timedOut
 * @property {(string | null)[]} stuck callbacks that never returned
 * @property {number} loadedAt
 * @property {number} cookieWrites
 * @property {boolean} cookieStoreUsed
 * @property {boolean} storageUsed
 * @property {boolean} historyUsed
 * @property {number} untracked requests the page cannot see complete (beacons, keepalive)
 * @property {number} inPage sends taken in the page (capture.js): hinted, never at the interceptor
 * @property {Writers} writers who wrote the page's cookies and localStorage keys
 * @property {string | null} report what collect() returned, once made
 * @property {number} leaveFrom hints before the tab started closing (the executor waits for the later ones)
 * @property {(() => void) | null} onWork called when a request starts or settles or a timer is set (the settle loop's wake-up)
 */

/**
 * The partner whose code last wrote each cookie (by name) and each localStorage key of the page
 * (null-prototype maps: names come from tags): the executor reports the entries its jar budget
 * drops to that partner.
 * @typedef {{ cookies: Record<string, ContextRef[]>, localStorage: Record<string, ContextRef[]>, count: number }} Writers
 */

/**
 * The browser's own functions, taken before any tag can replace them.
 * @typedef {object} Realm
 * @property {(fn: () => void, ms: number) => unknown} setTimeout
 * @property {typeof fetch} fetch
 * @property {DateConstructor} Date
 * @property {() => number} dateNow
 * @property {() => number} perfNow
 * @property {((message: string) => void) | null} leave the tab's CDP binding (slot.ts LEAVE_BINDING):
 *   how the page reports while its document is going away, when CDP evaluations are not answered
 */

/** @returns {Realm} */
export function takeRealm() {
  var W = window;
  var perf = W.performance;
  var rec = windowRecord();
  var lb = rec.__tagstream_leave;
  /** @type {((message: string) => void) | null} */
  var leave = null;
  if (typeof lb === 'function') {
    var bound = lb;
    leave = function (message) { Reflect.apply(bound, W, [message]); };
    // Tags must not see the binding (the frame-storage injection removes it from frames).
    delete rec.__tagstream_leave;
  }
  return { setTimeout: W.setTimeout.bind(W), fetch: W.fetch.bind(W), Date: W.Date, dateNow: W.Date.now.bind(W.Date), perfNow: perf.now.bind(perf), leave: leave };
}

/**
 * @param {string} runId
 * @returns {PageState}
 */
export function newState(runId) {
  return { runId: runId, current: null, running: null, errors: [], marks: {}, hints: [], pending: [],
           killed: false, dead: {}, timedOut: {}, stuck: [], loadedAt: 0,
           cookieWrites: 0, cookieStoreUsed: false, storageUsed: false, historyUsed: false, untracked: 0, inPage: 0,
           writers: { cookies: nameMap(), localStorage: nameMap(), count: 0 }, report: null, leaveFrom: -1, onWork: null };
}

/** @returns {Record<string, ContextRef[]>} */
function nameMap() {
  return /** @type {Record<string, ContextRef[]>} */ (Object.create(null));
}

/**
 * The window for writes of its own functions and properties (the same object, loosely typed).
 * @returns {Record<string, unknown>}
 */
export function windowRecord() {
  return /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (window));
}

/** @param {() => unknown} f */
export function safe(f) {
  try {
    f();
  } catch {
    // a hardened page may refuse; never break the visit
  }
}

/**
 * A global constructor's prototype, for APIs only some browsers (and TypeScript's lib) have.
 * @param {string} name
 * @returns {Record<string, unknown> | null}
 */
export function protoOf(name) {
  var C = windowRecord()[name];
  return typeof C === 'function' ? /** @type {Record<string, unknown>} */ (C.prototype) : null;
}
