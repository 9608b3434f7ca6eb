/**
 * In-page capture (executor option `inPageCapture`): a `fetch` or `navigator.sendBeacon` that the
 * executor would only capture and answer with its default answer is taken here, from the
 * Request the browser itself builds (its URL, method, body bytes and Content-Type), and reported
 * through the tab's binding; the executor adds the headers Chromium adds on the way out
 * (page/router.ts `fromPage`). The send never enters Chromium's network stack: measured on the
 * three-SDK page, a captured request costs ~3 ms of CPU across the renderer, browser, network
 * service and this process when it is paused and fulfilled through CDP.
 *
 * Only the plain cases are taken; anything else goes to the browser as before and is captured
 * there, so nothing is captured differently: a stream body (in the options or the Request given),
 * `mode` other than cors, a `referrer`, `integrity` or other option, a
 * `<meta name="referrer">`, header lists naming a header twice, a configured response for the
 * URL, a URL that is not a partner's `captureHosts` entry, an http URL other than loopback from
 * an https page (mixed content), keepalive or beacon bodies the browser would refuse, frames,
 * and everything from the browser's own pagehide on, when a tab closes for real (page/leave.ts).
 */
/** @import { BootConfig, PageState, Realm } from './state.js' */
/** @import { Pending } from './context.js' */
import { longestMatch } from './match.js';
import { safe } from './state.js';

/**
 * The referrer policies page/router.ts `refererFor` applies ('' is the document's default,
 * strict-origin-when-cross-origin); a send with another one goes to the browser. One list for
 * both sides: the router imports it.
 * @returns {string[]}
 */
export function referrerPolicyNames() {
  return ['', 'no-referrer', 'no-referrer-when-downgrade', 'origin', 'origin-when-cross-origin', 'same-origin', 'strict-origin', 'strict-origin-when-cross-origin', 'unsafe-url'];
}

/**
 * @typedef {object} QuickCapture
 * @property {(input: unknown, init: unknown) => Promise<Response> | null} fetch the answer, or null: let the browser send it
 * @property {(url: unknown, data: unknown) => boolean} beacon true: taken (sendBeacon returns true)
 */

/**
 * @param {BootConfig} cfg
 * @param {PageState} ts
 * @param {Realm} realm
 * @param {Pending} pending
 * @returns {QuickCapture | null}
 */
