/**
 * Every way a tag sends: a hint of the URL and the calling partner (the executor matches it to
 * the intercepted request), and in-flight tracking of what the page can see complete.
 */
/** @import { PageState } from './state.js' */
/** @import { Attribution, Pending } from './context.js' */
/** @import { QuickCapture } from './capture.js' */
import { protoOf, safe, windowRecord } from './state.js';

/**
 * fetch, XMLHttpRequest and sendBeacon.
 * @param {PageState} ts
 * @param {Attribution} attr
 * @param {Pending} pending
 * @param {typeof fetch} realFetch
 * @param {QuickCapture | null} quick sends taken in the page (capture.js), null: all through the browser
 */
export function hookRequests(ts, attr, pending, realFetch, quick) {
  /**
   * @param {RequestInfo | URL} input
   * @param {RequestInit | undefined} init
   */
  windowRecord().fetch = function fetch(input, init) {
    // After the report (lifecycle.js collect) the visit is over: this document only lives on
    // until the tab's next navigation, whose commit fires its real unload. What it sends then
    // would reach the next visitor's run: it is not sent.
    if (ts.killed) return new Promise(function () {});
    var url = input && typeof input === 'object' && 'url' in input ? input.url : input;
    attr.hint(url, 'fetch');
    var taken = quick && quick.fetch(input, init);
    if (taken) return taken;
    if (init && init.keepalive) ts.untracked++;
    var untrack = pending.track('fetch');
    var p;
    try { p = realFetch(input, init); } catch (e) { untrack(); throw e; }
    p.then(untrack, untrack);
    return p;
  };
  /** @type {WeakMap<object, unknown>} */
  var xhrUrl = new WeakMap();
  var xo = XMLHttpRequest.prototype.open, xs = XMLHttpRequest.prototype.send;
  /** @param {string} method @param {string | URL} url */
  XMLHttpRequest.prototype.open = function (method, url) { xhrUrl.set(this, url); return Reflect.apply(xo, this, arguments); };
  XMLHttpRequest.prototype.send = function () {
    if (ts.killed) return;
    attr.hint(xhrUrl.get(this), 'xhr');
    var untrack = pending.track('xhr');
    this.addEventListener('loadend', untrack);
    try { return Reflect.apply(xs, this, arguments); } catch (e) { untrack(); throw e; }
  };
  var sb = Navigator.prototype.sendBeacon;
  if (typeof sb === 'function') {
    // A beacon has no completion the page can see: the hide phase ends with a barrier instead.
    /** @param {string | URL} url */
    /** @param {string | URL} url @param {unknown} data */
    Navigator.prototype.sendBeacon = function sendBeacon(url, data) {
      if (ts.killed) return true;
      attr.hint(url, 'beacon');
      if (quick && this === navigator && quick.beacon(url, data)) return true;
      ts.untracked++;
      return Reflect.apply(sb, this, arguments);
    };
  }
}

/**
 * Asynchronous APIs a tag may await before it sends count as pending work.
 * @param {object | null} obj
 * @param {string} name
 * @param {string} kind
 * @param {Pending} pending
 */
function trackPromise(obj, name, kind, pending) {
  var o = /** @type {Record<string, unknown> | null} */ (obj);
  var found = o && o[name];
  if (!o || typeof found !== 'function') return;
  var f = found;
  /** @this {unknown} */
  o[name] = function () {
    var untrack = pending.track(kind);
    var p;
    try { p = Reflect.apply(f, this, arguments); } catch (e) { untrack(); throw e; }
    if (p && typeof p.then === 'function') p.then(untrack, untrack); else untrack();
    return p;
  };
}

/** Methods of SubtleCrypto and CacheStorage that are tracked (and masked as native). */
export function cryptoMethods() { return ['digest', 'encrypt', 'decrypt', 'sign', 'importKey', 'exportKey', 'generateKey']; }
export function cacheMethods() { return ['open', 'match', 'has', 'keys', 'delete']; }

