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
  // Answers by URL text, kept for the visit: the stack of every timer, listener and storage
  // write is matched (measured on the three-SDK page: URL parsing and matching were ~4% of the
  // renderer's main thread). A prototype-less object, so page code patching Map cannot see it.
  /** @type {Record<string, string | null>} */
  var known = Object.create(null);
  var knownCount = 0;
  // The executor's own rule (match.js).
  /** @param {unknown} url */
  function partnerOfUrl(url) {
    var text = String(url);
    // A relative URL depends on the document's base (a <base> element may change it).
    var key = /^https?:/i.test(text) ? text : D.baseURI + ' ' + text;
    var hit = known[key];
    if (hit !== undefined) return hit;
    var u;
    try { u = new URL(text, D.baseURI); } catch { return null; }
    var found = longestMatch(cfg.policy, u);
    var p = found.match && !found.shared ? found.match.partner : null;
    if (knownCount < 1000) { known[key] = p; knownCount++; }
    return p;
  }
  var urlRe = /(https?:\/\/[^\s)]+?)(?::\d+){2}/g;
  // The engine's Error, taken before any tag runs (a tag may replace window.Error).
  var E = Error;
  // Loosely typed: prepareStackTrace is V8's, absent from the DOM's types.
  var ER = /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (E));
  var hasOwn = Object.prototype.hasOwnProperty;
  /** @param {Error} _e @param {{ getScriptNameOrSourceURL(): unknown, isEval(): boolean, getEvalOrigin(): unknown }[]} frames */
  function scriptsOf(_e, frames) {
    /** @type {string[]} */
    var names = [];
    for (var i = 0; i < frames.length; i++) {
      var f = frames[i];
      if (!f) continue;
      // Code a script eval'd is that script's: its URL is in the eval origin.
      var n = f.isEval() ? String(f.getEvalOrigin() || '') : f.getScriptNameOrSourceURL();
      if (typeof n === 'string' && n !== '') names.push(n);
    }
    return names;
  }
  /**
   * The stack's script URLs. V8 hands them over as call sites when Error.prepareStackTrace is
   * set while the stack is read (synchronously, so no tag code runs meanwhile, and the tag's own
   * value is put back): no stack text to format with line and column of every frame and
   * parse back (with the cache above: attribution 10-11% -> ~7% of the renderer's samples). The text is the fallback (a page that froze Error).
   * @returns {string[] | null}
   */
  function stackScripts() {
    var had = Reflect.apply(hasOwn, E, ['prepareStackTrace']);
    var prev = had ? ER.prepareStackTrace : undefined;
    /** @type {unknown} */
    var out = null;
    try {
      ER.prepareStackTrace = scriptsOf;
      if (ER.prepareStackTrace === scriptsOf) out = new E().stack;
    } catch {
      out = null;
    } finally {
      try {
        if (had) ER.prepareStackTrace = prev;
        else delete ER.prepareStackTrace;
      } catch {
        // frozen: it was never set
      }
    }
    return Array.isArray(out) ? out : null;
  }
  function partnerOfStack() {
    var page = D.URL;
    var here = location.href.split('#')[0];
    var names = stackScripts();
    if (names === null) {
      var st;
      try { st = String(new E().stack || ''); } catch { return null; }
      names = [];
      var m;
      urlRe.lastIndex = 0;
      while ((m = urlRe.exec(st)) !== null) if (m[1] !== undefined) names.push(m[1]);
    }
    for (var i = 0; i < names.length; i++) {
      var n = names[i];
      if (n === undefined || n === page || n === here) continue;
      if (!/^https?:/i.test(n)) {
        // An eval origin: "eval at f (https://cdn.example/x.js:1:2)", maybe nested.
        urlRe.lastIndex = 0;
        var em = urlRe.exec(n);
        if (!em || em[1] === undefined || em[1] === page || em[1] === here) continue;
        n = em[1];
      }
      var p = partnerOfUrl(n);
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
