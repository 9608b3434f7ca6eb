/**
 * Who is calling (for request attribution and error/timeout status) and which requests are in
 * flight (the end-of-event rule waits for them).
 */
import { longestMatch } from './match.js';
/** @import { BootConfig, PageState, Realm } from './state.js' */

/**
 * A context captured now and read later (Attribution.capture): the stack as V8 recorded it
 * and the fallback of the moment.
 * @typedef {{ e: unknown, fb: string | null, p: string | null, done: boolean }} ContextRef
 */

/**
 * @typedef {object} Attribution
 * @property {(url: unknown) => string | null} partnerOfUrl the partner an URL belongs to (a shared entry names nobody)
 * @property {() => string | null} context the partner whose code is running now
 * @property {() => ContextRef} capture the partner whose code is running now, to be read later
 * @property {(ref: ContextRef) => string | null} resolve
 * @property {(refs: ContextRef[]) => void} resolveAll reads many at the cost of one
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
   * Runs `fn` with Error.prepareStackTrace set to `scriptsOf`, so reading an Error's stack
   * gives its script URLs as V8 call sites: no stack text to format with line and column of
   * every frame and parse back (with the cache above: attribution 10-11% -> ~7% of the
   * renderer's samples). Synchronous, so no tag code runs meanwhile; the tag's own value is put
   * back. `fn` gets false when the page froze Error (the stack text is then parsed).
   * @param {(callSites: boolean) => void} fn
   */
  function withCallSites(fn) {
    var had = Reflect.apply(hasOwn, E, ['prepareStackTrace']);
    var prev = had ? ER.prepareStackTrace : undefined;
    var ok;
    try {
      ER.prepareStackTrace = scriptsOf;
      ok = ER.prepareStackTrace === scriptsOf;
    } catch {
      ok = false;
    }
    try {
      fn(ok);
    } finally {
      try {
        if (had) ER.prepareStackTrace = prev;
        else delete ER.prepareStackTrace;
      } catch {
        // frozen: it was never set
      }
    }
  }
  /**
   * The script URLs on an Error's stack (read once: V8 formats a stack when it is first read).
   * @param {unknown} e
   * @param {boolean} callSites
   * @returns {string[]}
   */
  function namesOf(e, callSites) {
    /** @type {unknown} */
    var out;
    try { out = /** @type {{ stack?: unknown }} */ (e).stack; } catch { return []; }
    if (callSites && Array.isArray(out)) return out;
    var st = String(out || '');
    /** @type {string[]} */
    var names = [];
    var m;
    urlRe.lastIndex = 0;
    while ((m = urlRe.exec(st)) !== null) if (m[1] !== undefined) names.push(m[1]);
    return names;
  }
  /**
   * The first partner script among the stack's script URLs (the document's own are skipped).
   * @param {string[]} names
   */
  function partnerOfNames(names) {
    var page = D.URL;
    var here = location.href.split('#')[0];
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
  /**
   * Who runs when no partner script is on the stack: the running script element, then the
   * timer, listener or document section being run.
   * @returns {string | null}
   */
  function fallback() {
    var cs = /** @type {HTMLScriptElement | null} */ (D.currentScript);
    if (cs) {
      var own = scriptPartner.get(cs);
      if (own) return own;
      if (cs.src) { var p = partnerOfUrl(cs.src); if (p) return p; }
    }
    return (ts.running && ts.running.ctx) || ts.current;
  }
  // The partner script on the stack first (an async script may run while the parser is in
  // another partner's section), then the fallback.
  /** @returns {string | null} */
  function context() {
    return resolve(capture());
  }
  /**
   * The context of now, read later: V8 records the stack's frames when the Error is made and
   * formats them only when its stack is read, the cheaper half. For listeners (most never run
   * in a visit) and storage writers (the same keys are written again and again; only the
   * report needs them): measured on the three-SDK page, reading every stack at once was ~11%
   * of the renderer's samples.
   * @returns {ContextRef}
   */
  function capture() {
    return { e: new E(), fb: fallback(), p: null, done: false };
  }
  /**
   * @param {ContextRef[]} refs
   */
  function resolveAll(refs) {
    var todo = refs.filter(function (r) { return !r.done; });
    if (todo.length === 0) return;
    withCallSites(function (callSites) {
      todo.forEach(function (r) {
        r.p = partnerOfNames(namesOf(r.e, callSites)) || r.fb;
        r.done = true;
        r.e = null;
      });
    });
  }
  /** @param {ContextRef} ref */
  function resolve(ref) {
    if (!ref.done) resolveAll([ref]);
    return ref.p;
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
  return { partnerOfUrl: partnerOfUrl, context: context, capture: capture, resolve: resolve, resolveAll: resolveAll, hint: hint, scriptPartner: scriptPartner, hinted: hinted };
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
