/**
 * The executor's entry points on `window.__tagstream`: partner sections of the document, the
 * end of the visit (load, settle, then the tab closes: page/leave.ts makes the browser fire the
 * real events and this side reports through the leave binding; the dispatched hide is the
 * fallback after a termination), and naming the code a termination stopped (page/watchdog.ts).
 */
/** @import { BootConfig, PageState, Realm } from './state.js' */
/** @import { Settle, Timers } from './clock.js' */
/** @typedef {{ cookies: Record<string, string>, localStorage: Record<string, string> }} ReportWriters */
import { safe } from './state.js';

/**
 * @typedef {object} PageApi
 * @property {(id: string) => void} begin the parser enters a partner's section
 * @property {(id: string) => void} end
 * @property {() => Promise<boolean>} loaded resolves at the document's load
 * @property {() => string[]} terminated after a termination: the partners whose code was stopped
 * @property {(wallMs: number) => Promise<boolean>} hide a closing tab; true when the barrier ran
 * @property {() => Promise<boolean>} barrier
 * @property {(quietMs: number, maxMs: number, wallMs: number, hideWallMs: number) => Promise<string>} runAll
 *   the report (JSON), or `armed` when the executor is to close the tab for real (page/leave.ts)
 * @property {() => string} collect the report (JSON); nothing of this visitor runs afterwards
 */

/**
 * @param {BootConfig} cfg
 * @param {PageState} ts
 * @param {Realm} realm
 * @param {Timers} timers
 * @param {Settle} settle
 * @param {() => number} elapsed
 * @param {() => ReportWriters} writers who wrote each cookie and localStorage key, for the report
 * @returns {PageApi}
 */
export function pageApi(cfg, ts, realm, timers, settle, elapsed, writers) {
  function loaded() {
    return new Promise(function (/** @type {(v: boolean) => void} */ resolve) {
      function ok() { ts.loadedAt = realm.dateNow(); resolve(true); }
      if (document.readyState === 'complete') ok(); else window.addEventListener('load', ok, { once: true });
    });
  }
  // A request the executor recognises: once it is answered, every request issued before it
  // has reached the interceptor too.
  function barrier() {
    return realm.fetch(cfg.barrierUrl, { method: 'POST', body: '', cache: 'no-store' }).then(function () { return true; }, function () { return false; });
  }
  /** @param {number} wallMs */
  function hide(wallMs) {
    closeTab();
    var hintsBefore = ts.hints.length - ts.inPage;
    return settle(cfg.hideQuietMs, elapsed() + cfg.hideQuietMs + 1, wallMs).then(function () {
      // Beacons have no completion the page can wait for, and the hide phase may send: then
      // the barrier makes sure the interceptor has seen them (sends taken in the page never go there).
      if (ts.untracked > 0 || ts.hints.length - ts.inPage > hintsBefore) return barrier();
      return false;
    });
  }
  /**
   * The closing tab's events come from the browser (trusted): the hidden phase gets page time for
   * what it sends, as before; the report is made in the last `unload` listener, once everything
   * the page does while it goes away is done, and leaves through the binding (page/leave.ts).
   * Registered after every partner's listeners, so they run last.
   * @param {(message: string) => void} leave
   * @param {number} hideWallMs
   */
  function armLeave(leave, hideWallMs) {
    var D = document, W = window;
    ts.leaveFrom = ts.hints.length;
    /** @param {Event} e */
    function onHidden(e) {
      if (!e.isTrusted || D.visibilityState !== 'hidden') return;
      D.removeEventListener('visibilitychange', onHidden);
      var before = ts.hints.length;
      var told = function () { leave('hidden'); };
      settle(cfg.hideQuietMs, elapsed() + cfg.hideQuietMs + 1, hideWallMs)
        .then(function () { return ts.untracked > 0 || ts.hints.length > before ? barrier() : false; })
        .then(told, told);
    }
    D.addEventListener('visibilitychange', onHidden);
    W.addEventListener('pagehide', function (e) {
      if (!e.isTrusted) return;
      W.addEventListener('unload', function () { leave(collect(ts, timers, writers)); });
    });
  }
  return {
    begin: function (id) {
      ts.current = id;
      ts.marks[id] = { begin: realm.dateNow(), beginPerf: realm.perfNow(), end: 0 };
    },
    end: function (id) {
      var m = ts.marks[id];
      if (m) m.end = realm.dateNow();
      ts.current = null;
    },
    loaded: loaded,
    terminated: function () { return nameTerminated(ts, timers); },
    hide: hide,
    barrier: barrier,
    // The common case in one CDP round trip; the executor falls back to the separate steps
    // when it had to terminate a script.
    runAll: function (quietMs, maxMs, wallMs, hideWallMs) {
      // The binding also carries in-page captures (capture.js): only a tab that closes for real arms.
      var leave = cfg.trustedClose ? realm.leave : null;
      return loaded().then(function () { return settle(quietMs, maxMs, wallMs); })
        .then(function () {
          if (leave) { armLeave(leave, hideWallMs); return 'armed'; }
          return hide(hideWallMs).then(function () { return collect(ts, timers, writers); });
        });
    },
    collect: function () { return collect(ts, timers, writers); },
  };
}

