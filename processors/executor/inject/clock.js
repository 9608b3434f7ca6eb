/**
 * The page's fake clock: page time = event time + real elapsed + jumps made by the settle loop.
 * `Date`, `performance.now()` and the timers run on it, so a tag waiting 3 s or a batcher
 * flushing every 5 s costs microseconds of wall time (BootConfig.cdpTime: the experimental CDP
 * virtual time drives them instead, and only `settle` is used).
 */
/** @import { BootConfig, PageState, Realm } from './state.js' */
/** @import { Attribution, ContextRef, Pending } from './context.js' */
import { safe, windowRecord } from './state.js';

/**
 * @typedef {object} PageTime
 * @property {() => number} elapsed page milliseconds since the document started
 * @property {() => number} now page time, epoch milliseconds
 * @property {(ms: number) => void} jump moves page time forward
 * @property {() => number} offset the jumps made so far
 */

/**
 * @param {BootConfig} cfg
 * @param {Realm} realm
 * @returns {PageTime}
 */
export function pageTime(cfg, realm) {
  var start = realm.perfNow();
  var offset = 0;
  function elapsed() { return realm.perfNow() - start + offset; }
  return {
    elapsed: elapsed,
    now: function () { return cfg.startMs + elapsed(); },
    jump: function (ms) { offset += ms; },
    offset: function () { return offset; },
  };
}

/**
 * Installs the page-time `Date` and `performance.now()`; returns the `Date` class (masked later).
 * @param {BootConfig} cfg
 * @param {Realm} realm
 * @param {PageTime} time
 */
export function installDate(cfg, realm, time) {
  var RealDate = realm.Date;
  var FakeDate = class Date extends RealDate {
    /** @param {unknown[]} args */
    constructor(...args) {
      // The tuple type only satisfies Date's overloads: every argument is passed on.
      if (args.length === 0) super(Math.floor(time.now()));
      else super(.../** @type {[number]} */ (/** @type {unknown} */ (args)));
    }
    /** @override */
    static now() { return Math.floor(time.now()); }
  };
  if (cfg.cdpTime) return FakeDate;
  windowRecord().Date = new Proxy(FakeDate, { apply: function () { return new RealDate(Math.floor(time.now())).toString(); } });
  safe(function () {
    Object.defineProperty(Performance.prototype, 'now', { configurable: true, writable: true,
      value: function now() { return realm.perfNow() + time.offset(); } });
  });
  return FakeDate;
}

/**
 * @typedef {{ id: number, at: number, ms: number, fn: unknown, args: unknown[], repeat: boolean, ctx: string | null, ref: ContextRef | null, seq: number }} Timer
 * @typedef {object} Timers
 * @property {Map<number, Timer>} map pending timers by id
 * @property {() => number} runDue runs the timers due in page time; how many ran
 * @property {() => Timer | null} earliest
 * @property {(t: Timer) => string | null} ctxOf the partner that set it
 */

/**
 * The page's timers, each remembering the partner that set it (a stuck or terminated callback is
 * theirs; a terminated partner's timers never run again).
 * @param {BootConfig} cfg
 * @param {PageState} ts
 * @param {Realm} realm
 * @param {PageTime} time
 * @param {Attribution} attr
 * @returns {Timers}
 */
export function installTimers(cfg, ts, realm, time, attr) {
  /** @type {Map<number, Timer>} */
  var timers = new Map();
  var nextId = 1, seq = 0;
  /**
   * @param {unknown} fn
   * @param {unknown} ms
   * @param {unknown[]} args
   * @param {boolean} repeat
   */
  function addTimer(fn, ms, args, repeat) {
    var id = nextId++;
    var delay = Number(ms) || 0;
    if (!(delay > 0)) delay = 0;
    if (repeat && delay < 4) delay = 4;
    // Who set it is read when it runs (many are cleared first), unless a partner was terminated:
    // its code may set no more timers.
    var ctx = null, ref = null;
    if (anyDead(ts)) {
      ctx = attr.context();
      if (ctx && ts.dead[ctx]) return id;
    } else {
      ref = attr.capture();
    }
    timers.set(id, { id: id, at: time.elapsed() + delay, ms: delay, fn: fn, args: args, repeat: repeat, ctx: ctx, ref: ref, seq: seq++ });
    if (ts.onWork) ts.onWork();
    // Short timers also run on real time so a page that yields briefly proceeds while loading.
    if (delay <= cfg.realTimerMaxMs && !ts.killed) realm.setTimeout(runDue, delay);
    return id;
  }
  /** @param {Timer} t */
  function ctxOf(t) {
    return t.ref !== null ? attr.resolve(t.ref) : t.ctx;
  }
  function runDue() {
    if (ts.killed) return 0;
    var e = time.elapsed();
    /** @type {Timer[]} */
    var due = [];
    timers.forEach(function (t) { if (t.at <= e) due.push(t); });
    due.sort(function (a, b) { return a.at - b.at || a.seq - b.seq; });
    var n = 0;
    for (var i = 0; i < due.length; i++) {
      var t = due[i];
      if (t === undefined || timers.get(t.id) !== t) continue;
      fireTimer(ts, timers, time, realm, t, ctxOf(t));
      n++;
    }
    return n;
  }
  if (!cfg.cdpTime) {
    var G = windowRecord();
    /** @param {unknown} fn @param {unknown} ms */
    G.setTimeout = function setTimeout(fn, ms) { return addTimer(fn, ms, Array.prototype.slice.call(arguments, 2), false); };
    /** @param {unknown} fn @param {unknown} ms */
    G.setInterval = function setInterval(fn, ms) { return addTimer(fn, ms, Array.prototype.slice.call(arguments, 2), true); };
    /** @param {number} id */
    G.clearTimeout = function clearTimeout(id) { timers.delete(id); };
    /** @param {number} id */
    G.clearInterval = function clearInterval(id) { timers.delete(id); };
  }
  return {
    map: timers,
    runDue: runDue,
    ctxOf: ctxOf,
    earliest: function () {
      /** @type {Timer | null} */
      var best = null;
      timers.forEach(function (t) { if (best === null || t.at < best.at) best = t; });
      return best;
    },
  };
}

