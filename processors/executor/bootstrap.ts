/**
 * The script that runs first in the synthetic visitor document, before any partner html.
 *
 * Why in-page and not CDP: the prototypes found CDP virtual time fragile (reset by every
 * navigation, lost sends when its budget ran out) and every CDP message costly; a fake clock
 * injected as the document's first script costs nothing per view and lets the settle loop jump
 * over a tag's `setTimeout(3000)` or a 5 s batch interval in microseconds of wall time.
 *
 * It also: wipes what a previous visitor could have left in this pooled tab (sessionStorage,
 * localStorage, window.name) and applies the new visitor's localStorage; seeds `dataLayer`;
 * overrides the few properties CDP cannot emulate (colour depth, webdriver, referrer); records
 * which partner code is running (for request attribution and error/timeout status); tracks
 * in-flight requests so the end-of-event rule can wait for them; and dispatches the
 * `visibilitychange`/`pagehide` of a closing tab at the end.
 *
 * Plain ES2020 in a string (no template literals inside): it is never transpiled.
 */
export const BOOTSTRAP_SOURCE = String.raw`(function (cfg) {
  'use strict';
  var W = window, D = document;
  var realSetTimeout = W.setTimeout.bind(W);
  var realFetch = W.fetch.bind(W);
  var RealDate = W.Date;
  var realDateNow = RealDate.now.bind(RealDate);
  var perf = W.performance;
  var realPerfNow = perf.now.bind(perf);
  var ts = { runId: cfg.runId, current: null, running: null, errors: [], marks: {}, hints: [], pending: [],
             killed: false, dead: {}, timedOut: {}, stuck: [], loadedAt: 0,
             cookieWrites: 0, cookieStoreUsed: false, storageUsed: false, historyUsed: false, untracked: 0 };
  Object.defineProperty(W, '__tagstream', { value: ts, enumerable: false, configurable: false, writable: false });

  function safe(f) { try { f(); } catch (e) { /* a hardened page may refuse; never break the visit */ } }

  // --- a clean slate for this visitor, then their own storage
  safe(function () { W.name = ''; });
  safe(function () { W.sessionStorage.clear(); });
  safe(function () {
    W.localStorage.clear();
    var ls = cfg.localStorage || {};
    for (var k in ls) if (Object.prototype.hasOwnProperty.call(ls, k)) W.localStorage.setItem(k, ls[k]);
  });

  // --- partner matching (same rule as the executor: longest entry wins)
  function entryScore(entry, u) {
    if (/^https?:\/\//i.test(entry)) return u.href.indexOf(entry) === 0 ? 1000 + entry.length : 0;
    var m = /^(.*?)(?::(\d+))?$/.exec(entry.toLowerCase());
    var port = u.port || (u.protocol === 'https:' ? '443' : '80');
    if (!m || m[1] !== u.hostname.toLowerCase()) return 0;
    if (m[2] !== undefined) return m[2] === port ? 500 + entry.length : 0;
    return 100 + entry.length;
  }
  function partnerOfUrl(url) {
    var u; try { u = new URL(url, D.baseURI); } catch (e) { return null; }
    var best = null, score = 0;
    for (var i = 0; i < cfg.partners.length; i++) {
      var p = cfg.partners[i];
      for (var j = 0; j < p.entries.length; j++) {
        var s = entryScore(p.entries[j], u);
        if (s > score) { score = s; best = p.id; }
        else if (s === score && s > 0 && best !== p.id) best = null; // shared entry: says nothing
      }
    }
    return best;
  }
  var urlRe = /(https?:\/\/[^\s)]+?)(?::\d+){2}/g;
  function partnerOfStack() {
    var st = ''; try { st = String(new Error().stack || ''); } catch (e) { return null; }
    var m; urlRe.lastIndex = 0;
    while ((m = urlRe.exec(st)) !== null) {
      if (m[1] === D.URL || m[1] === location.href.split('#')[0]) continue;
      var p = partnerOfUrl(m[1]);
      if (p) return p;
    }
    return null;
  }
  // Who is calling: the partner script on the stack first (an async script may run while the
  // parser is in another partner's section), then the running script element, then the timer
  // or section being run.
  function context() {
    var s = partnerOfStack();
    if (s) return s;
    var cs = D.currentScript;
    if (cs) {
      if (cs.__tsPartner) return cs.__tsPartner;
      if (cs.src) { var p = partnerOfUrl(cs.src); if (p) return p; }
    }
    return (ts.running && ts.running.ctx) || ts.current;
  }
  ts.context = context;
  function hint(url, transport) {
    var abs; try { abs = new URL(String(url), D.baseURI).href; } catch (e) { return; }
    if (ts.hints.length < 2000) ts.hints.push({ url: abs, partner: context(), transport: transport });
  }
  // In-flight requests the end-of-event rule waits for; each expires so a never-inserted
  // element cannot hold the page open.
  function track(kind) {
    var item = { kind: kind, start: realPerfNow() };
    ts.pending.push(item);
    return function () { var i = ts.pending.indexOf(item); if (i >= 0) ts.pending.splice(i, 1); };
  }
  function pendingCount() {
    var now = realPerfNow(), n = 0;
    ts.pending = ts.pending.filter(function (p) { return now - p.start < cfg.pendingExpiryMs; });
    n = ts.pending.length;
    return n;
  }

  // --- virtual clock: page time = event time + real elapsed + jumps made by the settle loop
  var realStart = realPerfNow();
  var offset = 0;
  function elapsed() { return realPerfNow() - realStart + offset; }
  function now() { return cfg.startMs + elapsed(); }
  var FakeDate = class Date extends RealDate {
    constructor() {
      if (arguments.length === 0) super(Math.floor(now()));
      else super(...arguments);
    }
    static now() { return Math.floor(now()); }
  };
  // cfg.cdpTime: the experimental CDP virtual-time clock drives Date and timers instead.
  if (!cfg.cdpTime) W.Date = new Proxy(FakeDate, { apply: function () { return new RealDate(Math.floor(now())).toString(); } });
  var perfOrigin = realPerfNow;
  if (!cfg.cdpTime) safe(function () {
    Object.defineProperty(Performance.prototype, 'now', { configurable: true, writable: true,
      value: function now() { return perfOrigin() + offset; } });
  });

  var timers = new Map(), nextId = 1, seq = 0;
  function addTimer(fn, ms, args, repeat) {
    var id = nextId++;
    ms = Number(ms) || 0; if (!(ms > 0)) ms = 0;
    if (repeat && ms < 4) ms = 4;
    var ctx = context();
    if (ctx && ts.dead[ctx]) return id;
    timers.set(id, { id: id, at: elapsed() + ms, ms: ms, fn: fn, args: args, repeat: repeat, ctx: ctx, seq: seq++ });
    // Short timers also run on real time so a page that yields briefly proceeds while loading.
    if (ms <= cfg.realTimerMaxMs && !ts.killed) realSetTimeout(runDue, ms);
    return id;
  }
  function fire(t) {
    if (t.repeat) t.at = Math.max(t.at + t.ms, elapsed()); else timers.delete(t.id);
    if (t.ctx && ts.dead[t.ctx]) { timers.delete(t.id); return; }
    // Still set: the previous callback never returned (the executor terminated it).
    if (ts.running) ts.stuck.push(ts.running.ctx);
    var prev = ts.current;
    ts.current = t.ctx; ts.running = { ctx: t.ctx, start: realPerfNow() };
    try {
      if (typeof t.fn === 'function') t.fn.apply(W, t.args);
      else (0, eval)(String(t.fn));
    } catch (e) {
      // As in a browser: an exception in a timer is an uncaught error of the page.
      safe(function () { W.reportError(e); });
    }
    ts.running = null; ts.current = prev;
  }
  function runDue() {
    if (ts.killed) return 0;
    var e = elapsed(), due = [];
    timers.forEach(function (t) { if (t.at <= e) due.push(t); });
    due.sort(function (a, b) { return a.at - b.at || a.seq - b.seq; });
    var n = 0;
    for (var i = 0; i < due.length; i++) {
      var t = due[i];
      if (timers.get(t.id) !== t) continue;
      fire(t); n++;
    }
    return n;
  }
  function earliest() {
    var best = null;
    timers.forEach(function (t) { if (best === null || t.at < best.at) best = t; });
    return best;
  }
  if (!cfg.cdpTime) {
    W.setTimeout = function setTimeout(fn, ms) { return addTimer(fn, ms, Array.prototype.slice.call(arguments, 2), false); };
    W.setInterval = function setInterval(fn, ms) { return addTimer(fn, ms, Array.prototype.slice.call(arguments, 2), true); };
    W.clearTimeout = function clearTimeout(id) { timers.delete(id); };
    W.clearInterval = function clearInterval(id) { timers.delete(id); };
  }

  var mc = new MessageChannel(), tickQueue = [];
  mc.port1.onmessage = function () { var f = tickQueue.shift(); if (f) f(); };
  function tick(f) { tickQueue.push(f); mc.port2.postMessage(0); }

  // Runs page time until nothing is pending and no timer is due within quietMs, page time
  // bounded by maxMs since the document started, wall time by wallMs.
  ts.settle = function (quietMs, maxMs, wallMs) {
    var wallStart = realPerfNow();
    return new Promise(function (resolve) {
      var idleSince = -1;
      function done(reason) { resolve({ reason: reason, elapsed: elapsed(), timers: timers.size }); }
      function step() {
        if (ts.killed) return done('killed');
        if (runDue() > 0) idleSince = -1;
        var real = realPerfNow();
        if (real - wallStart > wallMs) return done('wall');
        if (pendingCount() > 0) { idleSince = -1; return realSetTimeout(step, 1); }
        var next = earliest();
        if (next === null || next.at - elapsed() > quietMs) {
          // Quiet must hold for a little real time: promise chains (IndexedDB, crypto, caches)
          // resolve outside any timer or request.
          if (idleSince < 0) idleSince = real;
          if (real - idleSince >= cfg.idleRealMs) return done('quiet');
          return realSetTimeout(step, 2);
        }
        if (next.at > maxMs) return done('max');
        idleSince = -1;
        var e = elapsed();
        if (next.at > e) offset += next.at - e;
        tick(step);
      }
      tick(step);
    });
  };

  // --- the visitor's environment (what CDP emulation cannot set)
  W.dataLayer = [cfg.data];
  var proto = function (obj, name, value) {
    safe(function () { Object.defineProperty(obj, name, { configurable: true, enumerable: true, get: function () { return value; } }); });
  };
  proto(Navigator.prototype, 'webdriver', false);
  proto(Screen.prototype, 'colorDepth', cfg.screen.colorDepth);
  proto(Screen.prototype, 'pixelDepth', cfg.screen.colorDepth);
  proto(Screen.prototype, 'availWidth', cfg.screen.width);
  proto(Screen.prototype, 'availHeight', cfg.screen.height);
  proto(Document.prototype, 'referrer', cfg.referrer);
  if (cfg.languages) proto(Navigator.prototype, 'languages', Object.freeze(cfg.languages.slice()));
  if (cfg.language) proto(Navigator.prototype, 'language', cfg.language);
  if (cfg.noUserAgentData) safe(function () { delete Navigator.prototype.userAgentData; });
  proto(Navigator.prototype, 'hardwareConcurrency', cfg.hardwareConcurrency);
  if (cfg.deviceMemory === null) safe(function () { delete Navigator.prototype.deviceMemory; });
  else proto(Navigator.prototype, 'deviceMemory', cfg.deviceMemory);
  // A server has no service worker, dialogs, popups or permission prompts to offer.
  safe(function () { delete Navigator.prototype.serviceWorker; });
  W.alert = function alert() {};
  W.confirm = function confirm() { return false; };
  W.prompt = function prompt() { return null; };
  W.print = function print() {};
  W.open = function open() { return null; };
  safe(function () { delete W.RTCPeerConnection; delete W.webkitRTCPeerConnection; });
  // What a headless tab lacks and a visitor's Chrome has: window size with browser chrome and
  // the window.chrome object (only for Chromium user agents).
  proto(W, 'outerWidth', cfg.viewport.width);
  proto(W, 'outerHeight', cfg.viewport.height + (cfg.mobile ? 0 : 85));
  if (!cfg.noUserAgentData && !W.chrome) safe(function () {
    var t0 = realDateNow() / 1000;
    W.chrome = {
      app: { isInstalled: false, InstallState: { DISABLED: 'disabled', INSTALLED: 'installed', NOT_INSTALLED: 'not_installed' },
             RunningState: { CANNOT_RUN: 'cannot_run', READY_TO_RUN: 'ready_to_run', RUNNING: 'running' },
             getDetails: function getDetails() { return null; }, getIsInstalled: function getIsInstalled() { return false; } },
      csi: function csi() { return { startE: Math.floor(t0 * 1000), onloadT: Math.floor(t0 * 1000), pageT: realPerfNow(), tran: 15 }; },
      loadTimes: function loadTimes() { return { requestTime: t0, startLoadTime: t0, commitLoadTime: t0, finishDocumentLoadTime: t0,
        finishLoadTime: t0, firstPaintTime: t0, firstPaintAfterLoadTime: 0, navigationType: 'Other', wasFetchedViaSpdy: true,
        wasNpnNegotiated: true, npnNegotiatedProtocol: 'h2', wasAlternateProtocolAvailable: false, connectionInfo: 'h2' }; }
    };
  });

  // --- attribution hints and in-flight tracking for each transport
  W.fetch = function fetch(input, init) {
    var url = input && typeof input === 'object' && 'url' in input ? input.url : input;
    hint(url, 'fetch');
    if (init && init.keepalive) ts.untracked++;
    var untrack = track('fetch');
    var p;
    try { p = realFetch(input, init); } catch (e) { untrack(); throw e; }
    p.then(untrack, untrack);
    return p;
  };
  var xo = XMLHttpRequest.prototype.open, xs = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) { this.__tsUrl = url; return xo.apply(this, arguments); };
  XMLHttpRequest.prototype.send = function () {
    hint(this.__tsUrl, 'xhr');
    var untrack = track('xhr');
    this.addEventListener('loadend', untrack);
    try { return xs.apply(this, arguments); } catch (e) { untrack(); throw e; }
  };
  // Asynchronous APIs a tag may await before it sends count as pending work.
  function trackPromise(obj, name, kind) {
    var f = obj && obj[name];
    if (typeof f !== 'function') return;
    obj[name] = function () {
      var untrack = track(kind);
      var p;
      try { p = f.apply(this, arguments); } catch (e) { untrack(); throw e; }
      if (p && typeof p.then === 'function') p.then(untrack, untrack); else untrack();
      return p;
    };
  }
  safe(function () { ['digest', 'encrypt', 'decrypt', 'sign', 'importKey', 'exportKey', 'generateKey'].forEach(function (n) { trackPromise(SubtleCrypto.prototype, n, 'crypto'); }); });
  safe(function () { ['open', 'match', 'has', 'keys', 'delete'].forEach(function (n) { trackPromise(CacheStorage.prototype, n, 'caches'); }); });
  safe(function () { trackPromise(NavigatorUAData.prototype, 'getHighEntropyValues', 'uadata'); });
  safe(function () {
    var io = IDBFactory.prototype.open;
    IDBFactory.prototype.open = function () {
      var req = io.apply(this, arguments), untrack = track('idb');
      req.addEventListener('success', untrack); req.addEventListener('error', untrack); req.addEventListener('blocked', untrack);
      return req;
    };
  });
  var sb = Navigator.prototype.sendBeacon;
  if (sb) Navigator.prototype.sendBeacon = function sendBeacon(url) { hint(url, 'beacon'); return sb.apply(this, arguments); };
  // Scripts load in CORS mode (the executor answers them with CORS headers) so that their
  // uncaught errors carry message and file instead of the muted "Script error.".
  function corsScript(el) {
    if (el.tagName === 'SCRIPT' && !el.hasAttribute('crossorigin')) safe(function () { el.crossOrigin = 'anonymous'; });
  }
  function isNet(v) { try { return /^https?:$/.test(new URL(String(v), D.baseURI).protocol); } catch (e) { return false; } }
  function hookSrc(Ctor, transport) {
    var d = Object.getOwnPropertyDescriptor(Ctor.prototype, 'src');
    if (!d || !d.set) return;
    Object.defineProperty(Ctor.prototype, 'src', { configurable: true, enumerable: d.enumerable, get: d.get,
      set: function (v) {
        corsScript(this);
        this.__tsHinted = true;
        hint(v, transport);
        // Only network loads are waited for (a blocked file: image may never fire an event).
        if (isNet(v)) {
          var untrack = track(transport);
          this.addEventListener('load', untrack, { once: true });
          this.addEventListener('error', untrack, { once: true });
        }
        return d.set.call(this, v);
      } });
  }
  hookSrc(HTMLImageElement, 'image');
  hookSrc(HTMLScriptElement, 'script');
  hookSrc(HTMLIFrameElement, 'iframe');
  var sa = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    var n = String(name).toLowerCase();
    if (n === 'src' && (this instanceof HTMLImageElement || this instanceof HTMLScriptElement || this instanceof HTMLIFrameElement)) {
      corsScript(this);
      hint(value, this instanceof HTMLImageElement ? 'image' : this instanceof HTMLScriptElement ? 'script' : 'iframe');
    }
    return sa.apply(this, arguments);
  };
  function formHint(form) { safe(function () { hint(form.action || D.URL, 'form'); }); }
  var fs = HTMLFormElement.prototype.submit;
  HTMLFormElement.prototype.submit = function () { formHint(this); return fs.apply(this, arguments); };
  W.addEventListener('submit', function (ev) { formHint(ev.target); }, true);

  // What this visit touched, so the executor reads and wipes only that (each CDP command costs).
  var cd = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
  if (cd && cd.set) Object.defineProperty(Document.prototype, 'cookie', { configurable: true, enumerable: cd.enumerable, get: cd.get,
    set: function (v) { ts.cookieWrites++; return cd.set.call(this, v); } });
  function touch(obj, names, flag) {
    names.forEach(function (n) {
      var f = obj && obj[n];
      if (typeof f === 'function') obj[n] = function () { ts[flag] = true; return f.apply(this, arguments); };
    });
  }
  safe(function () { touch(CookieStore.prototype, ['set', 'delete'], 'cookieStoreUsed'); });
  safe(function () { touch(IDBFactory.prototype, ['open', 'deleteDatabase'], 'storageUsed'); });
  safe(function () { touch(CacheStorage.prototype, ['open', 'delete'], 'storageUsed'); });
  safe(function () { touch(History.prototype, ['pushState', 'replaceState'], 'historyUsed'); });
  W.addEventListener('hashchange', function () { ts.historyUsed = true; }, true);
  if (sb) {
    var sb2 = Navigator.prototype.sendBeacon;
    Navigator.prototype.sendBeacon = function sendBeacon() { ts.untracked++; return sb2.apply(this, arguments); };
  }

  // Event listeners keep the partner that registered them, so what they send and whether they
  // get stuck is theirs (load, visibilitychange and pagehide handlers of inline snippets).
  var wrapped = new WeakMap();
  var ael = EventTarget.prototype.addEventListener, rel = EventTarget.prototype.removeEventListener;
  EventTarget.prototype.addEventListener = function addEventListener(type, fn) {
    var ctx = fn && (typeof fn === 'function' || typeof fn.handleEvent === 'function') ? context() : null;
    if (!ctx) return ael.apply(this, arguments);
    var w = wrapped.get(fn);
    if (!w) {
      w = function (ev) {
        var prev = ts.running, r;
        ts.running = { ctx: ctx, start: realPerfNow() };
        // No finally: when the executor terminates a stuck handler, ts.running must stay set.
        try { r = typeof fn === 'function' ? fn.call(this, ev) : fn.handleEvent(ev); } catch (e) { ts.running = prev; throw e; }
        ts.running = prev;
        return r;
      };
      wrapped.set(fn, w);
    }
    var args = Array.prototype.slice.call(arguments);
    args[1] = w;
    return ael.apply(this, args);
  };
  EventTarget.prototype.removeEventListener = function removeEventListener(type, fn) {
    var w = fn && wrapped.get(fn);
    if (!w) return rel.apply(this, arguments);
    var args = Array.prototype.slice.call(arguments);
    args[1] = w;
    return rel.apply(this, args);
  };

  // --- errors: uncaught exceptions and scripts that failed to load
  W.addEventListener('error', function (ev) {
    var t = ev.target;
    if (t && t !== W && t.tagName === 'SCRIPT') {
      var src = t.src || '';
      var p = partnerOfUrl(src) || t.__tsPartner || context();
      ts.errors.push({ partner: p, message: 'script failed to load: ' + src.split('?')[0] });
      return;
    }
    if (!(ev instanceof ErrorEvent)) return;
    var who = (ev.filename && ev.filename !== D.URL && partnerOfUrl(ev.filename)) || context();
    if (!who && ev.error && ev.error.stack) {
      var m = String(ev.error.stack).match(/https?:\/\/[^\s)]+?(?=:\d+:\d+)/g) || [];
      for (var i = 0; i < m.length && !who; i++) if (m[i] !== D.URL) who = partnerOfUrl(m[i]);
    }
    ts.errors.push({ partner: who, message: String(ev.message || (ev.error && ev.error.message) || 'error').slice(0, 500) });
  }, true);
  // Scripts written by the parser inside a partner's section belong to it even when their host
  // is not listed in its allowHosts.
  var mo = new MutationObserver(function (list) {
    for (var i = 0; i < list.length; i++) for (var j = 0; j < list[i].addedNodes.length; j++) {
      var n = list[i].addedNodes[j];
      // The parser runs a microtask checkpoint before it prepares a script: the attribute set
      // here applies to the script's own fetch.
      if (n.tagName === 'SCRIPT') { corsScript(n); if (ts.current) n.__tsPartner = ts.current; }
      // Elements the parser wrote inside a partner's section (a <noscript>-less pixel, an
      // iframe) belong to that partner, whatever host they call.
      if (ts.current && !n.__tsHinted && n.src && (n.tagName === 'IMG' || n.tagName === 'IFRAME' || n.tagName === 'SCRIPT')) {
        n.__tsHinted = true;
        if (ts.hints.length < 2000) safe(function () { ts.hints.push({ url: new URL(n.src, D.baseURI).href, partner: ts.current, transport: n.tagName === 'IMG' ? 'image' : n.tagName === 'SCRIPT' ? 'script' : 'iframe' }); });
      }
    }
  });
  mo.observe(D, { childList: true, subtree: true });

  // --- partner sections of the document
  ts.begin = function (id) {
    ts.current = id;
    ts.marks[id] = { begin: realDateNow(), beginPerf: realPerfNow(), end: 0 };
  };
  ts.end = function (id) {
    var m = ts.marks[id];
    if (m) m.end = realDateNow();
    ts.current = null;
  };
  ts.loaded = function () {
    return new Promise(function (resolve) {
      function ok() { ts.loadedAt = realDateNow(); resolve(true); }
      if (D.readyState === 'complete') ok(); else W.addEventListener('load', ok, { once: true });
    });
  };
  // Called by the executor after it had to terminate a script that did not yield.
  // Only a timer callback can be named here: after termination the parser may already be in the
  // next partner's section (sections are attributed by the executor from their wall times).
  ts.terminated = function () {
    var who = ts.stuck.slice();
    if (ts.running) who.push(ts.running.ctx);
    ts.stuck = []; ts.running = null;
    who = who.filter(function (w) { return !!w; });
    who.forEach(function (w) {
      ts.timedOut[w] = true; ts.dead[w] = true;
      timers.forEach(function (t) { if (t.ctx === w) timers.delete(t.id); });
    });
    return who;
  };
  // A closing tab: hidden, then pagehide (and unload for older tags); then what they sent.
  ts.hide = function (wallMs) {
    safe(function () {
      Object.defineProperty(D, 'visibilityState', { configurable: true, get: function () { return 'hidden'; } });
      Object.defineProperty(D, 'hidden', { configurable: true, get: function () { return true; } });
    });
    safe(function () { D.dispatchEvent(new Event('visibilitychange', { bubbles: true })); });
    safe(function () { W.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false })); });
    safe(function () { W.dispatchEvent(new Event('unload')); });
    var hintsBefore = ts.hints.length;
    return ts.settle(cfg.hideQuietMs, elapsed() + cfg.hideQuietMs + 1, wallMs).then(function () {
      // Beacons have no completion the page can wait for, and the hide phase may send: then
      // the barrier makes sure the interceptor has seen them.
      if (ts.untracked > 0 || ts.hints.length > hintsBefore) return ts.barrier();
      return false;
    });
  };
  // A request the executor recognises: once it is answered, every request issued before it
  // has reached the interceptor too.
  ts.barrier = function () {
    return realFetch(cfg.barrierUrl, { method: 'POST', body: '', cache: 'no-store' }).then(function () { return true; }, function () { return false; });
  };
  // The common case in one CDP round trip; the executor falls back to the separate steps
  // when it had to terminate a script.
  ts.runAll = function (quietMs, maxMs, wallMs, hideWallMs) {
    return ts.loaded().then(function () { return ts.settle(quietMs, maxMs, wallMs); })
      .then(function () { return ts.hide(hideWallMs); })
      .then(function () { return ts.collect(); });
  };
  ts.collect = function () {
    var ls = {};
    safe(function () {
      for (var i = 0; i < W.localStorage.length; i++) { var k = W.localStorage.key(i); ls[k] = W.localStorage.getItem(k); }
    });
    var out = { origin: location.origin, localStorage: ls, errors: ts.errors, marks: ts.marks, hints: ts.hints,
                timedOut: ts.timedOut, loadedAt: ts.loadedAt, cookieWrites: ts.cookieWrites,
                cookieStoreUsed: ts.cookieStoreUsed, storageUsed: ts.storageUsed, historyUsed: ts.historyUsed };
    // Nothing of this visitor may run or write after this point (the tab is reused).
    ts.killed = true; timers.clear();
    safe(function () { W.localStorage.clear(); });
    safe(function () { W.sessionStorage.clear(); });
    safe(function () { W.name = ''; });
    safe(function () { Object.defineProperty(D, 'cookie', { configurable: true, get: function () { return ''; }, set: function () {} }); });
    safe(function () { Storage.prototype.setItem = function () {}; });
    return JSON.stringify(out);
  };

  // Our wrappers read as the browser's own functions (Function.prototype.toString), as they do
  // in the visitor's browser: tags that check for tampering must see nothing unusual.
  var nativeText = new WeakMap();
  function asNative(f, name) { if (typeof f === 'function') nativeText.set(f, 'function ' + name + '() { [native code] }'); }
  function maskMethod(obj, name) { safe(function () { asNative(obj[name], name); }); }
  function maskAccessor(obj, name) {
    safe(function () {
      var d = Object.getOwnPropertyDescriptor(obj, name);
      if (d && d.get) asNative(d.get, 'get ' + name);
      if (d && d.set) asNative(d.set, 'set ' + name);
    });
  }
  var fts = Function.prototype.toString;
  var toStr = function toString() { var t = nativeText.get(this); return t !== undefined ? t : fts.call(this); };
  asNative(toStr, 'toString');
  Function.prototype.toString = toStr;
  asNative(W.Date, 'Date');
  asNative(FakeDate.now, 'now');
  ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval', 'fetch', 'alert', 'confirm', 'prompt', 'print', 'open']
    .forEach(function (n) { maskMethod(W, n); });
  safe(function () { maskMethod(W.chrome, 'csi'); maskMethod(W.chrome, 'loadTimes'); });
  [[XMLHttpRequest.prototype, ['open', 'send']], [Navigator.prototype, ['sendBeacon']], [Element.prototype, ['setAttribute']],
   [HTMLFormElement.prototype, ['submit']], [Performance.prototype, ['now']], [History.prototype, ['pushState', 'replaceState']],
   [EventTarget.prototype, ['addEventListener', 'removeEventListener']]]
    .forEach(function (e) { e[1].forEach(function (n) { maskMethod(e[0], n); }); });
  safe(function () { ['open', 'deleteDatabase'].forEach(function (n) { maskMethod(IDBFactory.prototype, n); }); });
  safe(function () { ['open', 'match', 'has', 'keys', 'delete'].forEach(function (n) { maskMethod(CacheStorage.prototype, n); }); });
  safe(function () { ['digest', 'encrypt', 'decrypt', 'sign', 'importKey', 'exportKey', 'generateKey'].forEach(function (n) { maskMethod(SubtleCrypto.prototype, n); }); });
  safe(function () { maskMethod(NavigatorUAData.prototype, 'getHighEntropyValues'); });
  safe(function () { ['set', 'delete'].forEach(function (n) { maskMethod(CookieStore.prototype, n); }); });
  [[Navigator.prototype, ['webdriver', 'languages', 'language', 'hardwareConcurrency', 'deviceMemory']], [Screen.prototype, ['colorDepth', 'pixelDepth', 'availWidth', 'availHeight']],
   [Document.prototype, ['referrer', 'cookie']], [W, ['outerWidth', 'outerHeight']],
   [HTMLImageElement.prototype, ['src']], [HTMLScriptElement.prototype, ['src']], [HTMLIFrameElement.prototype, ['src']]]
    .forEach(function (e) { e[1].forEach(function (n) { maskAccessor(e[0], n); }); });
})`;
