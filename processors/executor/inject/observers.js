/**
 * What the page did that the executor needs to know: which storage it touched (the executor
 * reads and wipes only that: each CDP command costs), which partner wrote each cookie and
 * localStorage key (jar budget attribution), who registered each event listener (what
 * a listener sends, or where it gets stuck, is that partner's), uncaught errors and scripts that
 * failed to load, and what the parser wrote inside a partner's section.
 */
/** @import { PageState, Realm, TouchFlag, Writers } from './state.js' */
/** @import { Attribution, ContextRef } from './context.js' */
import { corsScript } from './requests.js';
import { safe } from './state.js';

/**
 * @param {object | null} obj
 * @param {string[]} names
 * @param {PageState} ts
 * @param {TouchFlag} flag
 */
function touch(obj, names, ts, flag) {
  var o = /** @type {Record<string, unknown> | null} */ (obj);
  names.forEach(function (n) {
    var found = o && o[n];
    if (!o || typeof found !== 'function') return;
    var f = found;
    /** @this {unknown} */
    o[n] = function () { ts[flag] = true; return Reflect.apply(f, this, arguments); };
  });
}

/**
 * Remembers whose code wrote `name`: the last writer wins (its value is the one the jar keeps),
 * read when the report is made (writersOf). The last few writes are kept, so a last write by
 * nobody's code (the page's own) leaves the partner before it. Bounded: a tag writing thousands
 * of names cannot grow the report without limit.
 * @param {Writers} w
 * @param {Record<string, ContextRef[]>} map
 * @param {string} name
 * @param {ContextRef} ref
 */
function noteWriter(w, map, name, ref) {
  var list = map[name];
  if (!list) {
    if (w.count >= 500) return;
    w.count++;
    list = map[name] = [];
  }
  list.push(ref);
  if (list.length > 4) list.shift();
}

/**
 * The writer of each name, for the report: one stack reading for all.
 * @param {Writers} w
 * @param {Attribution} attr
 * @returns {{ cookies: Record<string, string>, localStorage: Record<string, string> }}
 */
export function writersOf(w, attr) {
  /** @type {ContextRef[]} */
  var all = [];
  [w.cookies, w.localStorage].forEach(function (m) { Object.keys(m).forEach(function (k) { all.push.apply(all, m[k] || []); }); });
  attr.resolveAll(all);
  /** @param {Record<string, ContextRef[]>} m */
  function named(m) {
    /** @type {Record<string, string>} */
    var out = Object.create(null);
    Object.keys(m).forEach(function (k) {
      var list = m[k] || [];
      for (var i = list.length - 1; i >= 0; i--) {
        var who = /** @type {ContextRef} */ (list[i]).p;
        if (who) { out[k] = who; return; }
      }
    });
    return out;
  }
  return { cookies: named(w.cookies), localStorage: named(w.localStorage) };
}

/**
 * The name a `document.cookie` assignment sets, as Chromium parses it (no `=`: an empty name).
 * @param {unknown} v
 */
function cookieName(v) {
  var s = String(v);
  var semi = s.indexOf(';');
  var pair = semi < 0 ? s : s.slice(0, semi);
  var eq = pair.indexOf('=');
  return eq < 0 ? '' : pair.slice(0, eq).trim();
}

/**
 * @param {PageState} ts
 * @param {Attribution} attr
 * @param {PropertyDescriptor} d
 * @param {(this: Document, v: string) => void} set
 */
function countCookieWrites(ts, attr, d, set) {
  Object.defineProperty(Document.prototype, 'cookie', { configurable: true, enumerable: d.enumerable, get: d.get,
    /** @this {Document} @param {string} v */
    set: function (v) {
      ts.cookieWrites++;
      noteWriter(ts.writers, ts.writers.cookies, cookieName(v), attr.capture());
      set.call(this, v);
    } });
}

/**
 * `localStorage.setItem` keeps its writer. A write by property assignment (`localStorage.k = v`)
 * could only be seen by replacing the Storage object, which tags could notice: it stays
 * unattributed by code.
 * @param {PageState} ts
 * @param {Attribution} attr
 */
function watchStorageWrites(ts, attr) {
  /** @type {Storage | null} */
  var store = null;
  safe(function () { store = window.localStorage; });
  var si = Storage.prototype.setItem;
  // Two parameters, as the browser's own (tags may read `setItem.length`).
  /** @this {Storage} @param {string} key @param {string} _value */
  Storage.prototype.setItem = function setItem(key, _value) {
    if (store !== null && this === store) noteWriter(ts.writers, ts.writers.localStorage, String(key), attr.capture());
    return Reflect.apply(si, this, arguments);
  };
}

/**
 * @param {PageState} ts
 * @param {Attribution} attr
 */
export function watchTouches(ts, attr) {
  var cd = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
  if (cd && cd.set) countCookieWrites(ts, attr, cd, cd.set);
  safe(function () { watchStorageWrites(ts, attr); });
  safe(function () { touch(CookieStore.prototype, ['set', 'delete'], ts, 'cookieStoreUsed'); });
  safe(function () { touch(IDBFactory.prototype, ['open', 'deleteDatabase'], ts, 'storageUsed'); });
  safe(function () { touch(CacheStorage.prototype, ['open', 'delete'], ts, 'storageUsed'); });
  safe(function () { touch(History.prototype, ['pushState', 'replaceState'], ts, 'historyUsed'); });
  window.addEventListener('hashchange', function () { ts.historyUsed = true; }, true);
}

