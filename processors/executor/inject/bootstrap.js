/**
 * The script that runs first in the synthetic visitor document, before any partner html
 * (in-page.ts assembles it with the modules it imports into one function; page/document.ts
 * calls it with the visit's BootConfig).
 *
 * Why in-page and not CDP: the prototypes found CDP virtual time fragile (reset by every
 * navigation, lost sends when its budget ran out) and every CDP message costly; a fake clock
 * injected as the document's first script costs nothing per view and lets the settle loop jump
 * over a tag's `setTimeout(3000)` or a 5 s batch interval in microseconds of wall time.
 *
 * It also: wipes what a previous visitor could have left in this pooled tab and applies the new
 * visitor's localStorage; seeds `dataLayer`; overrides the few properties CDP cannot emulate;
 * records which partner code is running (request attribution, error/timeout status); tracks
 * in-flight requests so the end-of-event rule can wait for them; and reports the end of the
 * visit while the executor closes the tab (lifecycle.js, page/leave.ts). The order below matters: a hook
 * installed later wraps the earlier ones, and listeners registered before `attributeListeners`
 * are the executor's own.
 */
/** @import { BootConfig } from './state.js' */
import { createQuickCapture } from './capture.js';
import { createAttribution, createPending } from './context.js';
import { createSettle, installDate, installTimers, pageTime } from './clock.js';
import { emulateEnvironment, freshStorage } from './environment.js';
import { pageApi } from './lifecycle.js';
import { maskNative } from './native.js';
import { attributeListeners, watchErrors, watchParser, watchTouches, writersOf } from './observers.js';
import { hookAsyncApis, hookElements, hookRequests } from './requests.js';
import { newState, takeRealm } from './state.js';

/** @param {BootConfig} cfg */
export function boot(cfg) {
  var realm = takeRealm();
  var ts = newState(cfg.runId);
  Object.defineProperty(window, '__tagstream', { value: ts, enumerable: false, configurable: false, writable: false });
  freshStorage(cfg);
  var attr = createAttribution(cfg, ts);
  var pending = createPending(cfg, ts, realm);
  var time = pageTime(cfg, realm);
  var FakeDate = installDate(cfg, realm, time);
  var timers = installTimers(cfg, ts, realm, time, attr);
  var settle = createSettle(cfg, ts, realm, time, timers, pending);
  emulateEnvironment(cfg, realm);
  hookRequests(ts, attr, pending, realm.fetch, createQuickCapture(cfg, ts, realm, pending));
  hookAsyncApis(pending);
  hookElements(ts, attr, pending);
  watchTouches(ts, attr);
  attributeListeners(ts, attr, realm);
  watchErrors(ts, attr);
  watchParser(ts, attr);
  Object.assign(ts, pageApi(cfg, ts, realm, timers, settle, time.elapsed, function () { return writersOf(ts.writers, attr); }), { settle: settle });
  maskNative(FakeDate);
}
