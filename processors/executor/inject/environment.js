/**
 * The visitor's environment where CDP emulation cannot set it (colour depth, webdriver,
 * referrer, languages, core count and memory, window chrome), a clean slate of storage for the
 * new visitor, and what a server has no reason to offer (dialogs, popups, service workers).
 */
/** @import { BootConfig, Realm } from './state.js' */
import { safe, windowRecord } from './state.js';

/**
 * What a previous visitor of this pooled tab could have left is wiped; the visitor's own
 * localStorage (from the jar) is put back.
 * @param {BootConfig} cfg
 */
export function freshStorage(cfg) {
  var W = window;
  safe(function () { W.name = ''; });
  safe(function () { W.sessionStorage.clear(); });
  safe(function () {
    W.localStorage.clear();
    var ls = cfg.localStorage || {};
    for (var k in ls) if (Object.prototype.hasOwnProperty.call(ls, k)) W.localStorage.setItem(k, String(ls[k]));
  });
}

/**
 * @param {object} obj
 * @param {string} name
 * @param {unknown} value
 */
function defineGetter(obj, name, value) {
  safe(function () { Object.defineProperty(obj, name, { configurable: true, enumerable: true, get: function () { return value; } }); });
}

/**
 * @param {BootConfig} cfg
 * @param {Realm} realm
 */
export function emulateEnvironment(cfg, realm) {
  var W = window, G = windowRecord();
  G.dataLayer = [cfg.data];
  defineGetter(Navigator.prototype, 'webdriver', false);
  defineGetter(Screen.prototype, 'colorDepth', cfg.screen.colorDepth);
  defineGetter(Screen.prototype, 'pixelDepth', cfg.screen.colorDepth);
  defineGetter(Screen.prototype, 'availWidth', cfg.screen.width);
  defineGetter(Screen.prototype, 'availHeight', cfg.screen.height);
  defineGetter(Document.prototype, 'referrer', cfg.referrer);
  if (cfg.languages) defineGetter(Navigator.prototype, 'languages', Object.freeze(cfg.languages.slice()));
  if (cfg.language) defineGetter(Navigator.prototype, 'language', cfg.language);
  if (cfg.noUserAgentData) safe(function () { Reflect.deleteProperty(Navigator.prototype, 'userAgentData'); });
  defineGetter(Navigator.prototype, 'hardwareConcurrency', cfg.hardwareConcurrency);
  if (cfg.deviceMemory === null) safe(function () { Reflect.deleteProperty(Navigator.prototype, 'deviceMemory'); });
  else defineGetter(Navigator.prototype, 'deviceMemory', cfg.deviceMemory);
  // A server has no service worker, dialogs, popups or permission prompts to offer.
  safe(function () { Reflect.deleteProperty(Navigator.prototype, 'serviceWorker'); });
  G.alert = function alert() {};
  G.confirm = function confirm() { return false; };
  G.prompt = function prompt() { return null; };
  G.print = function print() {};
  G.open = function open() { return null; };
  safe(function () { Reflect.deleteProperty(W, 'RTCPeerConnection'); Reflect.deleteProperty(W, 'webkitRTCPeerConnection'); });
  // What a headless tab lacks and a visitor's Chrome has: window size with browser chrome and
  // the window.chrome object (only for Chromium user agents).
  defineGetter(W, 'outerWidth', cfg.viewport.width);
  defineGetter(W, 'outerHeight', cfg.viewport.height + (cfg.mobile ? 0 : 85));
  if (!cfg.noUserAgentData && !G.chrome) safe(function () { G.chrome = chromeObject(realm); });
}

/**
 * `window.chrome` as a visitor's Chrome has it.
 * @param {Realm} realm
 */
function chromeObject(realm) {
  var t0 = realm.dateNow() / 1000;
  return {
    app: { isInstalled: false, InstallState: { DISABLED: 'disabled', INSTALLED: 'installed', NOT_INSTALLED: 'not_installed' },
           RunningState: { CANNOT_RUN: 'cannot_run', READY_TO_RUN: 'ready_to_run', RUNNING: 'running' },
           getDetails: function getDetails() { return null; }, getIsInstalled: function getIsInstalled() { return false; } },
    csi: function csi() { return { startE: Math.floor(t0 * 1000), onloadT: Math.floor(t0 * 1000), pageT: realm.perfNow(), tran: 15 }; },
    loadTimes: function loadTimes() { return { requestTime: t0, startLoadTime: t0, commitLoadTime: t0, finishDocumentLoadTime: t0,
      finishLoadTime: t0, firstPaintTime: t0, firstPaintAfterLoadTime: 0, navigationType: 'Other', wasFetchedViaSpdy: true,
      wasNpnNegotiated: true, npnNegotiatedProtocol: 'h2', wasAlternateProtocolAvailable: false, connectionInfo: 'h2' }; },
  };
}
