/**
 * The first-party tag (GET /tag.js; DESIGN.md "The first-party tag and the collector"). Runs in
 * the visitor's browser: no dependencies, ES2017, under 2 KB gzipped (test/collector/tag.test.ts
 * measures it). It reads what partner tags read and posts it to the collector it was loaded from
 * (the origin of its own script URL) as text/plain, a CORS-safelisted type: no preflight.
 *
 *   window.tagstream = window.tagstream || [];
 *   tagstream.push(['consent', { analytics: true }]);   // this and later events
 *   tagstream.push(['event', 'add_to_cart', { sku: 42 }]);
 *   tagstream.push(['user', 'site-own-id']);             // sites that manage their own id
 */
/* global window, document, navigator, screen, location, Blob, setTimeout */
(function () {
  'use strict';
  var w = /** @type {Window & Record<string, unknown>} */ (/** @type {unknown} */ (window));
  var nav = /** @type {Navigator & Record<string, unknown>} */ (/** @type {unknown} */ (navigator));
  var script = /** @type {HTMLScriptElement | null} */ (document.currentScript);
  var endpoint = new URL('/collect', script && script.src ? script.src : location.href).href;
  /** @type {Record<string, boolean>} */
  var consent = {};
  /** @type {string | undefined} */
  var userId;

  /** @param {unknown} v */
  function isObj(v) {
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  }

  /** The dataLayer as GTM models it: the objects pushed so far, merged in order, JSON-safe. */
  function dataLayer() {
    var layer = w.dataLayer;
    /** @type {Record<string, unknown>} */
    var model = {};
    if (Array.isArray(layer)) for (var i = 0; i < layer.length; i++) if (isObj(layer[i])) Object.assign(model, layer[i]);
    try {
      return JSON.parse(JSON.stringify(model));
    } catch {
      return {};
    }
  }

  /** @param {number} n */
  function pos(n) {
    return n > 0 ? n : undefined;
  }

  function device() {
    /** @type {Record<string, unknown>} */
    var d = {
      userAgent: nav.userAgent,
      language: nav.language,
      platform: nav.platform,
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
      hardwareConcurrency: pos(nav.hardwareConcurrency),
      deviceMemory: pos(/** @type {number} */ (nav.deviceMemory)),
    };
    if (nav.languages && nav.languages.length) d.languages = nav.languages.slice();
    if (screen.width > 0 && screen.height > 0) {
      d.screen = { width: screen.width, height: screen.height, colorDepth: screen.colorDepth || 24, pixelRatio: w.devicePixelRatio || 1 };
    }
    if (w.innerWidth > 0 && w.innerHeight > 0) d.viewport = { width: w.innerWidth, height: w.innerHeight };
    return d;
  }

  /** High-entropy client hints where the browser offers them (Chromium, secure contexts). */
  var uaData = /** @type {{ brands?: unknown, mobile?: boolean, platform?: string, getHighEntropyValues?: (h: string[]) => Promise<Record<string, unknown>> } | undefined} */ (
    nav.userAgentData
  );
  /** @type {Promise<Record<string, unknown> | undefined>} */
  var hints = new Promise(function (resolve) {
    if (!uaData || !uaData.getHighEntropyValues) return resolve(undefined);
    var low = { brands: uaData.brands, mobile: uaData.mobile, platform: uaData.platform };
    // Bounded: a browser that never answers must not hold the page view back.
    setTimeout(function () {
      resolve(low);
    }, 500);
    uaData
      .getHighEntropyValues(['platformVersion', 'architecture', 'model', 'fullVersionList', 'bitness'])
      .then(function (h) {
        resolve(Object.assign(low, h));
      }, function () {
        resolve(low);
      });
  });

  /** @param {Record<string, unknown>} body */
  function post(body) {
    var text = JSON.stringify(body);
    var sent;
    try {
      sent = nav.sendBeacon(endpoint, new Blob([text], { type: 'text/plain' }));
    } catch {
      sent = false;
    }
    if (!sent && w.fetch) {
      w.fetch(endpoint, { method: 'POST', body: text, keepalive: true, credentials: 'include', headers: { 'content-type': 'text/plain' } }).catch(function () {});
    }
  }

  /**
   * @param {string} type
   * @param {unknown} data
   * @param {Record<string, boolean>} [given] the consent at the push (a push made before load)
   */
  function send(type, data, given) {
    var ref = document.referrer;
    /** @type {Record<string, unknown>} */
    var body = {
      type: type,
      page: { url: location.href, referrer: /^https?:/.test(ref) ? ref : '', title: document.title },
      device: device(),
      consent: Object.assign({}, given || consent),
      data: Object.assign(dataLayer(), isObj(data) ? data : {}),
    };
    if (userId) body.userId = userId;
    // In push order: every send waits for the same hints promise.
    void hints.then(function (h) {
      if (h) /** @type {Record<string, unknown>} */ (body.device).userAgentData = h;
      post(body);
    });
  }

  /** @param {unknown} cmd */
  function apply(cmd) {
    if (!Array.isArray(cmd)) return;
    if (cmd[0] === 'consent' && isObj(cmd[1])) {
      var given = /** @type {Record<string, unknown>} */ (cmd[1]);
      for (var k in given) if (typeof given[k] === 'boolean') consent[k] = /** @type {boolean} */ (given[k]);
    } else if (cmd[0] === 'event' && typeof cmd[1] === 'string' && cmd[1]) {
      send(cmd[1], cmd[2]);
    } else if (cmd[0] === 'user' && typeof cmd[1] === 'string' && cmd[1]) {
      userId = cmd[1];
    }
  }

  var queue = Array.isArray(w.tagstream) ? /** @type {unknown[]} */ (w.tagstream) : [];
  /** @type {[string, unknown, Record<string, boolean>][]} */
  var events = [];
  // Pushes made before the tag loaded, in order: each event carries the consent given before it
  // (not a grant pushed after it); the page view, sent first, carries all of them.
  for (var i = 0; i < queue.length; i++) {
    var cmd = queue[i];
    if (Array.isArray(cmd) && cmd[0] === 'event') {
      if (typeof cmd[1] === 'string' && cmd[1]) events.push([cmd[1], cmd[2], Object.assign({}, consent)]);
    } else apply(cmd);
  }
  send('page_view', undefined);
  events.forEach(function (e) {
    send(e[0], e[1], e[2]);
  });
  w.tagstream = {
    push: function () {
      for (var a = 0; a < arguments.length; a++) apply(arguments[a]);
      return 0;
    },
  };
})();