/** The fallback after a termination: a closing tab dispatched from script (untrusted events). */
function closeTab() {
  var D = document, W = window;
  safe(function () {
    Object.defineProperty(D, 'visibilityState', { configurable: true, get: function () { return 'hidden'; } });
    Object.defineProperty(D, 'hidden', { configurable: true, get: function () { return true; } });
  });
  safe(function () { D.dispatchEvent(new Event('visibilitychange', { bubbles: true })); });
  safe(function () { W.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false })); });
  safe(function () { W.dispatchEvent(new Event('unload')); });
}

/**
 * Called by the executor after it had to terminate a script that did not yield. Only a timer
 * or listener callback can be named here: after termination the parser may already be in the
 * next partner's section (sections are attributed by the executor from their wall times).
 * @param {PageState} ts
 * @param {Timers} timers
 */
function nameTerminated(ts, timers) {
  var who = ts.stuck.slice();
  if (ts.running) who.push(ts.running.ctx);
  ts.stuck = [];
  ts.running = null;
  /** @type {string[]} */
  var named = [];
  who.forEach(function (w) { if (w) named.push(w); });
  named.forEach(function (w) {
    ts.timedOut[w] = true;
    ts.dead[w] = true;
    timers.map.forEach(function (t) { if (timers.ctxOf(t) === w) timers.map.delete(t.id); });
  });
  return named;
}

/**
 * What the page kept, as JSON; then nothing of this visitor may run or write (the tab is reused).
 * @param {PageState} ts
 * @param {Timers} timers
 * @param {() => ReportWriters} writers
 */
function collect(ts, timers, writers) {
  // Once: after a termination the executor runs the end step by step while its first promise
  // chain may still be alive; a second call would read the storage the first one emptied.
  if (ts.report !== null) return ts.report;
  var W = window;
  /** @type {Record<string, string | null>} */
  var ls = {};
  safe(function () {
    for (var i = 0; i < W.localStorage.length; i++) { var k = W.localStorage.key(i); if (k !== null) ls[k] = W.localStorage.getItem(k); }
  });
  var out = { origin: location.origin, localStorage: ls, errors: ts.errors, marks: ts.marks, hints: ts.hints, leaveFrom: ts.leaveFrom,
              timedOut: ts.timedOut, loadedAt: ts.loadedAt, cookieWrites: ts.cookieWrites,
              cookieStoreUsed: ts.cookieStoreUsed, storageUsed: ts.storageUsed, historyUsed: ts.historyUsed,
              writers: writers() };
  var report = JSON.stringify(out);
  ts.report = report;
  ts.killed = true;
  timers.map.clear();
  safe(function () { W.localStorage.clear(); });
  safe(function () { W.sessionStorage.clear(); });
  safe(function () { W.name = ''; });
  safe(function () { Object.defineProperty(document, 'cookie', { configurable: true, get: function () { return ''; }, set: function () {} }); });
  safe(function () { Storage.prototype.setItem = function () {}; });
  return report;
}