/** @param {PageState} ts */
function anyDead(ts) {
  for (var k in ts.dead) if (ts.dead[k]) return true;
  return false;
}

/**
 * @param {PageState} ts
 * @param {Map<number, Timer>} timers
 * @param {PageTime} time
 * @param {Realm} realm
 * @param {Timer} t
 * @param {string | null} ctx the partner that set it
 */
function fireTimer(ts, timers, time, realm, t, ctx) {
  if (t.repeat) t.at = Math.max(t.at + t.ms, time.elapsed()); else timers.delete(t.id);
  if (ctx && ts.dead[ctx]) { timers.delete(t.id); return; }
  // Still set: the previous callback never returned (the executor terminated it).
  if (ts.running) ts.stuck.push(ts.running.ctx);
  var prev = ts.current;
  ts.current = ctx;
  ts.running = { ctx: ctx, start: realm.perfNow() };
  try {
    if (typeof t.fn === 'function') t.fn.apply(window, t.args);
    else (0, eval)(String(t.fn));
  } catch (e) {
    // As in a browser: an exception in a timer is an uncaught error of the page.
    safe(function () { window.reportError(e); });
  }
  ts.running = null;
  ts.current = prev;
}

/**
 * @typedef {{ reason: string, elapsed: number, timers: number }} Settled
 * @typedef {(quietMs: number, maxMs: number, wallMs: number) => Promise<Settled>} Settle
 */

/**
 * The settle loop: runs page time until nothing is pending and no timer is due within quietMs,
 * page time bounded by maxMs since the document started, wall time by wallMs. It jumps the clock
 * to the next timer and yields through a MessageChannel (not a timer: those are page time).
 * While a request is in flight (page time then runs in real time) and during the real-time quiet
 * check it sleeps until the next thing that can change its answer: a request starting or
 * settling, a timer set (ts.onWork), the next timer due, the oldest request expiring, the quiet
 * period or the wall budget over. It used to poll every 1-2 ms instead (measured: docs/bench-executor.md).
 * @param {BootConfig} cfg
 * @param {PageState} ts
 * @param {Realm} realm
 * @param {PageTime} time
 * @param {Timers} timers
 * @param {Pending} pending
 * @returns {Settle}
 */
export function createSettle(cfg, ts, realm, time, timers, pending) {
  var mc = new MessageChannel();
  /** @type {(() => void)[]} */
  var tickQueue = [];
  mc.port1.onmessage = function () { var f = tickQueue.shift(); if (f) f(); };
  /** @param {() => void} f */
  function tick(f) { tickQueue.push(f); mc.port2.postMessage(0); }
  return function settle(quietMs, maxMs, wallMs) {
    var wallStart = realm.perfNow();
    return new Promise(function (resolve) {
      var idleSince = -1;
      // A sleep ends once, by its timer or by ts.onWork, whichever comes first.
      var sleeping = 0;
      /** @param {string} reason */
      function done(reason) { ts.onWork = null; resolve({ reason: reason, elapsed: time.elapsed(), timers: timers.map.size }); }
      /** @param {number} ms */
      function sleep(ms) {
        var mine = ++sleeping;
        function wake() { if (sleeping === mine) { sleeping++; step(); } }
        ts.onWork = function () { if (sleeping === mine) { ts.onWork = null; tick(wake); } };
        realm.setTimeout(wake, Math.max(1, Math.ceil(ms)));
      }
      /** @param {number} real */
      function untilWall(real) { return wallMs - (real - wallStart); }
      function step() {
        ts.onWork = null;
        if (ts.killed) return done('killed');
        if (timers.runDue() > 0) idleSince = -1;
        var real = realm.perfNow();
        if (real - wallStart > wallMs) return done('wall');
        var next = timers.earliest();
        if (pending.count() > 0) {
          idleSince = -1;
          var oldest = ts.pending.reduce(function (m, p) { return Math.min(m, p.start); }, real);
          var wait = Math.min(untilWall(real) + 1, cfg.pendingExpiryMs - (real - oldest) + 1);
          if (next !== null) wait = Math.min(wait, next.at - time.elapsed());
          sleep(wait);
          return;
        }
        if (next === null || next.at - time.elapsed() > quietMs) {
          // Quiet must hold for a little real time: promise chains (IndexedDB, crypto, caches)
          // resolve outside any timer or request.
          if (idleSince < 0) idleSince = real;
          if (real - idleSince >= cfg.idleRealMs) return done('quiet');
          var left = Math.min(cfg.idleRealMs - (real - idleSince), untilWall(real) + 1);
          if (next !== null) left = Math.min(left, next.at - time.elapsed() - quietMs);
          sleep(left);
          return;
        }
        if (next.at > maxMs) return done('max');
        idleSince = -1;
        var e = time.elapsed();
        if (next.at > e) time.jump(next.at - e);
        tick(step);
      }
      tick(step);
    });
  };
}
