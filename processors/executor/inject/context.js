/**
 * Who is calling (for request attribution and error/timeout status) and which requests are in
 * flight (the end-of-event rule waits for them).
 */
import { longestMatch } from './match.js';
/** @import { BootConfig, PageState, Realm } from './state.js' */

/**
 * @typedef {object} Attribution
 * @property {(url: unknown) => string | null} partnerOfUrl the partner an URL belongs to (a shared entry names nobody)
 * @property {() => string | null} context the partner whose code is running now
 * @property {(url: unknown, transport: string) => void} hint notes a request the page saw leave
 * @property {WeakMap<object, string>} scriptPartner script elements the parser wrote in a partner's section
 * @property {WeakSet<object>} hinted elements whose request is already hinted
 */

/**
 * @param {BootConfig} cfg
 * @param {PageState} ts
 * @returns {Attribution}
 */
export function createAttribution(cfg, ts) {
  var D = document;
  /** @type {WeakMap<object, string>} */
  var scriptPartner = new WeakMap();
  /** @type {WeakSet<object>} */
  var hinted = new WeakSet();
  // The executor's own rule (match.js).
  /** @param {unknown} url */
  function partnerOfUrl(url) {
    var u;
    try { u = new URL(String(url), D.baseURI); } catch { return null; }
    var found = longestMatch(cfg.policy, u);
    return found.match && !found.shared ? found.match.partner : null;
  }
  var urlRe = /(https?:\/\/[^\s)]+?)(?::\d+){2}/g;
  function partnerOfStack() {
    var st;
    try { st = String(new Error().stack || ''); } catch { return null; }
    var m;
    urlRe.lastIndex = 0;
    while ((m = urlRe.exec(st)) !== null) {
      if (m[1] === undefined || m[1] === D.URL || m[1] === location.href.split('#')[0]) continue;
      var p = partnerOfUrl(m[1]);
      if (p) return p;
    }
    return null;
  }
  // The partner script on the stack first (an async script may run while the parser is in
  // another partner's section), then the running script element, then the timer or section
  // being run.
  /** @returns {string | null} */
  function context() {
    var s = partnerOfStack();
    if (s) return s;
    var cs = /** @type {HTMLScriptElement | null} */ (D.currentScript);
    if (cs) {
      var own = scriptPartner.get(cs);
      if (own) return own;
      if (cs.src) { var p = partnerOfUrl(cs.src); if (p) return p; }
    }
    return (ts.running && ts.running.ctx) || ts.current;
  }
  /**
   * @param {unknown} url
   * @param {string} transport
   */
  function hint(url, transport) {
    var abs;
    try { abs = new URL(String(url), D.baseURI).href; } catch { return; }
    if (ts.hints.length < 2000) ts.hints.push({ url: abs, partner: context(), transport: transport });
  }
  return { partnerOfUrl: partnerOfUrl, context: context, hint: hint, scriptPartner: scriptPartner, hinted: hinted };
}

/**
 * @typedef {object} Pending
 * @property {(kind: string) => () => void} track a request or promise the page waits for; call the result when it settles
 * @property {() => number} count how many are in flight
 */

/**
 * In-flight work; each item expires so a never-inserted element cannot hold the page open.
 * @param {BootConfig} cfg
 * @param {PageState} ts
 * @param {Realm} realm
 * @returns {Pending}
 */
export function createPending(cfg, ts, realm) {
  return {
    track: function (kind) {
      var item = { kind: kind, start: realm.perfNow() };
      ts.pending.push(item);
      if (ts.onWork) ts.onWork();
      return function () {
        var i = ts.pending.indexOf(item);
        if (i >= 0) ts.pending.splice(i, 1);
        if (ts.onWork) ts.onWork();
      };
    },
    count: function () {
      var now = realm.perfNow();
      ts.pending = ts.pending.filter(function (p) { return now - p.start < cfg.pendingExpiryMs; });
      return ts.pending.length;
    },
  };
}