/**
 * Event listeners keep the partner that registered them (load, visibilitychange and pagehide
 * handlers of inline snippets).
 * @param {PageState} ts
 * @param {Attribution} attr
 * @param {Realm} realm
 */
export function attributeListeners(ts, attr, realm) {
  /** @type {WeakMap<object, (this: unknown, ev: Event) => unknown>} */
  var wrapped = new WeakMap();
  var ael = EventTarget.prototype.addEventListener, rel = EventTarget.prototype.removeEventListener;
  /**
   * @param {string} type
   * @param {EventListenerOrEventListenerObject | null} fn
   */
  EventTarget.prototype.addEventListener = function addEventListener(type, fn) {
    if (!fn || (typeof fn !== 'function' && typeof fn.handleEvent !== 'function')) return Reflect.apply(ael, this, arguments);
    var listener = fn;
    var w = wrapped.get(listener);
    if (!w) {
      // Who registered it is read when it first runs: most listeners never run in a visit.
      var ref = attr.capture();
      /** @this {unknown} @param {Event} ev */
      w = function (ev) {
        var ctx = attr.resolve(ref);
        if (!ctx) return typeof listener === 'function' ? listener.call(this, ev) : listener.handleEvent(ev);
        var prev = ts.running, r;
        ts.running = { ctx: ctx, start: realm.perfNow() };
        // No finally: when the executor terminates a stuck handler, ts.running must stay set.
        try { r = typeof listener === 'function' ? listener.call(this, ev) : listener.handleEvent(ev); } catch (e) { ts.running = prev; throw e; }
        ts.running = prev;
        return r;
      };
      wrapped.set(listener, w);
    }
    var args = Array.prototype.slice.call(arguments);
    args[1] = w;
    return Reflect.apply(ael, this, args);
  };
  /**
   * @param {string} type
   * @param {EventListenerOrEventListenerObject | null} fn
   */
  EventTarget.prototype.removeEventListener = function removeEventListener(type, fn) {
    var w = fn && wrapped.get(fn);
    if (!w) return Reflect.apply(rel, this, arguments);
    var args = Array.prototype.slice.call(arguments);
    args[1] = w;
    return Reflect.apply(rel, this, args);
  };
}

/**
 * Uncaught exceptions and scripts that failed to load, with the partner they belong to.
 * @param {PageState} ts
 * @param {Attribution} attr
 */
export function watchErrors(ts, attr) {
  var D = document;
  window.addEventListener('error', function (ev) {
    var t = /** @type {HTMLScriptElement | null} */ (ev.target);
    if (t && t !== /** @type {unknown} */ (window) && t.tagName === 'SCRIPT') {
      var src = t.src || '';
      var p = attr.partnerOfUrl(src) || attr.scriptPartner.get(t) || attr.context();
      ts.errors.push({ partner: p, message: 'script failed to load: ' + src.split('?')[0] });
      return;
    }
    if (!(ev instanceof ErrorEvent)) return;
    var who = (ev.filename && ev.filename !== D.URL && attr.partnerOfUrl(ev.filename)) || attr.context();
    if (!who && ev.error && ev.error.stack) {
      var m = String(ev.error.stack).match(/https?:\/\/[^\s)]+?(?=:\d+:\d+)/g) || [];
      for (var i = 0; i < m.length && !who; i++) if (m[i] !== D.URL) who = attr.partnerOfUrl(m[i]);
    }
    ts.errors.push({ partner: who, message: String(ev.message || (ev.error && ev.error.message) || 'error').slice(0, 500) });
  }, true);
}

/**
 * Scripts written by the parser inside a partner's section belong to it even when their host
 * is not listed in its allowHosts; so do the pixels and iframes it wrote there.
 * @param {PageState} ts
 * @param {Attribution} attr
 */
export function watchParser(ts, attr) {
  var mo = new MutationObserver(function (list) {
    for (var i = 0; i < list.length; i++) {
      var record = list[i];
      var added = record ? record.addedNodes : [];
      for (var j = 0; j < added.length; j++) {
        // Text and comment nodes have no tagName: they match nothing below.
        var n = /** @type {Element & { src?: string }} */ (added[j]);
        // The parser runs a microtask checkpoint before it prepares a script: the attribute set
        // here applies to the script's own fetch.
        if (n.tagName === 'SCRIPT') { corsScript(n); if (ts.current) attr.scriptPartner.set(n, ts.current); }
        var current = ts.current;
        if (current && !attr.hinted.has(n) && n.src && (n.tagName === 'IMG' || n.tagName === 'IFRAME' || n.tagName === 'SCRIPT')) {
          attr.hinted.add(n);
          noteParsed(ts, n, n.src, current);
        }
      }
    }
  });
  mo.observe(document, { childList: true, subtree: true });
}

/**
 * @param {PageState} ts
 * @param {Element} n
 * @param {string} src
 * @param {string} partner
 */
function noteParsed(ts, n, src, partner) {
  var transport = n.tagName === 'IMG' ? 'image' : n.tagName === 'SCRIPT' ? 'script' : 'iframe';
  if (ts.hints.length < 2000) safe(function () { ts.hints.push({ url: new URL(src, document.baseURI).href, partner: partner, transport: transport }); });
}