export function createQuickCapture(cfg, ts, realm, pending) {
  var post = realm.leave;
  if (!cfg.inPageCapture || post === null || window !== window.top) return null;
  var report = post;
  var D = document;
  var W = window;
  var Req = W.Request, Resp = W.Response, Hdrs = W.Headers, Bl = W.Blob, FD = W.FormData, USP = W.URLSearchParams, AB = W.ArrayBuffer;
  var RS = typeof W.ReadableStream === 'function' ? W.ReadableStream : null;
  var U = W.URL;
  var stringify = JSON.stringify;
  var btoa = W.btoa.bind(W);
  var fromCharCode = String.fromCharCode;
  var getProto = Object.getPrototypeOf;
  var defineProperty = Object.defineProperty;
  var isArray = Array.isArray;
  var plainProto = Object.prototype;
  var pageUrl = new U(D.URL);
  // From the browser's own pagehide on (a tab closing for real), the document is going away: a
  // body read may never finish, so its sends go to the browser, which keeps them alive. The hidden
  // phase before it is still the page's (page/leave.ts waits for its sends).
  var unloading = false;
  W.addEventListener('pagehide', function (e) { if (e.isTrusted) unloading = true; }, true);
  var pageHttps = pageUrl.protocol === 'https:';
  // The options a plain send may carry; any other one (referrer, integrity, duplex, …) goes to the browser.
  /** @type {Record<string, true>} */
  var allowedInit = Object.create(null);
  ['method', 'headers', 'body', 'credentials', 'keepalive', 'cache', 'redirect', 'priority', 'signal', 'mode', 'referrerPolicy'].forEach(function (k) { allowedInit[k] = true; });
  /** @type {Record<string, true>} */
  var referrerPolicies = Object.create(null);
  referrerPolicyNames().forEach(function (k) { referrerPolicies[k] = true; });

  /**
   * Over the browser's 64 KiB for a keepalive fetch or a beacon (it would refuse it): the
   * browser is left to say so. A string counts at its UTF-8 worst; FormData has no size before
   * it is encoded.
   * @param {unknown} b
   */
  function overKeepaliveQuota(b) {
    if (b === undefined || b === null) return false;
    if (typeof b === 'string') return b.length * 3 > 65536;
    if (b instanceof Bl) return b.size > 65536;
    if (b instanceof AB || AB.isView(b)) return /** @type {ArrayBuffer} */ (b).byteLength > 65536;
    if (b instanceof USP) return String(b).length > 65536;
    return true;
  }
  /** @param {unknown} b */
  function plainBody(b) {
    return b === undefined || b === null || typeof b === 'string' || b instanceof Bl || b instanceof USP || b instanceof FD || b instanceof AB || AB.isView(b);
  }
  /**
   * The header names as Chromium sends them: a Headers object's lower-case, a record's or a
   * list's as written; null when a name comes twice (the browser would combine them).
   * @param {unknown} h
   * @returns {string[] | null}
   */
  function headerNames(h) {
    /** @type {string[]} */
    var names = [];
    /** @type {Record<string, true>} */
    var seen = Object.create(null);
    /** @param {unknown} n */
    function add(n) {
      var s = String(n);
      var low = s.toLowerCase();
      if (seen[low]) return false;
      seen[low] = true;
      names.push(s);
      return true;
    }
    if (h === undefined || h === null) return names;
    if (h instanceof Hdrs) {
      var ok = true;
      h.forEach(function (_v, k) { if (!add(k)) ok = false; });
      return ok ? names : null;
    }
    if (isArray(h)) {
      for (var i = 0; i < h.length; i++) {
        var pair = h[i];
        if (!isArray(pair) || pair.length !== 2 || !add(pair[0])) return null;
      }
      return names;
    }
    if (typeof h === 'object' && getProto(h) === plainProto) {
      for (var k in h) if (!add(k)) return null;
      return names;
    }
    return null;
  }
  /**
   * The absolute URL when the executor would capture it with its default answer, else null.
   * @param {unknown} raw
   */
  function target(raw) {
    if (unloading || ts.killed) return null;
    var u;
    try { u = new U(String(raw), D.baseURI); } catch { return null; }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
    if (u.protocol === 'http:' && pageHttps && !/^(?:127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(u.hostname)) return null;
    if (u.username !== '' || u.password !== '') return null;
    var found = longestMatch(cfg.policy, u);
    if (!found.match || found.match.kind !== 'capture') return null;
    var href = u.href;
    for (var i = 0; i < cfg.responsePrefixes.length; i++) if (href.indexOf(/** @type {string} */ (cfg.responsePrefixes[i])) === 0) return null;
    if (D.querySelector('meta[name="referrer" i]')) return null;
    return href;
  }
  /** @param {ArrayBuffer} buf */
  function base64(buf) {
    var bytes = new Uint8Array(buf);
    var s = '';
    for (var i = 0; i < bytes.length; i += 0x8000) s += Reflect.apply(fromCharCode, null, Array.prototype.slice.call(bytes.subarray(i, i + 0x8000)));
    return btoa(s);
  }
  /**
   * Reads the body the browser built and reports the send.
   * @param {Request} req
   * @param {string[]} names
   * @param {string} transport
   * @returns {Promise<void>}
   */
  function send(req, names, transport) {
    /** @type {[string, string][]} */
    var headers = [];
    for (var i = 0; i < names.length; i++) {
      var n = /** @type {string} */ (names[i]);
      // Names the browser refuses to let a page set (Cookie, User-Agent, …) are dropped here too.
      var v = req.headers.get(n);
      if (v !== null) headers.push([n, v]);
    }
    var contentType = req.headers.get('content-type');
    var url = req.url;
    var method = req.method;
    var policy = req.referrerPolicy;
    return req.arrayBuffer().then(function (buf) {
      report('c:' + stringify({ url: url, method: method, headers: headers, contentType: contentType, body: buf.byteLength > 0 ? base64(buf) : null, transport: transport, referrerPolicy: policy }));
    });
  }
  return {
    fetch: function (input, init) {
      var fromRequest = input instanceof Req;
      if (typeof input !== 'string' && !(input instanceof U) && !fromRequest) return null;
      var o = /** @type {Record<string, unknown> | undefined} */ (init);
      if (o !== undefined && (o === null || typeof o !== 'object' || getProto(o) !== plainProto)) return null;
      if (o) {
        for (var k in o) if (!allowedInit[k]) return null;
        if (RS && o.body instanceof RS) return null;
        if (!plainBody(o.body)) return null;
      }
      var href = target(fromRequest ? /** @type {Request} */ (input).url : input);
      if (href === null) return null;
      var names = o && o.headers !== undefined ? headerNames(o.headers) : fromRequest ? headerNames(/** @type {Request} */ (input).headers) : [];
      if (names === null) return null;
      var req;
      try { req = new Req(fromRequest ? /** @type {Request} */ (input) : href, /** @type {RequestInit | undefined} */ (init)); } catch { return null; }
      if (req.method !== 'GET' && req.method !== 'POST') return null;
      if (req.mode !== 'cors' || req.referrer !== 'about:client' || req.integrity !== '' || !(req.referrerPolicy in referrerPolicies) || req.signal.aborted) return null;
      if (req.keepalive && o && 'body' in o && overKeepaliveQuota(o.body)) return null;
      var done = pending.track('fetch');
      ts.inPage++;
      var resUrl = req.url;
      // A same-origin answer reads as 'basic', a cross-origin one as 'cors'.
      var resType = new U(resUrl).origin === pageUrl.origin ? 'basic' : 'cors';
      return send(req, names, 'fetch').then(
        function () {
          return new Promise(function (resolve) {
            // A network answer is never synchronous: the next task, as the browser's would be.
            realm.setTimeout(function () {
              done();
              var res = new Resp('{}', { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
              // As the browser's answer to a cross-origin fetch reads (a constructed one says '' and 'default').
              safe(function () {
                defineProperty(res, 'url', { value: resUrl.split('#')[0], configurable: true });
                defineProperty(res, 'type', { value: resType, configurable: true });
              });
              resolve(res);
            }, 0);
          });
        },
        function (/** @type {unknown} */ err) { done(); throw err; },
      );
    },
    beacon: function (url, data) {
      if (!plainBody(data) || (RS && data instanceof RS) || overKeepaliveQuota(data)) return false;
      var href = target(url);
      if (href === null) return false;
      var req;
      try { req = new Req(href, { method: 'POST', body: /** @type {BodyInit | null} */ (data === undefined ? null : data) }); } catch { return false; }
      var done = pending.track('beacon');
      ts.inPage++;
      send(req, [], 'beacon').then(done, done);
      return true;
    },
  };
}