/** @param {Pending} pending */
export function hookAsyncApis(pending) {
  safe(function () { cryptoMethods().forEach(function (n) { trackPromise(SubtleCrypto.prototype, n, 'crypto', pending); }); });
  safe(function () { cacheMethods().forEach(function (n) { trackPromise(CacheStorage.prototype, n, 'caches', pending); }); });
  safe(function () { trackPromise(protoOf('NavigatorUAData'), 'getHighEntropyValues', 'uadata', pending); });
  safe(function () {
    var io = IDBFactory.prototype.open;
    IDBFactory.prototype.open = function () {
      var req = /** @type {IDBOpenDBRequest} */ (Reflect.apply(io, this, arguments)), untrack = pending.track('idb');
      req.addEventListener('success', untrack); req.addEventListener('error', untrack); req.addEventListener('blocked', untrack);
      return req;
    };
  });
}

/**
 * Scripts load in CORS mode (the executor answers them with CORS headers) so that their uncaught
 * errors carry message and file instead of the muted "Script error.".
 * @param {Element} el
 */
export function corsScript(el) {
  if (el.tagName === 'SCRIPT' && !el.hasAttribute('crossorigin')) safe(function () { /** @type {HTMLScriptElement} */ (el).crossOrigin = 'anonymous'; });
}

/** @param {unknown} v */
function isNetworkUrl(v) {
  try { return /^https?:$/.test(new URL(String(v), document.baseURI).protocol); } catch { return false; }
}

/**
 * @param {{ prototype: object }} Ctor
 * @param {string} transport
 * @param {PageState} ts
 * @param {Attribution} attr
 * @param {Pending} pending
 */
function hookSrc(Ctor, transport, ts, attr, pending) {
  var d = Object.getOwnPropertyDescriptor(Ctor.prototype, 'src');
  var found = d && d.set;
  if (!d || !found) return;
  var set = found;
  Object.defineProperty(Ctor.prototype, 'src', { configurable: true, enumerable: d.enumerable, get: d.get,
    /** @this {HTMLElement} @param {unknown} v */
    set: function (v) {
      // After the report nothing loads (see fetch in hookRequests).
      if (ts.killed && isNetworkUrl(v)) return;
      corsScript(this);
      attr.hinted.add(this);
      attr.hint(v, transport);
      // Only network loads are waited for (a blocked file: image may never fire an event).
      if (isNetworkUrl(v)) {
        var untrack = pending.track(transport);
        this.addEventListener('load', untrack, { once: true });
        this.addEventListener('error', untrack, { once: true });
      }
      set.call(this, v);
    } });
}

/**
 * Images, scripts and iframes given a URL by property or attribute; forms submitted.
 * @param {PageState} ts
 * @param {Attribution} attr
 * @param {Pending} pending
 */
export function hookElements(ts, attr, pending) {
  hookSrc(HTMLImageElement, 'image', ts, attr, pending);
  hookSrc(HTMLScriptElement, 'script', ts, attr, pending);
  hookSrc(HTMLIFrameElement, 'iframe', ts, attr, pending);
  var sa = Element.prototype.setAttribute;
  /** @param {string} name @param {string} value */
  Element.prototype.setAttribute = function (name, value) {
    var n = String(name).toLowerCase();
    if (n === 'src' && (this instanceof HTMLImageElement || this instanceof HTMLScriptElement || this instanceof HTMLIFrameElement)) {
      if (ts.killed && isNetworkUrl(value)) return undefined;
      corsScript(this);
      attr.hint(value, this instanceof HTMLImageElement ? 'image' : this instanceof HTMLScriptElement ? 'script' : 'iframe');
    }
    return Reflect.apply(sa, this, arguments);
  };
  /** @param {HTMLFormElement} form */
  function formHint(form) { safe(function () { attr.hint(form.action || document.URL, 'form'); }); }
  var fs = HTMLFormElement.prototype.submit;
  HTMLFormElement.prototype.submit = function () {
    if (ts.killed) return undefined;
    formHint(this);
    return Reflect.apply(fs, this, arguments);
  };
  window.addEventListener('submit', function (ev) { formHint(/** @type {HTMLFormElement} */ (ev.target)); }, true);
}
